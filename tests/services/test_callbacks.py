from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ossdrop.protocol.callback import (
    JSON_TYPE,
    CallbackSpec,
    decode_pub_key_url,
    generate_callback_key,
    load_private_key,
    verify_callback_signature,
)
from ossdrop.services.callbacks import DEFAULT_MAX_BODY, DEFAULT_TIMEOUT, CallbackSender

PRIVATE_PEM, PUBLIC_PEM = generate_callback_key(1024)
KEY_URL = "http://127.0.0.1:1/callback_pub_key_v1.pem"


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A raw HTTP/1.1 receiver on 127.0.0.1 that answers every request with a fixed response."""

    status: int = 200
    body: bytes = b'{"Status":"OK"}'
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Received(method, target, headers, body))
        await asyncio.sleep(self.delay)
        reply = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        writer.write(reply.encode() + self.body)
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb%20path?id=1&x=%2F"


@pytest.fixture
async def serve() -> AsyncIterator[object]:
    servers: list[asyncio.Server] = []

    async def start(receiver: Receiver) -> Receiver:
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
        receiver.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.close()


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cb"


def sender(**kwargs: float) -> CallbackSender:
    return CallbackSender(load_private_key(PRIVATE_PEM), KEY_URL, **kwargs)  # type: ignore[arg-type]


def spec(*urls: str, host: str | None = None) -> CallbackSpec:
    return CallbackSpec(urls=urls, body="bucket=${bucket}", host=host)


async def test_send_success_returns_app_json(serve) -> None:
    rx = await serve(Receiver())
    outcome = await sender().send(spec(rx.url), b"bucket=b")
    assert (outcome.ok, outcome.status, outcome.body, outcome.message) == (True, 200, b'{"Status":"OK"}', "")
    assert outcome.url == rx.url


async def test_send_request_shape_and_signature(serve) -> None:
    rx = await serve(Receiver())
    body_spec = CallbackSpec(urls=(rx.url,), body="{}", body_type=JSON_TYPE)
    await sender().send(body_spec, b'{"bucket":"b"}')
    (req,) = rx.requests
    assert (req.method, req.target, req.body) == ("POST", "/cb%20path?id=1&x=%2F", b'{"bucket":"b"}')
    assert req.headers["content-type"] == "application/json"
    assert req.headers["host"] == f"127.0.0.1:{rx.port}"
    assert req.headers["user-agent"] == "http-client/0.0.1"
    assert decode_pub_key_url(req.headers["x-oss-pub-key-url"], ("http://127.0.0.1:1/",)) == KEY_URL
    assert verify_callback_signature(PUBLIC_PEM, req.headers["authorization"], "/cb%20path", "id=1&x=%2F", req.body)
    assert not verify_callback_signature(PUBLIC_PEM, req.headers["authorization"], "/cb%20path", "id=1&x=%2F", b"x")


async def test_send_host_header_is_callback_host(serve) -> None:
    rx = await serve(Receiver())
    await sender().send(spec(rx.url, host="app.example.com"), b"x")
    assert rx.requests[0].headers["host"] == "app.example.com"
    assert rx.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


async def test_send_non_200_fails(serve) -> None:
    rx = await serve(Receiver(status=500, body=b'{"a":1}'))
    outcome = await sender().send(spec(rx.url), b"x")
    assert (outcome.ok, outcome.status, outcome.message) == (False, 500, "Error status : 500.")


async def test_send_201_is_not_success(serve) -> None:
    rx = await serve(Receiver(status=201))
    outcome = await sender().send(spec(rx.url), b"x")
    assert (outcome.ok, outcome.message) == (False, "Error status : 201.")


@pytest.mark.parametrize("body", [b"OK", b"", b"\xef\xbb\xbf{}", b"\xff{}"])
async def test_send_invalid_json_fails(serve, body: bytes) -> None:
    rx = await serve(Receiver(body=body))
    outcome = await sender().send(spec(rx.url), b"x")
    assert (outcome.ok, outcome.status, outcome.body) == (False, 200, b"")
    assert outcome.message == "Response body is not valid json format."


async def test_send_body_size_limit(serve) -> None:
    payload = b'"' + b"a" * 98 + b'"'
    rx = await serve(Receiver(body=payload))
    assert (await CallbackSender(load_private_key(PRIVATE_PEM), KEY_URL, max_body=100).send(spec(rx.url), b"x")).ok
    outcome = await CallbackSender(load_private_key(PRIVATE_PEM), KEY_URL, max_body=99).send(spec(rx.url), b"x")
    assert (outcome.ok, outcome.message) == (False, "Response body is too large, it must be at most 99 bytes.")


async def test_send_connection_refused() -> None:
    url = refused_url()
    outcome = await sender().send(spec(url), b"x")
    assert (outcome.ok, outcome.status, outcome.url) == (False, -1, url)
    assert outcome.message == "Error status : -1. OSS can not connect to your callbackUrl, please check it."


async def test_send_timeout_does_not_block_loop(serve) -> None:
    rx = await serve(Receiver(delay=3.0))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    outcome = await sender(timeout=0.5).send(spec(rx.url), b"x")
    elapsed = time.monotonic() - started
    task.cancel()
    assert (outcome.ok, outcome.status) == (False, -1)
    assert outcome.message.startswith(f"Error status : -1. {rx.url} reply timeout, cost: ")
    assert outcome.message.endswith(" MS, timeout: 500 MS.")
    assert 0.45 < elapsed < 2.0
    assert ticks >= 5


async def test_send_first_url_refused_second_succeeds(serve) -> None:
    rx = await serve(Receiver())
    outcome = await sender().send(spec(refused_url(), rx.url), b"x")
    assert (outcome.ok, outcome.url) == (True, rx.url)
    assert len(rx.requests) == 1


async def test_send_stops_at_first_success(serve) -> None:
    first, second = await serve(Receiver()), await serve(Receiver())
    assert (await sender().send(spec(first.url, second.url), b"x")).ok
    assert (len(first.requests), len(second.requests)) == (1, 0)


async def test_send_all_fail_reports_last(serve) -> None:
    rx = await serve(Receiver(status=502))
    outcome = await sender().send(spec(refused_url(), rx.url), b"x")
    assert (outcome.ok, outcome.status, outcome.message) == (False, 502, "Error status : 502.")


def test_sender_defaults() -> None:
    s = sender()
    assert (s.timeout, s.max_body) == (DEFAULT_TIMEOUT, DEFAULT_MAX_BODY) == (5.0, 1024 * 1024)
    with pytest.raises(ValueError):
        sender(timeout=0)


async def test_send_garbage_response_is_connect_failure() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/cb"
        outcome = await sender().send(spec(url), b"x")
    finally:
        server.close()
    assert (outcome.ok, outcome.status, outcome.message) == (
        False,
        -1,
        "Error status : -1. OSS can not connect to your callbackUrl, please check it.",
    )
