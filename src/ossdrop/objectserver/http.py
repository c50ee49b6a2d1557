"""The object server's request and response values, and the ASGI plumbing around them.

Requests are parsed once from the ASGI scope: addressing per oss-protocol.md §4 (path decoded with plain
``unquote``, query with plus-decoding - trap 3), header values decoded as UTF-8 (§12: metadata is signed over UTF-8).
Responses always carry ``Date``, a 24-character ``x-oss-request-id`` and ``Content-Length`` (§5.1, trap 5).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from ossdrop.core.errors import OSSError
from ossdrop.protocol import xml
from ossdrop.protocol.timefmt import http_date

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CHUNK = 1 << 20


class ClientDisconnected(Exception):
    """The client went away before the request body was complete."""


@dataclass
class OSSRequest:
    """One request as the handlers see it."""

    method: str
    bucket: str | None
    key: str | None
    query: list[tuple[str, str]]
    headers: dict[str, str]
    raw_path: str
    raw_query: str
    client_ip: str
    host: str
    receive: Receive
    request_id: str = field(default_factory=lambda: secrets.token_hex(12).upper())
    access_key: str | None = None
    body_done: bool = False

    def param(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return default

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.query)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives (already de-chunked by the HTTP server); empty once consumed."""
        while not self.body_done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            # Mark the end before yielding: a consumer that stops at the last chunk (an error raised mid-body)
            # must not leave a drain waiting on receive() for a body that is already complete.
            if not message.get("more_body", False):
                self.body_done = True
            if chunk:
                yield chunk

    async def read_body(self, limit: int = 4 * 1024 * 1024) -> bytes:
        """A small body (XML documents) read whole, refusing anything over ``limit``."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise OSSError("EntityTooLarge", "The request body is too large.")
            parts.append(chunk)
        return b"".join(parts)


@dataclass
class FileBody:
    """A byte range of a file on disk, streamed without reading it whole."""

    path: str
    offset: int
    length: int


@dataclass
class OSSResponse:
    """Status, headers (names as sent) and either bytes or a file range."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: FileBody | None = None
    content_length: int | None = None  # for HEAD: the length the body would have

    def set(self, name: str, value: str) -> None:
        self.headers.append((name, value))


def xml_response(root: str, children: xml.Children, status: int = 200) -> OSSResponse:
    return OSSResponse(status, [("Content-Type", "application/xml")], xml.build(root, children))


def parse_request(scope: Scope, receive: Receive, domain: str | None) -> OSSRequest:
    """Build an :class:`OSSRequest` from an ASGI scope; addressing per §4 (path-style or ``<bucket>.<domain>``)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = _decode_header(raw_value)
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    raw_query = scope.get("query_string", b"").decode("latin-1")
    host = headers.get("host", "")
    bucket, key = _address(raw_path, host, domain)
    client = scope.get("client") or ("", 0)
    return OSSRequest(
        method=scope["method"].upper(),
        bucket=bucket,
        key=key,
        query=parse_qsl(raw_query, keep_blank_values=True),
        headers=headers,
        raw_path=raw_path,
        raw_query=raw_query,
        client_ip=str(client[0]),
        host=host,
        receive=receive,
    )


def _decode_header(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unquote(text: str) -> str:
    try:
        return unquote(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise OSSError("InvalidObjectName", "The object name is not valid UTF-8.") from None


def _address(raw_path: str, host: str, domain: str | None) -> tuple[str | None, str | None]:
    hostname = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    if domain and hostname.endswith("." + domain.lower()):
        bucket = hostname[: -len(domain) - 1]
        rest = raw_path[1:] if raw_path.startswith("/") else raw_path
        return bucket, (_unquote(rest) or None)
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    if not path:
        return None, None
    bucket_part, _, rest = path.partition("/")
    return _unquote(bucket_part), (_unquote(rest) or None)


async def send_response(send: Send, response: OSSResponse, request_id: str, head: bool) -> None:
    """Write a response with the headers every OSS response carries."""
    length = response.file.length if response.file else len(response.body)
    if response.content_length is not None:
        length = response.content_length
    headers = [
        (b"server", b"AliyunOSS"),
        (b"date", http_date_now().encode()),
        (b"x-oss-request-id", request_id.encode()),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("utf-8")) for k, v in response.headers]
    if response.status not in (204, 304):
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if head or response.status in (204, 304):
        await send({"type": "http.response.body", "body": b""})
    elif response.file is not None:
        await _send_file(send, response.file)
    else:
        await send({"type": "http.response.body", "body": response.body})


async def _send_file(send: Send, body: FileBody) -> None:
    fd = os.open(body.path, os.O_RDONLY)
    try:
        offset, remaining = body.offset, body.length
        while remaining > 0:
            chunk = os.pread(fd, min(_CHUNK, remaining), offset)
            if not chunk:
                break
            offset += len(chunk)
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0 or body.length == 0:  # empty object, or the file shrank under us: end the response
            await send({"type": "http.response.body", "body": b""})
    finally:
        os.close(fd)


def http_date_now() -> str:
    import time

    return http_date(time.time())


def error_response(err: OSSError, request_id: str, host: str, head: bool) -> OSSResponse:
    """The error XML of §5.1; on HEAD the XML travels base64 in ``x-oss-err`` instead (trap 5)."""
    document = xml.error_document(err.code, err.message, request_id, host, err.extra, err.ec)
    response = OSSResponse(err.status, [("Content-Type", "application/xml")], document)
    if err.ec:
        response.set("x-oss-ec", err.ec)
    if head:
        response.set("x-oss-err", base64.b64encode(document).decode())
        response.content_length = 0
    return response
