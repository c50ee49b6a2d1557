"""Errors the app server's use-cases raise for the client: a stable ``code``, a message and the HTTP status.

The HTTP layer turns each into ``{"error": code, "message": message}`` with ``status``; nothing else about an
:class:`AppError` is shown to clients.
"""

from __future__ import annotations


class AppError(Exception):
    """A refusal the client can act on."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadInputError(AppError):
    """Malformed or out-of-range input (422)."""

    status = 422
    code = "invalid_request"


class NotFoundError(AppError):
    """No such thing for this caller (404); also for other users' things, which must stay invisible."""

    status = 404
    code = "not_found"


class ForbiddenError(AppError):
    """The thing exists but belongs to someone else and the caller must be told no (403)."""

    status = 403
    code = "forbidden"


class ConflictError(AppError):
    """The request cannot be carried out in the current state (409)."""

    status = 409
    code = "conflict"


class StoreUnavailableError(AppError):
    """The object store did not answer (503)."""

    status = 503
    code = "store_unavailable"
