"""CRC-64/XZ, ETags and Content-MD5 against the vectors of oss-protocol.md §5.2."""

from __future__ import annotations

import hashlib

import pytest

from ossdrop.core.checksums import (
    Digester,
    content_md5_b64,
    crc64,
    crc64_combine,
    etag_of,
    multipart_etag,
    parse_content_md5,
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0),
        (b"123456789", 11051210869376104954),
        (b"hello world", 5981764153023615706),
        (b"a" * 1024, 15959859048537093769),
        (bytes(range(256)), 8232944260754389680),
        (b"Anything you're good at contributes to happiness.", 108247482078852440),
    ],
)
def test_crc64_vectors(data: bytes, expected: int) -> None:
    assert crc64(data) == expected


def test_crc64_incremental_and_combined() -> None:
    assert crc64(b"6789", crc64(b"12345")) == 11051210869376104954
    assert crc64_combine(crc64(b"12345"), crc64(b"6789"), 4) == 11051210869376104954
    assert crc64_combine(crc64(b"abc"), 0, 0) == crc64(b"abc")


def test_digester_matches_one_pass() -> None:
    d = Digester()
    for piece in (b"hel", b"lo", b""):
        d.update(piece)
    assert (d.size, d.md5(), d.crc64) == (5, hashlib.md5(b"hello").digest(), crc64(b"hello"))


def test_etags() -> None:
    assert etag_of(hashlib.md5(b"hello").digest()) == "5D41402ABC4B2A76B9719D911017C592"
    # The oss2 mock fixture of §5.2: MD5 over the concatenated upper-case hex part ETags.
    parts = ['"4DE8075FB607DF4D13FBC480EA488EFA"', "AF947EC157726CEA88ED83B3C989063B"]
    assert multipart_etag(parts) == "1C787C506EABFB9B45EAAA8DB039F4B2-2"


def test_content_md5() -> None:
    raw = hashlib.md5(b"x").digest()
    assert parse_content_md5(content_md5_b64(raw)) == raw
    assert parse_content_md5("not base64!") is None
    assert parse_content_md5("YWJj") is None  # valid base64, not 16 bytes
