"""Direct uploads: issuing signed PostObject policies, recording callbacks, and the ``complete`` fallback.

The flow (issue 4): :func:`request_upload` either finds the content already stored ("instant upload": a new
record, no bytes move) or records a pending upload and returns the form fields of a policy that pins the key, the
size range, the expiry, forbid-overwrite and the callback (exact match, so the client can change none of them).
The store calls back; :func:`record_callback` records the object from the (already verified) callback body.
When the callback failed or never came, :func:`complete_upload` (the client) or the reconciler checks the object
in the store itself (:func:`record_from_store`). No function here trusts a claimed MD5: recording goes through
:func:`ossdrop.services.files.record_upload`, which compares the store's real MD5 with the key's.
A request without an MD5 skips the instant-upload lookup and gets a key that claims no content; its record gets
the real MD5 (the plain ETag of the simple upload, or the object read back).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.orm import Session

from ossdrop.client.oss import OssClient, StoreError
from ossdrop.db import repository as repo
from ossdrop.db.models import PendingUpload, StorageRecord, UploadState
from ossdrop.services import files
from ossdrop.services.app_errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    StoreUnavailableError,
)
from ossdrop.services.keys import DedupScope, InvalidKeyError, normalize_md5, parse_key
from ossdrop.services.post_form import FormSigner
from ossdrop.services.proofs import Challenge, new_challenge, open_challenge

T = TypeVar("T")
_PLAIN_ETAG = re.compile(r"^[0-9A-Fa-f]{32}$")


@dataclass(frozen=True)
class UploadConfig:
    """What the upload use-cases need to know (built from the app settings)."""

    bucket: str
    region: str
    access_key_id: str
    access_key_secret: str
    callback_url: str
    proof_secret: str
    signature_version: str = "v4"
    upload_dir: str = "user-dirs"
    policy_ttl: int = 900
    max_upload_bytes: int = 5 * 1024**3
    dedup_scope: DedupScope = DedupScope.CREATOR


@dataclass(frozen=True)
class Uploads:
    """The collaborators of every use-case here: config, the store, and the clock (unix seconds)."""

    config: UploadConfig
    store: OssClient
    clock: Callable[[], float]

    def now(self) -> int:
        return int(self.clock())

    @functools.cached_property
    def signer(self) -> FormSigner:
        """The form signer of ``config`` and ``store`` (made once; :func:`dataclasses.replace` makes a new one)."""
        cfg = self.config
        return FormSigner(
            bucket=cfg.bucket,
            region=cfg.region,
            access_key_id=cfg.access_key_id,
            access_key_secret=cfg.access_key_secret,
            callback_url=cfg.callback_url,
            signature_version=cfg.signature_version,
            max_upload_bytes=cfg.max_upload_bytes,
            upload_dir=cfg.upload_dir,
            post_url=self.store.post_url,
        )


@dataclass(frozen=True)
class Exists:
    """Instant upload: the content is stored already; ``record`` is this upload's new record."""

    record: StorageRecord


@dataclass(frozen=True)
class ProofRequired:
    """Global dedup found the content elsewhere: answer ``challenge`` (MD5 of its byte range) with ``token``."""

    challenge: Challenge
    token: str


@dataclass(frozen=True)
class UploadTicket:
    """Everything a browser needs to POST the file: ``url``, the form ``fields`` (file goes last), and more."""

    url: str
    fields: dict[str, str]
    key: str
    upload_id: str
    expire: int
    seed_fields: dict[str, str | int]


@dataclass(frozen=True)
class Proof:
    """A client's answer to a :class:`ProofRequired`: the token and the MD5 (hex) of the requested bytes."""

    token: str
    md5: str


def request_upload(
    up: Uploads,
    session: Session,
    *,
    creator_id: int,
    filename: str,
    size: int | None,
    md5: str | None,
    content_type: str | None = None,
    proof: Proof | None = None,
) -> Exists | ProofRequired | UploadTicket:
    """Answer ``POST /api/uploads/policy``; see the module docstring. Raises :class:`BadInputError`."""
    cfg = up.config
    digest = check_request(cfg, filename, size, md5)
    if digest is not None and size is not None and size > 0:
        found = _dedup(up, session, creator_id=creator_id, filename=filename, size=size, md5=digest, proof=proof)
        if found is not None:
            return found
    pending = files.begin_upload(
        session,
        creator_id=creator_id,
        name=filename,
        md5=digest,
        size=size,
        scope=cfg.dedup_scope,
        now=up.now(),
        ttl=cfg.policy_ttl,
        upload_dir=cfg.upload_dir,
    )
    return _ticket(up, pending, size, content_type)


