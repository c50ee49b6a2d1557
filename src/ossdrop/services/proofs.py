"""Proof of possession for global dedup: "send the MD5 of bytes first..last of your file".

The challenge is stateless: a token binding the object key, content MD5 and size, the creator, the byte range
and an expiry, authenticated with HMAC-SHA256 under a server secret. Only a client that holds the content can
answer it; the answer is checked against bytes read from the store (:func:`ossdrop.services.files.proof_matches`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from ossdrop.services.app_errors import BadInputError
from ossdrop.services.files import proof_range

PROOF_TTL = 300


@dataclass(frozen=True)
class Challenge:
    """A byte range (``first``..``last`` inclusive) of object ``path`` that ``creator_id`` must hash."""

    path: str
    md5: str
    size: int
    creator_id: int
    first: int
    last: int
    expires_at: int


def new_challenge(secret: str, *, path: str, md5: str, size: int, creator_id: int, now: int) -> tuple[Challenge, str]:
    """A fresh random challenge and its token."""
    first, last = proof_range(size)
    challenge = Challenge(path, md5, size, creator_id, first, last, now + PROOF_TTL)
    payload = base64.urlsafe_b64encode(json.dumps(asdict(challenge), separators=(",", ":")).encode()).decode()
    return challenge, payload + "." + _mac(secret, payload)


def open_challenge(secret: str, token: str, *, creator_id: int, now: int) -> Challenge:
    """The challenge in ``token``; :class:`BadInputError` (``bad_proof``) when forged, expired or not the caller's."""
    payload, _, mac = token.partition(".")
    if not hmac.compare_digest(_mac(secret, payload), mac):
        raise BadInputError("the proof token is not valid", code="bad_proof")
    try:
        challenge = Challenge(**json.loads(base64.urlsafe_b64decode(payload)))
    except (binascii.Error, ValueError, TypeError):
        raise BadInputError("the proof token is not valid", code="bad_proof") from None
    if challenge.creator_id != creator_id or challenge.expires_at < now:
        raise BadInputError("the proof token is expired or not yours", code="bad_proof")
    return challenge


def _mac(secret: str, payload: str) -> str:
    key = hashlib.sha256(b"ossdrop-proof\0" + secret.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
