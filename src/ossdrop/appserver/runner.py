"""Running the app server, with the embedded store in the same event loop when there is one."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import uvicorn

from ossdrop.appserver.app import create_app
from ossdrop.appserver.deps import build_deps
from ossdrop.appserver.settings import AppSettings
from ossdrop.client.oss import OssClient
from ossdrop.db.migrate import upgrade
from ossdrop.objectserver.app import ObjectServer
from ossdrop.objectserver.runner import serve as serve_store


def prepare(settings: AppSettings, *, embedded: bool = False) -> bool:
    """Apply the migrations and create the bucket unless it exists (true when created). Blocking.

    For the embedded store it also lets the app's own page post to the bucket cross-origin (CORS); on real OSS
    that rule is the operator's to set (README), since putting it would replace the bucket's existing rules."""
    upgrade(settings.database_url)
    store = OssClient(
        settings.oss_endpoint, settings.bucket, settings.region, settings.access_key_id, settings.access_key_secret
    )
    created = store.ensure_bucket()
    if embedded:
        store.allow_browser_uploads(page_origins(settings.public_url))
    return created


def page_origins(public_url: str) -> list[str]:
    """The app's origin, plus its loopback twin (127.0.0.1 <-> localhost) so either spelling works in a browser."""
    parts = urlsplit(public_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    twins = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    if parts.hostname in twins:
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://{twins[parts.hostname]}{port}")
    return origins


async def serve_all(
    settings: AppSettings,
    app_sock: socket.socket,
    on_ready: Callable[[], None],
    *,
    store: tuple[ObjectServer, socket.socket] | None = None,
) -> None:
    """Serve until stopped (SIGINT/SIGTERM or cancellation). With ``store``, that store runs first; then the
    database is migrated, the bucket made, the app served on ``app_sock``; ``on_ready`` runs once both accept.
    """
    store_task: asyncio.Task[None] | None = None
    if store is not None:
        started = asyncio.Event()
        store_task = asyncio.create_task(serve_store(store[0], store[1], started.set))
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait([store_task, waiter], return_when=asyncio.FIRST_COMPLETED)
        if store_task.done():
            waiter.cancel()
            await store_task  # raises what stopped the store
            return
    try:
        await asyncio.to_thread(functools.partial(prepare, settings, embedded=store is not None))
        app = create_app(build_deps(settings))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30)
        server = uvicorn.Server(config)
        app_task = asyncio.create_task(server.serve(sockets=[app_sock]))
        while not server.started and not app_task.done():
            await asyncio.sleep(0.01)
        if server.started:
            # Everything imported and built at start-up lives as long as the process: keep it out of the cyclic
            # collector's full passes, which otherwise walk it again and again under load.
            gc.freeze()
            on_ready()
        await app_task
    finally:
        if store_task is not None:
            store_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await store_task