def check_request(cfg: UploadConfig, filename: str, size: int | None, md5: str | None) -> str | None:
    """The normalised MD5 of a valid policy request (``None`` when it gave none: no dedup, a key that is not
    content-addressed); raises :class:`BadInputError` for an invalid request, e.g. a malformed MD5."""
    if not filename.strip() or len(filename) > files.MAX_NAME_LENGTH or "\x00" in filename:
        raise BadInputError("filename must be 1..256 characters", code="bad_filename")
    if size is not None and size < 0:
        raise BadInputError("size must not be negative", code="bad_size")
    if size is not None and size > cfg.max_upload_bytes:
        raise BadInputError(f"size exceeds the limit of {cfg.max_upload_bytes} bytes", code="too_large", status=413)
    if md5 is None:
        return None
    try:
        return normalize_md5(md5)
    except InvalidKeyError:
        raise BadInputError("md5 must be 32 hex digits", code="bad_md5") from None


def _dedup(
    up: Uploads, session: Session, *, creator_id: int, filename: str, size: int, md5: str, proof: Proof | None
) -> Exists | ProofRequired | None:
    scope = up.config.dedup_scope
    if scope is DedupScope.OFF:
        return None
    own = files.find_duplicate(session, md5=md5, size=size, creator_id=creator_id, scope=DedupScope.CREATOR)
    if own is not None:
        copy = files.record_copy(session, own, creator_id=creator_id, name=filename, now=up.now())
        if copy is not None:
            return Exists(copy)
    if scope is not DedupScope.GLOBAL:
        return None
    other = files.find_duplicate(session, md5=md5, size=size, creator_id=creator_id, scope=DedupScope.GLOBAL)
    if other is None:
        return None
    if proof is None:
        return _challenge(up, other.path, md5, size, creator_id)
    _check_proof(up, proof, path=other.path, md5=md5, size=size, creator_id=creator_id)
    copy = files.record_copy(session, other, creator_id=creator_id, name=filename, now=up.now())
    return Exists(copy) if copy is not None else None


def _challenge(up: Uploads, path: str, md5: str, size: int, creator_id: int) -> ProofRequired:
    secret = up.config.proof_secret
    challenge, token = new_challenge(secret, path=path, md5=md5, size=size, creator_id=creator_id, now=up.now())
    return ProofRequired(challenge, token)


def _check_proof(up: Uploads, proof: Proof, *, path: str, md5: str, size: int, creator_id: int) -> None:
    challenge = open_challenge(up.config.proof_secret, proof.token, creator_id=creator_id, now=up.now())
    if (challenge.path, challenge.md5, challenge.size) != (path, md5, size):
        raise BadInputError("the proof token is for other content", code="bad_proof")
    data = _store(lambda: up.store.get_range(path, challenge.first, challenge.last))
    if not files.proof_matches(data, proof.md5):
        raise ForbiddenError("the proof does not match the stored content", code="bad_proof")


def _ticket(up: Uploads, pending: PendingUpload, size: int | None, content_type: str | None) -> UploadTicket:
    return make_ticket(up, pending.object_key, pending.upload_id, pending.expires_at, size, content_type)


def make_ticket(
    up: Uploads, key: str, upload_id: str, expire: int, size: int | None, content_type: str | None
) -> UploadTicket:
    """The signed form of pending upload ``upload_id`` (object ``key``, policy expiring at ``expire``)."""
    form = up.signer.sign(key, upload_id, expire, size, content_type, up.clock())
    return UploadTicket(up.signer.post_url, form.fields, key, upload_id, expire, form.seed)


def record_callback(up: Uploads, session: Session, body: bytes) -> StorageRecord:
    """Record the object a verified callback announces (idempotent); raises :class:`BadInputError` for a body
    that is not ours, :class:`NotFoundError` for an unknown upload, :class:`ConflictError` for a mismatch."""
    upload_id, facts = parse_callback_body(body)
    return _record(up, session, upload_id, facts)


def parse_callback_body(body: bytes) -> tuple[str, files.UploadFacts]:
    """The upload id and object facts of a callback body; :class:`BadInputError` when it is not ours."""
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    try:
        facts = files.UploadFacts(
            key=form["object"],
            size=int(form["size"]),
            etag=form.get("etag") or None,
            mime_type=form.get("mimeType") or None,
            width=_int_or_none(form.get("width")),
            height=_int_or_none(form.get("height")),
        )
        upload_id = form["upload_id"]
    except (KeyError, ValueError):
        raise BadInputError("the callback body is not an ossdrop callback", code="bad_callback") from None
    return upload_id, facts


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _record(up: Uploads, session: Session, upload_id: str, facts: files.UploadFacts) -> StorageRecord:
    try:
        return files.record_upload(session, upload_id, facts, now=up.now(), upload_dir=up.config.upload_dir)
    except files.UnknownUploadError as exc:
        raise NotFoundError(str(exc), code="unknown_upload") from None
    except files.UploadMismatchError as exc:
        raise ConflictError(str(exc), code="upload_mismatch") from None
    except files.UnverifiableContentError as exc:
        raise ConflictError(str(exc), code="unverifiable_content") from None
    except files.ContentMismatchError as exc:
        if exc.remove_object:
            doomed = exc.key
            _store(lambda: up.store.delete(doomed))
        raise ConflictError("the uploaded content does not match its MD5", code="content_mismatch") from None


