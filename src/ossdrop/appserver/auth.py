"""Bearer tokens of the app server: JWT signed with HS256 (PyJWT), carrying the user id in ``sub``.

No web framework here: the FastAPI dependency that reads the ``Authorization`` header calls :func:`verify_token`
and maps :class:`TokenError` to 401.
"""

from __future__ import annotations

import time

import jwt

ALGORITHM = "HS256"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (32 bytes).
MIN_SECRET_BYTES = 32


class TokenError(Exception):
    """The token is not acceptable; the message says why (never contains the token)."""


class TokenExpiredError(TokenError):
    """The token was valid but its ``exp`` has passed."""


class TokenInvalidError(TokenError):
    """Malformed, wrongly signed, wrong algorithm, or missing/odd claims."""


def issue_token(secret: str, user_id: int, ttl: int, *, now: int | None = None) -> str:
    """A token for ``user_id`` (a positive int) valid for ``ttl`` seconds from ``now`` (default: the clock).

    Raises :class:`ValueError` for a secret shorter than 32 bytes, a non-positive user id or ttl.
    """
    _check_secret(secret)
    if isinstance(user_id, bool) or user_id <= 0:
        raise ValueError(f"user id must be a positive int, got {user_id!r}")
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    issued = int(time.time()) if now is None else now
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, *, now: int | None = None) -> int:
    """The user id of a valid ``token``; raises :class:`TokenExpiredError` or :class:`TokenInvalidError`.

    Only HS256 is accepted (no ``none``, no algorithm confusion). ``exp`` is compared with ``now`` (default:
    the clock) here rather than inside PyJWT, so that expiry is testable with a fixed time.
    """
    _check_secret(secret)
    return _verify(secret, token, now)[0]


class TokenVerifier:
    """:func:`verify_token` for one secret, remembering the tokens it verified (at most ``max_entries``).

    A client sends the same token with every request; checking its signature and claims again costs more than
    the rest of a small request. A remembered token skips the decode (the exact token string: same bytes, same
    signature, same claims) but still has its ``exp`` compared with the clock on every call. Tokens that fail are
    never remembered. Safe to share between threads.
    """

    def __init__(self, secret: str, *, max_entries: int = 4096) -> None:
        _check_secret(secret)
        self._secret = secret
        self._max_entries = max_entries
        self._known: dict[str, tuple[int, int]] = {}

    def verify(self, token: str, *, now: int | None = None) -> int:
        """As :func:`verify_token` with this verifier's secret."""
        known = self._known.get(token)
        if known is None:
            known = _verify(self._secret, token, now)
            if len(self._known) >= self._max_entries:
                self._known.clear()  # crude but bounded; live clients re-enter on their next request
            self._known[token] = known
            return known[0]
        user_id, exp = known
        _check_expiry(exp, now)
        return user_id


def _verify(secret: str, token: str, now: int | None) -> tuple[int, int]:
    """``(user id, exp)`` of a valid token; raises as :func:`verify_token`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalidError(f"invalid token: {type(exc).__name__}") from None
    exp, sub = claims["exp"], claims["sub"]
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise TokenInvalidError("invalid token: exp is not an integer")
    _check_expiry(exp, now)
    if not isinstance(sub, str) or not sub.isascii() or not sub.isdigit() or sub.startswith("0"):
        raise TokenInvalidError("invalid token: sub is not a user id")
    return int(sub), exp


def _check_expiry(exp: int, now: int | None) -> None:
    if exp <= (int(time.time()) if now is None else now):
        raise TokenExpiredError("token expired")


def _check_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
