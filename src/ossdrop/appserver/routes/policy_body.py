"""The body of ``POST /api/uploads/policy``, read without FastAPI's generic body handling (the hot endpoint).

:func:`read` answers as FastAPI would for a ``body: PolicyIn`` parameter next to the ``Authenticated``
dependency, in the same order: a body that cannot be read is 400; a JSON body with a syntax error is 422 before
authentication; then 401 for a bad token; then 422 ``invalid_request`` for a missing, non-JSON or invalid body.
:data:`OPENAPI` documents the body in ``/docs`` as FastAPI would have.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from ossdrop.appserver.deps import Caller, authenticate
from ossdrop.appserver.schemas import PolicyIn
from ossdrop.services.app_errors import AppError


def _schema() -> dict[str, Any]:
    schema = PolicyIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # ProofIn is a component already (CompleteIn uses it); a test checks the refs
    return schema


OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _schema()}}},
}


async def read(request: Request) -> tuple[Caller, PolicyIn]:
    """The authenticated caller and the validated body; raises as described in the module docstring."""
    try:
        raw = await request.body()
    except Exception:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from None
    is_json = bool(raw) and _json_type(request.headers.get("content-type"))
    try:
        caller = authenticate(request)
    except AppError:
        if is_json:
            _check_syntax(raw)
        raise
    return caller, _validate(raw, is_json)


def _json_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json`` (parameters ignored), as FastAPI's strict content type."""
    if not content_type:
        return False
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _check_syntax(raw: bytes) -> None:
    try:
        json.loads(raw)
    except ValueError as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        raise _error("json_invalid", ("body", pos), "JSON decode error") from None


def _validate(raw: bytes, is_json: bool) -> PolicyIn:
    if not raw:
        raise _error("missing", ("body",), "Field required")
    if not is_json:
        raise _error("model_attributes_type", ("body",), "Input should be a valid dictionary or object")
    try:
        return PolicyIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _error(kind: str, loc: tuple[str | int, ...], msg: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg, "input": None}])