def complete_upload(
    up: Uploads, session: Session, *, creator_id: int, key: str, upload_id: str | None, proof: Proof | None = None
) -> StorageRecord | ProofRequired:
    """``POST /api/uploads/complete``: record the caller's upload after checking the object in the store.

    Idempotent. ``upload_id`` picks the pending upload; without it the oldest still-pending one of this key and
    caller is used. 404 when there is none, 403 when it is another user's, 409 when the object is not there.
    """
    pending = _find_pending(session, key=key, upload_id=upload_id, creator_id=creator_id)
    if pending.state == UploadState.COMPLETED.value:
        done = repo.get_record_by_upload_id(session, pending.upload_id)
        session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
        if done is None:
            raise NotFoundError("the upload was recorded and its file deleted since", code="unknown_upload")
        return done
    session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
    if _needs_proof(up, session, pending):
        head = _store(lambda: up.store.head(pending.object_key))
        if head is None:
            raise ConflictError("the object has not been uploaded", code="object_missing")
        if proof is None:
            return _challenge(up, pending.object_key, pending.expected_md5, head.size, creator_id)
        _check_proof(
            up, proof, path=pending.object_key, md5=pending.expected_md5, size=head.size, creator_id=creator_id
        )
    record = record_from_store(up, session, pending)
    if record is None:
        raise ConflictError("the object has not been uploaded", code="object_missing")
    return record


def _find_pending(session: Session, *, key: str, upload_id: str | None, creator_id: int) -> PendingUpload:
    if upload_id is not None:
        pending = repo.get_pending(session, upload_id)
        if pending is None or pending.object_key != key:
            raise NotFoundError("no such upload", code="unknown_upload")
    else:
        stmt = select(PendingUpload).where(PendingUpload.object_key == key, PendingUpload.creator_id == creator_id)
        rows = list(session.scalars(stmt.order_by(PendingUpload.id)))
        waiting = [p for p in rows if p.state == UploadState.PENDING.value]
        pending = waiting[0] if waiting else (rows[-1] if rows else None)
        if pending is None:
            other = session.scalars(select(PendingUpload.id).where(PendingUpload.object_key == key).limit(1)).first()
            session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
            if other is not None:
                raise ForbiddenError("this upload was issued to another user")
            raise NotFoundError("no such upload", code="unknown_upload")
    if pending.creator_id != creator_id:
        session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
        raise ForbiddenError("this upload was issued to another user")
    return pending


def _needs_proof(up: Uploads, session: Session, pending: PendingUpload) -> bool:
    """A global key that someone else's upload already filled: the caller never sent us its bytes."""
    try:
        scope = parse_key(pending.object_key, upload_dir=up.config.upload_dir).scope
    except InvalidKeyError:
        return False
    if scope is not DedupScope.GLOBAL:
        return False
    stmt = select(StorageRecord.creator_id).where(StorageRecord.path == pending.object_key)
    owners = set(session.scalars(stmt))
    session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
    return bool(owners) and pending.creator_id not in owners


def record_from_store(up: Uploads, session: Session, pending: PendingUpload) -> StorageRecord | None:
    """Record ``pending`` from what the store holds at its key; ``None`` when the object is not there.

    The real MD5 is the plain ETag of a simple upload, else computed by reading the object.
    """
    head = _store(lambda: up.store.head(pending.object_key))
    if head is None:
        return None
    md5 = head.etag.lower() if _PLAIN_ETAG.fullmatch(head.etag) else _store(lambda: _md5_of(up.store, head.key))
    facts = files.UploadFacts(key=head.key, size=head.size, md5=md5, etag=head.etag, mime_type=head.content_type)
    return _record(up, session, pending.upload_id, facts)


def _md5_of(store: OssClient, key: str) -> str:
    digest = hashlib.md5()  # noqa: S324 - content digest of the protocol
    for chunk in store.iter_chunks(key):
        digest.update(chunk)
    return digest.hexdigest()


def _store(call: Callable[[], T]) -> T:
    try:
        return call()
    except StoreError as exc:
        if exc.status == 0 or exc.status >= 500:
            raise StoreUnavailableError(str(exc)) from None
        raise ConflictError(f"the store refused: {exc.code}", code="store_refused") from None
