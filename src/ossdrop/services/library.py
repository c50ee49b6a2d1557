"""A user's files: listing, reading and deleting records (the object goes when its last record goes)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ossdrop.client.oss import OssClient, StoreError
from ossdrop.db import repository as repo
from ossdrop.db.models import StorageRecord
from ossdrop.services import files
from ossdrop.services.app_errors import BadInputError, NotFoundError

log = logging.getLogger(__name__)


def list_files(session: Session, creator_id: int, *, cursor: str | None, limit: int) -> repo.Page:
    """The creator's files, newest first; ``cursor`` is a previous page's ``next_cursor``."""
    if not 1 <= limit <= 100:
        raise BadInputError("limit must be 1..100", code="bad_limit")
    before: int | None = None
    if cursor:
        if not cursor.isdigit() or len(cursor) > 12:
            raise BadInputError("cursor is not one this API gave out", code="bad_cursor")
        before = int(cursor)
    try:
        return repo.list_by_creator(session, creator_id, limit=limit, before_id=before)
    finally:
        session.commit()  # ends the read; unlike rollback, keeps loaded rows readable


def get_file(session: Session, creator_id: int, file_id: int) -> StorageRecord:
    """The creator's file ``file_id``; :class:`NotFoundError` when missing or another user's."""
    record = repo.get_record(session, file_id) if 0 < file_id < 2**31 else None
    session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
    if record is None or record.creator_id != creator_id:
        raise NotFoundError(f"no file {file_id}")
    return record


def delete_file(session: Session, store: OssClient, creator_id: int, file_id: int) -> None:
    """Delete the creator's file; the object is removed from the store when no other record references it.

    If the store fails then, the object stays behind as an orphan for ``ossdrop sweep``: the record is gone either
    way, so the caller sees a successful delete.
    """
    if not 0 < file_id < 2**31:
        raise NotFoundError(f"no file {file_id}")
    result = files.delete_file(session, file_id, creator_id=creator_id)
    if not result.deleted:
        raise NotFoundError(f"no file {file_id}")
    if result.remove_object and result.path is not None:
        try:
            store.delete(result.path)
        except StoreError as exc:
            log.warning("object %s left for sweep: %s", result.path, exc)
