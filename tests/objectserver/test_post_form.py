from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.post_form import KEY_MESSAGE, PostForm, boundary_of, field, parse_post_form

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0
        self.opened_with: dict[str, str] = {}

    def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1


def browser_body(fields: dict[str, str], filename: str, content: bytes, ctype: str = "text/plain") -> tuple[str, bytes]:
    """Encode the form the way a browser does (fields first, then the file) using httpx."""
    request = httpx.Request("POST", "http://127.0.0.1/", data=fields, files={"file": (filename, content, ctype)})
    return request.headers["content-type"], request.read()


def part(name: str, value: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def by_hand(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def parse(body: bytes, size: int = 1 << 16, ctype: str = CTYPE, **limits: int) -> tuple[PostForm, Sink]:
    sink = Sink()

    def open_file(form: PostForm) -> Sink:
        sink.opened_with = dict(form.fields)
        return sink

    form = await parse_post_form(ctype, chunks(body, size), open_file, **limits)
    return form, sink


async def parse_error(body: bytes, size: int = 7, ctype: str = CTYPE, **limits: int) -> OSSError:
    with pytest.raises(OSSError) as info:
        await parse(body, size, ctype, **limits)
    return info.value


FIELDS = {
    "key": "user/alice/${filename}",
    "OSSAccessKeyId": "LTAI5tExampleAK",
    "policy": "eyJ4IjoxfQ==",
    "Signature": "hotXg1RQwOjz6QWKBCH39bgSKBA=",
    "x:var1": "值 1",
    "success_action_status": "201",
}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 38, 41, 64, 1000, 1 << 20])
async def test_parse_browser_form_in_awkward_chunks(size: int) -> None:
    content = b"line1\r\n--not-a-boundary\r\n" + bytes(range(256)) * 4
    ctype, body = browser_body(FIELDS, "photo 1.txt", content)
    form, sink = await parse(body, size, ctype)
    assert form.fields == FIELDS
    assert (form.filename, form.file_content_type, form.file_size) == ("photo 1.txt", "text/plain", len(content))
    assert bytes(sink.data) == content
    assert sink.opened_with == FIELDS


async def test_parse_hand_built_body_with_boundary_split_everywhere() -> None:
    content = b"\r\n--" + BOUNDARY[:-1].encode() + b"x\r\n"  # almost a delimiter, inside the file
    body = by_hand(part("key", b"k"), part("file", content, "a.bin", "application/octet-stream"))
    for size in range(1, 12):
        form, sink = await parse(body, size)
        assert bytes(sink.data) == content
        assert form.fields == {"key": "k"}


async def test_parse_open_file_sees_fields_before_file_only() -> None:
    body = by_hand(part("key", b"k"), part("policy", b"p"), part("file", b"data", "f"), part("submit", b"Upload"))
    form, sink = await parse(body)
    assert sink.opened_with == {"key": "k", "policy": "p"}
    assert form.fields == {"key": "k", "policy": "p"}  # §1.2: fields after file are ignored


async def test_parse_ignores_second_file_part() -> None:
    body = by_hand(part("key", b"k"), part("file", b"one", "1"), part("file", b"two", "2"))
    form, sink = await parse(body)
    assert (bytes(sink.data), form.filename) == (b"one", "1")


async def test_parse_empty_file_and_no_content_type() -> None:
    form, sink = await parse(by_hand(part("key", b"k"), part("File", b"", "")))
    assert (form.filename, form.file_content_type, form.file_size, bytes(sink.data)) == ("", None, 0, b"")


async def test_parse_utf8_filename() -> None:
    body = by_hand(part("key", b"k"), part("file", b"x", "照片.jpg", "image/jpeg"))
    form, _ = await parse(body)
    assert form.filename == "照片.jpg"


def test_field_lookup_is_case_insensitive() -> None:
    form = PostForm(fields={"Content-Type": "image/png", "KEY": "k"})
    assert (field(form, "content-type"), field(form, "key"), field(form, "policy")) == ("image/png", "k", None)


