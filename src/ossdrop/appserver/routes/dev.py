"""``POST /api/dev/login``: dev mode only (embedded store, no configured JWT secret); absent otherwise."""

from __future__ import annotations

from fastapi import APIRouter

from ossdrop.appserver.auth import issue_token
from ossdrop.appserver.deps import Deps
from ossdrop.appserver.schemas import LoginIn, LoginOut

router = APIRouter(prefix="/api/dev", tags=["dev"])


@router.post("/login")
def dev_login(body: LoginIn, deps: Deps) -> LoginOut:
    """A token for any user id: for the demo page and local trials only."""
    return LoginOut(token=issue_token(deps.settings.jwt_secret, body.user_id, deps.settings.token_ttl))
