"""All SQL of the app server: storage records, stored objects (the per-key lock) and pending uploads.

Functions take a :class:`~sqlalchemy.orm.Session` and never commit: the caller (``ossdrop.services``) owns the
transaction, so several calls form one atomic unit. Lock order, everywhere, is pending upload -> stored object
-> storage record; keeping one order is what rules out deadlocks between recording and deleting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from ossdrop.db.bulk import insert_ignoring_conflict
from ossdrop.db.models import PendingUpload, StorageRecord, StoredObject, UploadState

MAX_PAGE_SIZE = 1000
# lock_object re-inserts when the row vanished between its insert and its lock (a concurrent last-delete).
_LOCK_OBJECT_ATTEMPTS = 10


@dataclass(frozen=True)
class Page:
    """A page of records, newest first; ``next_cursor`` is passed back as ``before_id``, ``None`` at the end."""

    items: Sequence[StorageRecord]
    next_cursor: int | None


# ----------------------------------------------------------------------------------------------- records


def add_record(session: Session, record: StorageRecord) -> StorageRecord:
    """Insert ``record`` and flush, so ``record.id`` is set. The caller must hold the lock of its object
    (:func:`lock_object`), otherwise a concurrent last-delete could remove the object under it.
    """
    session.add(record)
    session.flush()
    return record


def get_record(session: Session, record_id: int, *, lock: bool = False) -> StorageRecord | None:
    """The record ``record_id`` or ``None``; ``lock=True`` locks its row and re-reads it from the database."""
    stmt = select(StorageRecord).where(StorageRecord.id == record_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def get_record_by_upload_id(session: Session, upload_id: str) -> StorageRecord | None:
    """The record made from pending upload ``upload_id``, or ``None``."""
    return session.scalars(select(StorageRecord).where(StorageRecord.upload_id == upload_id)).one_or_none()


def list_by_creator(session: Session, creator_id: int, *, limit: int, before_id: int | None = None) -> Page:
    """Records of ``creator_id``, newest (highest id) first, ``limit`` (1..1000) at a time.

    Keyset pagination on ``(creator_id, id)``: stable while rows are added or deleted, and as cheap on page
    1000 as on page 1.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
    stmt = select(StorageRecord).where(StorageRecord.creator_id == creator_id)
    if before_id is not None:
        stmt = stmt.where(StorageRecord.id < before_id)
    rows = list(session.scalars(stmt.order_by(StorageRecord.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        return Page(items=rows[:limit], next_cursor=rows[limit - 1].id)
    return Page(items=rows, next_cursor=None)


def find_by_md5(session: Session, md5: str, *, size: int | None, creator_id: int | None) -> StorageRecord | None:
    """The newest record of content ``md5`` whose object is live, for deduplication.

    ``creator_id`` restricts the search to that creator's records (scope ``creator``), ``None`` searches all
    (scope ``global``). ``size``, when given, must match too, which makes an MD5 collision useless.
    """
    stmt = (
        select(StorageRecord)
        .join(StoredObject, StoredObject.path == StorageRecord.path)
        .where(StorageRecord.md5 == md5)
    )
    if creator_id is not None:
        stmt = stmt.where(StorageRecord.creator_id == creator_id)
    if size is not None:
        stmt = stmt.where(StorageRecord.size == size)
    return session.scalars(stmt.order_by(StorageRecord.id.desc()).limit(1)).first()


def delete_record(session: Session, record: StorageRecord) -> None:
    """Delete ``record`` (flushes). The caller must hold the lock of its object."""
    session.delete(record)
    session.flush()


def count_references(session: Session, path: str) -> int:
    """How many records point at object ``path``. Exact only while holding that object's lock."""
    stmt = select(func.count()).select_from(StorageRecord).where(StorageRecord.path == path)
    return int(session.scalar(stmt) or 0)


# ----------------------------------------------------------------------------------------------- objects


def get_object(session: Session, path: str) -> StoredObject | None:
    """The stored-object row of ``path`` (no lock), or ``None`` when no record references it."""
    return session.get(StoredObject, path)


def lock_object(session: Session, *, path: str, md5: str, size: int | None, now: int) -> StoredObject:
    """Make sure the row of object ``path`` exists and lock it (``SELECT ... FOR UPDATE``) until commit.

    Creation is an insert that ignores a conflicting row (``ON CONFLICT DO NOTHING`` / ``ON DUPLICATE KEY
    UPDATE``), so concurrent first references never fail with a duplicate key; if a concurrent last-delete
    removes the row before our lock is granted, insert again. On SQLite the whole database is already locked by
    ``BEGIN IMMEDIATE`` and ``FOR UPDATE`` is omitted.
    """
    table = StoredObject.__table__
    assert isinstance(table, Table)
    values: dict[str, object] = {"path": path, "md5": md5, "size": size, "created_at": now}
    for _ in range(_LOCK_OBJECT_ATTEMPTS):
        session.execute(insert_ignoring_conflict(session.get_bind().dialect.name, table, [values], "path"))
        stmt = (
            select(StoredObject)
            .where(StoredObject.path == path)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = session.scalars(stmt).one_or_none()
        if row is not None:
            return row
    raise RuntimeError(f"could not lock object {path!r}: it kept disappearing")


def delete_object(session: Session, obj: StoredObject) -> None:
    """Delete the stored-object row (flushes): the object is no longer referenced."""
    session.delete(obj)
    session.flush()


# ----------------------------------------------------------------------------------------------- pending uploads


def add_pending(session: Session, pending: PendingUpload) -> PendingUpload:
    """Insert a pending upload (flushes); ``upload_id`` must be new (unique constraint)."""
    session.add(pending)
    session.flush()
    return pending


def get_pending(session: Session, upload_id: str, *, lock: bool = False) -> PendingUpload | None:
    """The pending upload ``upload_id`` or ``None``; ``lock=True`` locks it, serialising repeated callbacks."""
    stmt = select(PendingUpload).where(PendingUpload.upload_id == upload_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def complete_pending(session: Session, pending: PendingUpload, *, storage_id: int, now: int) -> None:
    """Mark ``pending`` completed by record ``storage_id`` (flushes)."""
    pending.state = UploadState.COMPLETED.value
    pending.storage_id = storage_id
    pending.completed_at = now
    session.flush()


def expire_pending(session: Session, pending: PendingUpload, *, now: int) -> None:
    """Mark ``pending`` expired: no object will be recorded for it (flushes)."""
    pending.state = UploadState.EXPIRED.value
    pending.completed_at = now
    session.flush()


def list_stale_pending(session: Session, *, now: int, limit: int) -> list[PendingUpload]:
    """Pending uploads whose policy expired at or before ``now``, oldest expiry first: the reconcile work list."""
    stmt = (
        select(PendingUpload)
        .where(PendingUpload.state == UploadState.PENDING.value, PendingUpload.expires_at <= now)
        .order_by(PendingUpload.expires_at, PendingUpload.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
