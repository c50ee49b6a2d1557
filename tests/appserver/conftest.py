"""Both servers over real loopback sockets: the embedded store and app servers, in background threads.

One store serves the whole run. App servers are made on demand by :func:`stacks` for a database backend and a
settings variant, and cached for the run; tests keep apart by using fresh random user ids. Databases come from
``tests.db.conftest.database`` (SQLite file, MariaDB, PostgreSQL; skipped when a server is down, failed under CI).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ossdrop.appserver.app import create_app
from ossdrop.appserver.auth import issue_token
from ossdrop.appserver.deps import AppDeps, build_deps
from ossdrop.appserver.runner import prepare
from ossdrop.appserver.settings import AppSettings, make_settings
from ossdrop.core.settings import StoreConfig
from ossdrop.objectserver.callback_hook import pub_key_url
from ossdrop.objectserver.runner import bind_socket, build_store
from ossdrop.protocol.callback import OSS_PUB_KEY_PREFIXES
from tests.db.conftest import BACKENDS, database

ACCESS_KEY_ID = "LTAIappservertest01"
ACCESS_KEY_SECRET = "app-server-test-secret-0123456789"
JWT_SECRET = "test-jwt-secret-" + "x" * 32


class ServerThread:
    """A uvicorn server for ``app`` on a bound socket, in its own thread and event loop."""

    def __init__(self, app: Any, sock: socket.socket, *, lifespan: str) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan, timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[sock])), daemon=True)

    def start(self) -> None:
        self.thread.start()
        for _ in range(1000):
            if self.server.started:
                return
            self.thread.join(0.01)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass
class Store:
    """The run's embedded store."""

    endpoint: str
    root: Path


@dataclass
class Stack:
    """An app server (with its settings and dependencies) in front of the run's store."""

    url: str
    settings: AppSettings
    deps: AppDeps
    store: Store
    backend: str

    def token(self, user_id: int) -> str:
        return issue_token(self.settings.jwt_secret, user_id, 3600)

    def client(self, user_id: int | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user_id)}"} if user_id is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("app-store")
    sock = bind_socket("127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = StoreConfig(root=str(root), endpoint=endpoint, credentials={ACCESS_KEY_ID: ACCESS_KEY_SECRET})
    server = ServerThread(build_store(config)[0], sock, lifespan="off")
    server.start()
    yield Store(endpoint, root)
    server.stop()


def base_settings(store: Store, database_url: str, app_port: int, **overrides: Any) -> AppSettings:
    """Settings for an app on ``app_port`` against ``store``; ``overrides`` replace any field."""
    values: dict[str, Any] = dict(
        database_url=database_url,
        oss_endpoint=store.endpoint,
        bucket="appflow",
        region="cn-hangzhou",
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        public_url=f"http://127.0.0.1:{app_port}",
        jwt_secret=JWT_SECRET,
        callback_pubkey_prefixes=(*OSS_PUB_KEY_PREFIXES, pub_key_url(store.endpoint)),
        dev_mode=True,
    )
    values.update(overrides)
    return make_settings(**values)


StackFactory = Callable[..., Stack]
_RUNNING: list[AppDeps] = []  # the deps of every stack the session started


@pytest.fixture(autouse=True)
def _idle_connections_closed() -> Iterator[None]:
    """After each test, the running stacks close their idle pooled connections: the apps keep up to 40 each (as
    many as worker threads), and the session's stacks together would otherwise exceed PostgreSQL's 100."""
    yield
    for deps in _RUNNING:
        deps.engine.dispose()


@pytest.fixture(scope="session")
def stacks(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """``stacks(backend, **overrides)``: a running app server, made once per distinct arguments.

    The database is migrated and the bucket made first, unless ``database_url`` overrides the backend's database.
    """
    cache: dict[tuple[Any, ...], Stack] = {}
    urls: dict[str, str] = {}
    with ExitStack() as exits:

        def make(backend: str, **overrides: Any) -> Stack:
            ident = (backend, *sorted((k, repr(v)) for k, v in overrides.items()))
            if ident in cache:
                return cache[ident]
            if backend not in urls:
                urls[backend] = exits.enter_context(database(backend, tmp_path_factory.mktemp("db")))
            sock = bind_socket("127.0.0.1", 0)
            options = dict(overrides)
            url = options.pop("database_url", urls[backend])
            settings = base_settings(store, url, sock.getsockname()[1], **options)
            if url == urls[backend]:
                prepare(settings)
            deps = build_deps(settings)
            _RUNNING.append(deps)
            periodic = "reconcile_interval" in overrides  # only stacks that ask for it run the periodic task
            server = ServerThread(create_app(deps, run_reconciler=periodic), sock, lifespan="on")
            server.start()
            exits.callback(server.stop)
            cache[ident] = Stack(f"http://127.0.0.1:{sock.getsockname()[1]}", settings, deps, store, backend)
            return cache[ident]

        yield make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack(stacks: StackFactory, backend: str) -> Stack:
    """The default stack (v4, creator scope) on each backend."""
    return stacks(backend)


def new_user() -> int:
    return secrets.randbelow(2**30) + 1000


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def random_bytes(n: int = 2048) -> bytes:
    return os.urandom(n)


def browser_post(
    ticket: dict[str, Any], data: bytes, filename: str, ctype: str = "application/octet-stream"
) -> httpx.Response:
    """POST the form as a browser would: every field in order, then the file part last (multipart/form-data)."""
    files = {"file": (filename, data, ctype)}
    return httpx.post(ticket["url"], data=ticket["fields"], files=files, timeout=30, trust_env=False)


def policy(client: httpx.Client, data: bytes, name: str, **extra: Any) -> httpx.Response:
    body = {"filename": name, "size": len(data), "md5": md5_hex(data), **extra}
    return client.post("/api/uploads/policy", json=body)


def upload(client: httpx.Client, data: bytes, name: str = "file.bin") -> dict[str, Any]:
    """The whole happy flow; returns the file JSON the store relayed from the callback."""
    r = policy(client, data, name)
    assert r.status_code == 200, r.text
    ticket = r.json()
    if ticket["status"] == "exists":
        return dict(ticket["file"])
    posted = browser_post(ticket, data, name)
    assert posted.status_code == 200, posted.text
    body = posted.json()
    assert body["status"] == "ok"
    return dict(body["file"])


def with_settings(stack: Stack, **changes: Any) -> AppSettings:
    return replace(stack.settings, **changes)
