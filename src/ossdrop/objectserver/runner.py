"""Running the store: credentials kept in the root, the ASGI server, the "listening" line."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from ossdrop.core.settings import StoreConfig
from ossdrop.objectserver.app import ObjectServer, create_app
from ossdrop.objectserver.features import install_features
from ossdrop.storage.filesystem import FilesystemStorage

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    """The store's account key pair."""

    access_key_id: str
    access_key_secret: str
    created: bool = False


def load_or_create_credentials(root: str) -> Credentials:
    """The pair kept in ``<root>/credentials.json`` (mode 0600), made on first start."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, CREDENTIALS_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return Credentials(data["access_key_id"], data["access_key_secret"])
    pair = Credentials("LTAI" + secrets.token_hex(10), secrets.token_urlsafe(30), created=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"access_key_id": pair.access_key_id, "access_key_secret": pair.access_key_secret}, fh)
    return pair


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving so that port 0 yields a real port we can announce."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP; without it Nagle
    # plus delayed ACKs add ~40 ms to every small response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_store(config: StoreConfig) -> tuple[ObjectServer, FilesystemStorage]:
    storage = FilesystemStorage(config.root)
    app = create_app(config, storage)
    install_features(app)
    return app, storage


async def serve(app: ObjectServer, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    """Serve until cancelled; ``on_ready`` runs once connections are accepted."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            server_header=False,  # the store sends its own Server and Date (§5.1); no duplicates
            date_header=False,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        on_ready()
    await task
