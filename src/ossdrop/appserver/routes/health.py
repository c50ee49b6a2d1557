"""``/healthz`` (database and store answer) and ``/api/version`` (a trivial JSON endpoint)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import ossdrop
from ossdrop.appserver.deps import Deps
from ossdrop.services.health import check_health

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(deps: Deps) -> JSONResponse:
    """200 ``{"status": "ok"}`` when the database and the store answer, else 503 naming what failed."""
    problems = await run_in_threadpool(check_health, deps.engine, deps.store)
    if problems:
        return JSONResponse({"error": "unhealthy", "message": "; ".join(problems)}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/api/version")
async def version() -> dict[str, str]:
    """The server's name and version (no database, no store)."""
    return {"name": "ossdrop", "version": ossdrop.__version__}
