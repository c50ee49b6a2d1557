"""Recording uploaded files: pending uploads, MD5 verification, deduplication and refcounted deletes.

No HTTP and no store I/O here: the caller passes in facts it obtained from the store (size, ETag, the real MD5,
media probe results) and performs the I/O these functions ask for (removing an object, reading a byte range).

Every public function that writes runs one transaction on the given session and commits it, retrying the whole
unit on a transient lock conflict (deadlock, lock wait timeout, SQLite busy). Correctness under concurrency rests
on the ``storage_objects`` row of each key (see :mod:`ossdrop.db.models`): recording a reference and deleting
one both lock it first, so "is this the last reference?" is answered by one transaction at a time.

Dedup design. Keys are content-addressed (:mod:`ossdrop.services.keys`). An *instant upload* finds a live record
with the same MD5 and size (:func:`find_duplicate`) and adds a record pointing at the same key
(:func:`record_copy`) without any bytes moving. In scope ``creator`` only the creator's own records are
candidates; in ``global`` all are, but the caller must first check a proof of possession (:func:`proof_range`,
:func:`proof_matches`); ``off`` never deduplicates. The MD5 a client claims is never trusted: a callback is
recorded only when the real MD5 of the stored bytes equals the MD5 in its key. A key without an MD5 (the client
gave none) claims nothing; its record gets the real MD5, so later uploads of that content dedup against it.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ossdrop.db import repository as repo
from ossdrop.db.models import PendingUpload, StorageRecord, UploadState
from ossdrop.db.session import begin_write, is_retryable
from ossdrop.services.keys import DEFAULT_UPLOAD_DIR, DedupScope, ext_of, normalize_md5, parse_key
from ossdrop.services.upload_rows import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from ossdrop.services.upload_rows import UploadFacts as UploadFacts
from ossdrop.services.upload_rows import new_upload_id as new_upload_id
from ossdrop.services.upload_rows import pending_values, upload_record_values

T = TypeVar("T")

TRANSACTION_ATTEMPTS = 8
PROOF_MAX_LENGTH = 64 * 1024
_PLAIN_ETAG_RE = re.compile(r'^"?([0-9A-Fa-f]{32})"?$')


class FilesError(Exception):
    """Base of the errors of this module."""


class UnknownUploadError(FilesError):
    """No pending upload with this id, or its record was already deleted again."""


class UploadMismatchError(FilesError):
    """The callback's object key is not the key the pending upload was issued for; nothing was changed."""


class UnverifiableContentError(FilesError):
    """Neither a real MD5 nor a plain (non-multipart) ETag was given, so the content cannot be checked."""


class ContentMismatchError(FilesError):
    """The stored bytes are not what the key (or the announced size) claims; nothing was recorded.

    The pending upload is marked expired. ``remove_object`` tells the caller to delete the object: it is false
    when other records already reference the key, because then removing it would break their files.
    """

    def __init__(self, key: str, claimed_md5: str | None, actual_md5: str, *, remove_object: bool) -> None:
        claim = claimed_md5 or "no MD5 (its size is wrong)"
        super().__init__(f"content of {key!r} has MD5 {actual_md5}, the key claims {claim}")
        self.key = key
        self.claimed_md5 = claimed_md5
        self.actual_md5 = actual_md5
        self.remove_object = remove_object


@dataclass(frozen=True)
class DeleteResult:
    """``deleted``: this call deleted the record; ``remove_object``: the caller must now delete ``path`` from
    the store, because no record references it any more (true for exactly one of several concurrent deletes).
    """

    deleted: bool
    remove_object: bool
    path: str | None


def begin_upload(
    session: Session,
    *,
    creator_id: int,
    name: str,
    md5: str | None,
    size: int | None,
    scope: DedupScope,
    now: int,
    ttl: int,
    upload_dir: str = DEFAULT_UPLOAD_DIR,
) -> PendingUpload:
    """Record that an upload policy is being issued and return the pending upload (commits).

    ``pending.object_key`` is the key the policy must pin and ``pending.upload_id`` the id the callback must carry
    back. ``md5``/``size`` are the client's claims (``md5=None``: none, the key is not content-addressed);
    ``expires_at`` is ``now + ttl``.
    """
    values = pending_values(
        creator_id=creator_id, name=name, md5=md5, size=size, scope=scope, now=now, ttl=ttl, upload_dir=upload_dir
    )
    pending = PendingUpload(**values)
    return _transaction(session, lambda: repo.add_pending(session, pending))


