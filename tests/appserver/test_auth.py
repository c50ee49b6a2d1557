"""ossdrop.appserver.auth: HS256 bearer tokens."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from ossdrop.appserver.auth import (
    TokenError,
    TokenExpiredError,
    TokenInvalidError,
    TokenVerifier,
    issue_token,
    verify_token,
)

SECRET = "s" * 32
NOW = 1_700_000_000


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip_and_claims() -> None:
    token = issue_token(SECRET, 42, 3600, now=NOW)
    assert verify_token(SECRET, token, now=NOW) == 42
    assert verify_token(SECRET, token, now=NOW + 3599) == 42
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "42", "iat": NOW, "exp": NOW + 3600}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_expired_at_exp() -> None:
    token = issue_token(SECRET, 42, 60, now=NOW)
    with pytest.raises(TokenExpiredError):
        verify_token(SECRET, token, now=NOW + 60)
    assert issubclass(TokenExpiredError, TokenError)


def test_wrong_secret_and_tampering_are_invalid() -> None:
    token = issue_token(SECRET, 42, 60, now=NOW)
    with pytest.raises(TokenInvalidError):
        verify_token("t" * 32, token, now=NOW)
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64({'sub': '1', 'iat': NOW, 'exp': NOW + 60})}.{signature}"
    with pytest.raises(TokenInvalidError):
        verify_token(SECRET, forged, now=NOW)
    with pytest.raises(TokenInvalidError):
        verify_token(SECRET, "not-a-token", now=NOW)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': '42', 'iat': NOW, 'exp': NOW + 60})}."
    with pytest.raises(TokenInvalidError):
        verify_token(SECRET, unsigned, now=NOW)
    hs512 = jwt.encode({"sub": "42", "iat": NOW, "exp": NOW + 60}, SECRET * 2, algorithm="HS512")
    with pytest.raises(TokenInvalidError):
        verify_token(SECRET * 2, hs512, now=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": NOW, "exp": NOW + 60},  # no sub
        {"sub": "42", "iat": NOW},  # no exp
        {"sub": "abc", "iat": NOW, "exp": NOW + 60},
        {"sub": "-1", "iat": NOW, "exp": NOW + 60},
        {"sub": "042", "iat": NOW, "exp": NOW + 60},
        {"sub": "0", "iat": NOW, "exp": NOW + 60},
        {"sub": "４２", "iat": NOW, "exp": NOW + 60},  # full-width digits
    ],
)
def test_bad_claims_are_invalid(claims: dict[str, object]) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalidError):
        verify_token(SECRET, token, now=NOW)


def test_issue_refuses_weak_input() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        issue_token("short", 1, 60)
    with pytest.raises(ValueError, match="positive"):
        issue_token(SECRET, 0, 60)
    with pytest.raises(ValueError, match="positive"):
        issue_token(SECRET, True, 60)
    with pytest.raises(ValueError, match="ttl"):
        issue_token(SECRET, 1, 0)


def test_default_clock_is_used() -> None:
    token = issue_token(SECRET, 7, 60)
    assert verify_token(SECRET, token) == 7


def test_token_verifier_remembers_good_tokens_but_still_checks_expiry() -> None:
    verifier = TokenVerifier(SECRET, max_entries=2)
    token = issue_token(SECRET, 42, 60, now=NOW)
    assert verifier.verify(token, now=NOW) == 42
    assert verifier.verify(token, now=NOW + 59) == 42  # remembered
    with pytest.raises(TokenExpiredError):
        verifier.verify(token, now=NOW + 60)  # remembered, and expired all the same
    other = issue_token("t" * 32, 42, 60, now=NOW)
    for _ in range(2):  # a failure is never remembered as a success
        with pytest.raises(TokenInvalidError):
            verifier.verify(other, now=NOW)
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64({'sub': '1', 'iat': NOW, 'exp': NOW + 60})}.{signature}"
    with pytest.raises(TokenInvalidError):
        verifier.verify(forged, now=NOW)
    for user in (1, 2, 3):  # bounded: the table is emptied when full, entries are verified again
        assert verifier.verify(issue_token(SECRET, user, 60, now=NOW), now=NOW) == user
    assert verifier.verify(token, now=NOW) == 42
    with pytest.raises(ValueError):
        TokenVerifier("short")
