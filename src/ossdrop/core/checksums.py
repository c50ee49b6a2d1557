"""Content digests OSS puts on the wire: MD5 ETags, base64 Content-MD5 and CRC-64/XZ (oss-protocol.md §5.2).

CRC-64 uses ``anycrc`` (a C implementation, several GB/s) rather than a Python loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import anycrc

_CRC64 = anycrc.Model("CRC64-XZ")


class Digester:
    """Streaming MD5 + CRC-64/XZ over the bytes of one object or part."""

    __slots__ = ("_md5", "crc64", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5()  # noqa: S324 - MD5 is the protocol's content digest, not a security hash
        self.crc64 = 0
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._md5.update(data)
        self.crc64 = crc64(data, self.crc64)
        self.size += len(data)

    def md5(self) -> bytes:
        return self._md5.digest()


def crc64(data: bytes | bytearray | memoryview, previous: int = 0) -> int:
    """CRC-64/XZ of ``data``, continuing from ``previous`` (0 for a fresh CRC)."""
    if not data:
        return previous
    return int(_CRC64.calc(data, previous) if previous else _CRC64.calc(data))


def crc64_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC of A+B from crc(A), crc(B) and len(B): how multipart objects get their whole-object CRC."""
    if len2 == 0:
        return crc1
    return int(_CRC64.combine(crc1, crc2, len2))


def etag_of(md5: bytes) -> str:
    """The ETag value (without quotes) of a simple upload: upper-case hex MD5 (§5.2)."""
    return md5.hex().upper()


def multipart_etag(part_etags: list[str]) -> str:
    """OSS multipart ETag: MD5 of the concatenated upper-case hex part ETags, then ``-<count>`` (§5.2)."""
    joined = "".join(e.strip('"').upper() for e in part_etags).encode()
    return hashlib.md5(joined).hexdigest().upper() + f"-{len(part_etags)}"  # noqa: S324


def content_md5_b64(md5: bytes) -> str:
    """Base64 MD5, the form of the ``Content-MD5`` header."""
    return base64.b64encode(md5).decode()


def parse_content_md5(value: str) -> bytes | None:
    """Decode a ``Content-MD5`` header; None when it is not a base64 16-byte digest."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None