def record_upload(
    session: Session, upload_id: str, facts: UploadFacts, *, now: int, upload_dir: str = DEFAULT_UPLOAD_DIR
) -> StorageRecord:
    """Record the object of pending upload ``upload_id`` after verifying it (commits); idempotent.

    A repeated call for the same upload returns the same record (same ``id``), also when the calls race. An
    expired pending upload is still recorded: the policy was valid when the client used it, and losing the upload
    would be worse. Raises :class:`UnknownUploadError`, :class:`UploadMismatchError`,
    :class:`UnverifiableContentError` or :class:`ContentMismatchError` (after committing the expiry).
    """
    actual = real_md5(facts)
    outcome = _transaction(session, lambda: _record_upload_tx(session, upload_id, facts, actual, now, upload_dir))
    if isinstance(outcome, ContentMismatchError):
        raise outcome
    return outcome


def _record_upload_tx(
    session: Session, upload_id: str, facts: UploadFacts, actual: str, now: int, upload_dir: str
) -> StorageRecord | ContentMismatchError:
    pending = repo.get_pending(session, upload_id, lock=True)
    if pending is None:
        raise UnknownUploadError(f"no pending upload {upload_id!r}")
    if pending.state == UploadState.COMPLETED.value:
        done = repo.get_record_by_upload_id(session, upload_id)
        if done is None:
            raise UnknownUploadError(f"upload {upload_id!r} was recorded and its record deleted since")
        return done
    if facts.key != pending.object_key:
        raise UploadMismatchError(f"upload {upload_id!r} is for {pending.object_key!r}, not {facts.key!r}")
    claimed = parse_key(facts.key, upload_dir=upload_dir).md5  # None: the key claims nothing, the size decides
    size_ok = pending.expected_size is None or pending.expected_size == facts.size
    if (claimed is not None and actual != claimed) or not size_ok:
        repo.expire_pending(session, pending, now=now)
        in_use = repo.get_object(session, facts.key) is not None
        return ContentMismatchError(facts.key, claimed, actual, remove_object=not in_use)
    repo.lock_object(session, path=facts.key, md5=actual, size=facts.size, now=now)
    record = StorageRecord(**upload_record_values(pending, facts, actual, now))
    repo.add_record(session, record)
    repo.complete_pending(session, pending, storage_id=record.id, now=now)
    return record


def real_md5(facts: UploadFacts) -> str:
    """The real MD5 of the stored bytes: ``facts.md5``, else a plain ETag; raises :class:`UnverifiableContentError`."""
    if facts.md5 is not None:
        return normalize_md5(facts.md5)
    match = _PLAIN_ETAG_RE.fullmatch(facts.etag or "")
    if match is None:
        raise UnverifiableContentError(f"no MD5 for {facts.key!r} and ETag {facts.etag!r} is not one")
    return match[1].lower()


def find_duplicate(
    session: Session, *, md5: str, size: int, creator_id: int, scope: DedupScope
) -> StorageRecord | None:
    """A live record with content ``md5``/``size`` that an instant upload by ``creator_id`` may reuse, or ``None``.

    Scope ``creator``: only the creator's own records; ``global``: anybody's (check a proof before using it);
    ``off``: always ``None``. Read-only.
    """
    if scope is DedupScope.OFF:
        return None
    owner = creator_id if scope is DedupScope.CREATOR else None
    return repo.find_by_md5(session, normalize_md5(md5), size=size, creator_id=owner)


def record_copy(
    session: Session,
    source: StorageRecord,
    *,
    creator_id: int,
    name: str,
    now: int,
    upload_id: str | None = None,
) -> StorageRecord | None:
    """Instant upload: a new record for ``creator_id`` pointing at ``source``'s object (commits).

    Returns ``None`` when the object was deleted meanwhile (the caller then falls back to a real upload). With an
    ``upload_id`` the call is idempotent: a second call with the same id returns the first record.
    """
    return _transaction(session, lambda: _record_copy_tx(session, source, creator_id, name, now, upload_id))


