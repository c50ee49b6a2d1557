"""What the handlers depend on: one :class:`AppDeps` per app (built once), and the request-scoped pieces."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ossdrop.appserver.auth import TokenError, TokenVerifier
from ossdrop.appserver.settings import AppSettings
from ossdrop.client.oss import OssClient
from ossdrop.db.async_writer import create_async_writer_engine
from ossdrop.db.session import create_engine, session_factory
from ossdrop.services.app_errors import AppError
from ossdrop.services.callback_verify import CallbackVerifier, KeyFetcher, fetch_public_key
from ossdrop.services.group_commit import GroupCommit
from ossdrop.services.uploads import UploadConfig, Uploads


@dataclass(frozen=True)
class AppDeps:
    """The app's long-lived collaborators."""

    settings: AppSettings
    engine: Engine
    sessions: sessionmaker[Session]
    store: OssClient
    verifier: CallbackVerifier
    uploads: Uploads
    writer: GroupCommit
    tokens: TokenVerifier

    def session(self) -> Session:
        """A new session (use as a context manager, in a worker thread)."""
        return self.sessions()

    def close(self) -> None:
        """Finish the queued group-commit jobs, then release the database pool."""
        self.writer.close()
        self.engine.dispose()


def build_deps(
    settings: AppSettings, *, clock: Callable[[], float] = time.time, key_fetcher: KeyFetcher = fetch_public_key
) -> AppDeps:
    """Engine, store client, callback verifier and upload use-cases for ``settings`` (nothing is contacted yet)."""
    # As many pooled connections as worker threads (anyio: 40): returned overflow connections are closed, and
    # reopening them per request (TLS context, handshake) costs more than the query.
    engine = create_engine(settings.database_url, pool_size=40, max_overflow=20)
    store = OssClient(
        settings.oss_endpoint, settings.bucket, settings.region, settings.access_key_id, settings.access_key_secret
    )
    config = UploadConfig(
        bucket=settings.bucket,
        region=settings.region,
        access_key_id=settings.access_key_id,
        access_key_secret=settings.access_key_secret,
        callback_url=settings.callback_url,
        proof_secret=settings.jwt_secret,
        signature_version=settings.signature_version,
        upload_dir=settings.key_dir,
        policy_ttl=settings.policy_ttl,
        max_upload_bytes=settings.max_upload_bytes,
        dedup_scope=settings.dedup_scope,
    )
    verifier = CallbackVerifier(settings.callback_pubkey_prefixes, key_fetcher)
    async_engine = create_async_writer_engine(settings.database_url)
    writer = GroupCommit(engine, scope=settings.dedup_scope, upload_dir=settings.key_dir, async_engine=async_engine)
    tokens = TokenVerifier(settings.jwt_secret)
    up = Uploads(config, store, clock)
    return AppDeps(settings, engine, session_factory(engine), store, verifier, up, writer, tokens)


async def get_deps(request: Request) -> AppDeps:
    """The app's :class:`AppDeps` (set by :func:`ossdrop.appserver.app.create_app`)."""
    deps: AppDeps = request.app.state.deps
    return deps


Deps = Annotated[AppDeps, Depends(get_deps)]


async def current_user(request: Request, deps: Deps) -> int:
    """The user id of ``Authorization: Bearer <JWT>``; 401 ``unauthorized`` for anything else.

    Async on purpose (as :func:`get_deps`): checking an HS256 token is microseconds of CPU (and a remembered token
    less, see :class:`~ossdrop.appserver.auth.TokenVerifier`), and a sync dependency would cost a worker-thread hop
    per request. Handlers that touch the database are sync and open their session themselves
    (:meth:`AppDeps.session`), so a request makes exactly one hop.
    """
    return _authenticate(request, deps)


UserId = Annotated[int, Depends(current_user)]


@dataclass(frozen=True)
class Caller:
    """An authenticated request's user and the app's dependencies."""

    user_id: int
    deps: AppDeps


async def caller(request: Request) -> Caller:
    """:func:`current_user` and :func:`get_deps` as one dependency, for the hot endpoints: FastAPI's per-request
    work grows with the number of dependencies, and for a policy it cost more than the policy itself."""
    return authenticate(request)


def authenticate(request: Request) -> Caller:
    """:func:`caller` without FastAPI's dependency machinery (for a handler that reads its request itself)."""
    deps: AppDeps = request.app.state.deps
    return Caller(_authenticate(request, deps), deps)


Authenticated = Annotated[Caller, Depends(caller)]


def _authenticate(request: Request, deps: AppDeps) -> int:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AppError("a bearer token is required", code="unauthorized", status=401)
    try:
        return deps.tokens.verify(token.strip())
    except TokenError as exc:
        raise AppError(str(exc), code="unauthorized", status=401) from None