async def test_parse_streams_large_file_with_small_memory() -> None:
    total, chunk = 32 * 1024 * 1024, 64 * 1024
    head = part("key", b"big")[:-2] + b"\r\n" + f"--{BOUNDARY}\r\n".encode()
    head += b'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(total // chunk):
            yield block
        yield tail

    class HashSink:
        def __init__(self) -> None:
            self.digest, self.size = hashlib.sha256(), 0

        def write(self, data: bytes) -> None:
            self.digest.update(data)
            self.size += len(data)

    sink = HashSink()
    tracemalloc.start()
    try:
        form = await parse_post_form(CTYPE, body(), lambda _form: sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256(block * (total // chunk)).hexdigest()
    assert (form.file_size, sink.size, sink.digest.hexdigest()) == (total, total, expected)
    assert peak < 1024 * 1024


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ctype",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "text/plain; boundary=x",
        "multipart/form-data; boundary=" + "b" * 71,
        "",
    ],
)
async def test_parse_rejects_bad_content_type(ctype: str) -> None:
    err = await parse_error(by_hand(part("key", b"k"), part("file", b"x", "f")), ctype=ctype)
    assert (err.code, err.status) == ("MalformedPOSTRequest", 400)


def test_boundary_of_accepts_quoted_boundary() -> None:
    assert boundary_of('multipart/form-data; boundary="ab:c"') == b"ab:c"


@pytest.mark.parametrize("cut", [10, 60, -30, -3])
async def test_parse_rejects_truncated_body(cut: int) -> None:
    body = by_hand(part("key", b"k"), part("file", b"x" * 40, "f"))
    assert (await parse_error(body[:cut])).code == "MalformedPOSTRequest"


async def test_parse_rejects_garbage() -> None:
    assert (await parse_error(b"hello world, this is not multipart\r\n")).code == "MalformedPOSTRequest"


async def test_parse_rejects_part_without_name() -> None:
    body = f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode()
    assert (await parse_error(body)).code == "MalformedPOSTRequest"


async def test_parse_key_after_file() -> None:
    err = await parse_error(by_hand(part("file", b"x", "f"), part("key", b"k")))
    assert (err.code, err.status, err.message) == ("InvalidArgument", 400, KEY_MESSAGE)


async def test_parse_missing_key_and_file() -> None:
    err = await parse_error(by_hand(part("policy", b"p")))
    assert (err.code, err.message) == ("InvalidArgument", KEY_MESSAGE)


async def test_parse_missing_file() -> None:
    err = await parse_error(by_hand(part("key", b"k")))
    assert (err.code, err.status) == ("IncorrectNumberOfFilesInPOSTRequest", 400)


async def test_parse_rejects_case_duplicate_fields() -> None:
    err = await parse_error(by_hand(part("key", b"a"), part("Key", b"b"), part("file", b"x", "f")))
    assert (err.code, err.extra) == ("InvalidArgument", {"ArgumentName": "Key"})


async def test_parse_field_values_limit() -> None:
    body = by_hand(part("key", b"k" * 10), part("policy", b"p" * 10), part("file", b"x" * 100, "f"))
    assert (await parse(body, max_field_values=20))[0].file_size == 100
    err = await parse_error(body, max_field_values=19)
    assert (err.code, err.status) == ("FieldItemTooLong", 400)


async def test_parse_field_names_limit() -> None:
    body = by_hand(part("key", b"k"), part("policy", b"p"), part("file", b"x", "f"))
    assert (await parse(body, max_field_names=13))[0].fields == {"key": "k", "policy": "p"}
    assert (await parse_error(body, max_field_names=12)).code == "FieldItemTooLong"


async def test_parse_open_file_error_propagates() -> None:
    body = by_hand(part("key", b"k"), part("file", b"x", "f"))

    def refuse(form: PostForm) -> Sink:
        raise OSSError("AccessDenied", "Invalid according to Policy: Policy expired.")

    with pytest.raises(OSSError) as info:
        await parse_post_form(CTYPE, chunks(body, 5), refuse)
    assert info.value.code == "AccessDenied"


async def test_parse_rejects_invalid_utf8_field() -> None:
    assert (await parse_error(by_hand(part("key", b"\xff"), part("file", b"x", "f")))).code == "MalformedPOSTRequest"
