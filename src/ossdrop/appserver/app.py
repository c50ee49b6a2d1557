"""The FastAPI application: routers, JSON errors, and the periodic reconcile task in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from ossdrop.appserver.deps import AppDeps
from ossdrop.appserver.errors import install_error_handlers
from ossdrop.appserver.routes import dev, files, health, page, uploads
from ossdrop.services.reconcile import ReconcileReport, reconcile

log = logging.getLogger(__name__)


def create_app(deps: AppDeps, *, run_reconciler: bool = True) -> FastAPI:
    """The app server for ``deps`` (whose ``settings`` decide dev mode). The lifespan runs :func:`reconcile`
    every ``settings.reconcile_interval`` seconds while ``run_reconciler`` is true, and disposes the pool at the end.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_reconcile_forever(deps)) if run_reconciler else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await deps.writer.aclose()
            deps.close()

    app = FastAPI(title="ossdrop", version="0.1.0", lifespan=lifespan)
    app.state.deps = deps
    install_error_handlers(app)
    app.include_router(uploads.router)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(page.router)
    if deps.settings.dev_mode:
        app.include_router(dev.router)
    return app


async def _reconcile_forever(deps: AppDeps) -> None:
    while True:
        await asyncio.sleep(deps.settings.reconcile_interval)
        try:
            report = await asyncio.to_thread(reconcile_once, deps)
        except Exception:  # keep the loop alive whatever one run hits (database down, store down)
            log.exception("reconcile run failed")
            continue
        if report.recorded or report.expired or report.failed:
            log.info(
                "reconcile: %d recorded, %d expired, %d failed", report.recorded, report.expired, len(report.failed)
            )


def reconcile_once(deps: AppDeps) -> ReconcileReport:
    """One reconcile run on a fresh session."""
    with deps.sessions() as session:
        return reconcile(deps.uploads, session)