def _record_copy_tx(
    session: Session, source: StorageRecord, creator_id: int, name: str, now: int, upload_id: str | None
) -> StorageRecord | None:
    if upload_id is not None:
        done = repo.get_record_by_upload_id(session, upload_id)
        if done is not None:
            return done
    obj = repo.get_object(session, source.path)
    if obj is None:
        return None
    locked = repo.lock_object(session, path=source.path, md5=source.md5, size=source.size, now=now)
    if repo.count_references(session, source.path) == 0:
        # The last reference went while we waited for the lock, so the object is being removed from the store;
        # drop the row lock_object re-created rather than reference a doomed object.
        repo.delete_object(session, locked)
        return None
    record = StorageRecord(
        name=name[:MAX_NAME_LENGTH],
        path=source.path,
        ext=ext_of(name),
        md5=source.md5,
        creator_id=creator_id,
        created_at=now,
        size=source.size,
        mime_type=source.mime_type,
        width=source.width,
        height=source.height,
        duration=source.duration,
        etag=source.etag,
        upload_id=upload_id,
    )
    return repo.add_record(session, record)


def delete_file(session: Session, record_id: int, *, creator_id: int | None = None) -> DeleteResult:
    """Delete record ``record_id`` (only if owned by ``creator_id`` when that is given) (commits).

    ``remove_object`` is true only when this delete removed the last reference; concurrent deletes of records
    sharing one object agree on exactly one of them doing so. Deleting a missing record is not an error.
    """
    return _transaction(session, lambda: _delete_tx(session, record_id, creator_id))


def _delete_tx(session: Session, record_id: int, creator_id: int | None) -> DeleteResult:
    record = repo.get_record(session, record_id)
    if record is None or (creator_id is not None and record.creator_id != creator_id):
        return DeleteResult(deleted=False, remove_object=False, path=None)
    path = record.path
    obj = repo.lock_object(session, path=path, md5=record.md5, size=record.size, now=record.created_at)
    record = repo.get_record(session, record_id, lock=True)
    if record is None:
        # A concurrent delete won. If our lock_object re-created the row, leave no unreferenced row behind.
        if repo.count_references(session, path) == 0:
            repo.delete_object(session, obj)
        return DeleteResult(deleted=False, remove_object=False, path=path)
    repo.delete_record(session, record)
    last = repo.count_references(session, path) == 0
    if last:
        repo.delete_object(session, obj)
    return DeleteResult(deleted=True, remove_object=last, path=path)


def expire_upload(session: Session, upload_id: str, *, now: int) -> bool:
    """Mark a still-pending upload expired (reconcile found no object for it) (commits); false if it was not
    pending (completed or already expired) or unknown.
    """

    def work() -> bool:
        pending = repo.get_pending(session, upload_id, lock=True)
        if pending is None or pending.state != UploadState.PENDING.value:
            return False
        repo.expire_pending(session, pending, now=now)
        return True

    return _transaction(session, work)


def stale_uploads(session: Session, *, now: int, limit: int = 100) -> list[PendingUpload]:
    """Pending uploads whose policy has expired: for each, the reconciler asks the store whether the object
    exists and then calls :func:`record_upload` or :func:`expire_upload`. Read-only (ends the transaction).
    """
    return _transaction(session, lambda: repo.list_stale_pending(session, now=now, limit=limit))


def proof_range(size: int, *, rng: random.Random | None = None) -> tuple[int, int]:
    """A random byte range ``(first, last)`` (inclusive, as in an HTTP ``Range``) of an object of ``size`` bytes.

    For scope ``global``: the client must answer with the MD5 of these bytes, which only a holder of the content
    can compute. Up to 64 KiB long; the whole object when it is smaller. ``size`` must be positive.
    """
    if size <= 0:
        raise ValueError("a proof needs a non-empty object")
    chooser = rng or secrets.SystemRandom()
    length = size if size <= PROOF_MAX_LENGTH else chooser.randint(PROOF_MAX_LENGTH // 2, PROOF_MAX_LENGTH)
    first = chooser.randint(0, size - length)
    return first, first + length - 1


def proof_matches(range_bytes: bytes, client_md5: str) -> bool:
    """Whether ``client_md5`` (hex, any case) is the MD5 of ``range_bytes`` read from the store; constant time."""
    expected = hashlib.md5(range_bytes).hexdigest()  # noqa: S324 - content digest of the protocol, not a password
    return hmac.compare_digest(expected, client_md5.strip().lower())


def _transaction(session: Session, work: Callable[[], T]) -> T:
    # The whole unit re-runs after a rollback: a deadlock victim's earlier statements were all undone.
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            begin_write(session)
            result = work()
            session.commit()
            return result
        except DBAPIError as exc:
            session.rollback()
            if attempt == TRANSACTION_ATTEMPTS or not is_retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter spreads the retries
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")
