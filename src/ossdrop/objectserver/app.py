"""The embedded OSS store as an ASGI application.

Each request: parse (addressing, §4) -> route (:mod:`routing`) -> authenticate (V1/V4 header or presigned URL,
§3; PostObject authenticates by form fields instead) -> one handler -> response with the common headers (§5.1).
Client mistakes become OSS error XML; anything unexpected becomes a bare ``InternalError`` (logged, never sent).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ossdrop.core.clock import Clock, SystemClock
from ossdrop.core.errors import OSSError
from ossdrop.core.settings import StoreConfig
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.http import (
    ClientDisconnected,
    OSSRequest,
    OSSResponse,
    Receive,
    Scope,
    Send,
    error_response,
    parse_request,
    send_response,
)
from ossdrop.objectserver.routing import resolve
from ossdrop.protocol.auth import RequestToVerify, authenticate
from ossdrop.storage.base import Storage

log = logging.getLogger("ossdrop.store")
RawHandler = Callable[[Context, OSSRequest], Awaitable[OSSResponse]]
_DRAIN_LIMIT = 16 * 1024 * 1024


class ObjectServer:
    """ASGI callable serving one store root. Build it with :func:`create_app`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.special_paths: dict[str, RawHandler] = {}  # e.g. the callback public key, outside any bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            req = parse_request(scope, receive, self.ctx.config.domain)
        except OSSError as err:
            await send_response(send, error_response(err, "0" * 24, "", False), "0" * 24, False)
            return
        head = req.method == "HEAD"
        try:
            response = await self._handle(req)
        except ClientDisconnected:
            return
        except OSSError as err:
            response = error_response(err, req.request_id, req.host, head)
            await _drain(req)
        except Exception:
            log.exception("internal error on %s %s", req.method, req.raw_path)
            response = error_response(OSSError("InternalError"), req.request_id, req.host, head)
        for hook in self.ctx.response_hooks:
            hook(self.ctx, req, response)
        await send_response(send, response, req.request_id, head)

    async def _handle(self, req: OSSRequest) -> OSSResponse:
        special = self.special_paths.get(req.raw_path)
        if special is not None and req.method in ("GET", "HEAD"):
            return await special(self.ctx, req)
        if req.method == "OPTIONS" and self.ctx.preflight is not None:
            return await self.ctx.preflight(self.ctx, req)
        op = resolve(req)
        if op.bucket_first and req.bucket is not None:
            self.ctx.storage.get_bucket(req.bucket)
        if not op.form_auth:
            req.access_key = self._authenticate(req)
        return await op.handler(self.ctx, req)

    def _authenticate(self, req: OSSRequest) -> str | None:
        subject = RequestToVerify(req.method, req.bucket, req.key, req.query, req.headers)
        return authenticate(
            subject,
            lookup_secret=self.ctx.config.credentials.get,
            now=self.ctx.clock.now(),
            max_skew=self.ctx.config.max_skew_seconds,
        )


async def _drain(req: OSSRequest) -> None:
    """Read (and drop) what is left of a rejected request's body, so the client receives the error instead of a
    reset connection; very large bodies are left unread and the connection closes."""
    if req.method not in ("PUT", "POST"):
        return
    seen = 0
    try:
        async for chunk in req.stream():
            seen += len(chunk)
            if seen > _DRAIN_LIMIT:
                return
    except (ClientDisconnected, RuntimeError):
        return


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(config: StoreConfig, storage: Storage, *, clock: Clock | None = None) -> ObjectServer:
    """Wire the store: settings, storage backend and clock; features are installed on the result."""
    return ObjectServer(Context(config=config, storage=storage, clock=clock or SystemClock()))
