"""Running the app server, with the embedded store in the same event loop when there is one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import uvicorn

from ossdrop.appserver.app import create_app
from ossdrop.appserver.deps import build_deps
from ossdrop.appserver.settings import AppSettings
from ossdrop.client.oss import OssClient
from ossdrop.db.migrate import upgrade
from ossdrop.objectserver.app import ObjectServer
from ossdrop.objectserver.runner import serve as serve_store


def prepare(settings: AppSettings) -> bool:
    """Apply the migrations and create the bucket unless it exists (true when created). Blocking."""
    upgrade(settings.database_url)
    store = OssClient(
        settings.oss_endpoint, settings.bucket, settings.region, settings.access_key_id, settings.access_key_secret
    )
    return store.ensure_bucket()


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
        await asyncio.to_thread(prepare, settings)
        app = create_app(build_deps(settings))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30)
        server = uvicorn.Server(config)
        app_task = asyncio.create_task(server.serve(sockets=[app_sock]))
        while not server.started and not app_task.done():
            await asyncio.sleep(0.01)
        if server.started:
            on_ready()
        await app_task
    finally:
        if store_task is not None:
            store_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await store_task
