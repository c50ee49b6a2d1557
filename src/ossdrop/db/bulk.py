"""Set-at-a-time SQL for group commit: a whole batch of policies or callbacks in a fixed number of statements.

Functions take a Core :class:`~sqlalchemy.Connection` inside a transaction and never commit (the caller, see
:func:`ossdrop.db.session.run_write`, owns it). The lock order is the one of :mod:`ossdrop.db.repository`: pending
uploads, then stored objects, then storage records. Each lock statement takes its rows in one sorted index scan,
so two batches cannot deadlock each other; a deadlock with a single-row transaction is retried as a whole.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, Table, Update, bindparam, insert, null, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.expression import Executable

from ossdrop.db.models import PendingUpload, StorageRecord, StoredObject, UploadState

Values = Mapping[str, Any]
PendingRow = Row[*tuple[Any, ...]]


def _table(model: type[PendingUpload | StorageRecord | StoredObject]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


PENDING = _table(PendingUpload)
RECORDS = _table(StorageRecord)
OBJECTS = _table(StoredObject)
_LOCK_OBJECT_ATTEMPTS = 10


def insert_ignoring_conflict(dialect: str, table: Table, rows: Sequence[Values], key: str) -> Executable:
    """``INSERT`` of ``rows`` (one statement, several ``VALUES``) that skips rows whose ``key`` already exists:
    ``ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite) or a no-op ``ON DUPLICATE KEY UPDATE`` (MySQL/MariaDB; unlike
    ``INSERT IGNORE`` it turns no other error into a warning)."""
    values = [dict(r) for r in rows]
    if dialect == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=[key])
    if dialect == "sqlite":
        return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=[key])
    if dialect in ("mysql", "mariadb"):
        stmt = mysql.insert(table).values(values)
        return stmt.on_duplicate_key_update({key: stmt.inserted[key]})
    raise NotImplementedError(f"unsupported dialect {dialect!r}")


# ----------------------------------------------------------------------------------------------- policies


def _dedup_statement(by_creator: bool) -> Select[Any]:
    r = RECORDS.c
    stmt = (
        select(r.md5, r.size, r.creator_id if by_creator else null())
        .distinct()
        .join(OBJECTS, OBJECTS.c.path == r.path)
        .where(r.md5.in_(bindparam("md5s", expanding=True)))
    )
    return stmt.where(r.creator_id.in_(bindparam("creators", expanding=True))) if by_creator else stmt


# Built once: constructing a statement costs more CPU than executing a cached one.
_DEDUP_BY_CREATOR = _dedup_statement(True)
_DEDUP_ANYONE = _dedup_statement(False)


def dedup_hits(
    conn: Connection, md5s: Collection[str], *, creator_ids: Collection[int] | None
) -> set[tuple[str, int | None, int | None]]:
    """``(md5, size, creator_id)`` of live records (their object row exists) with one of ``md5s``: the batch form
    of :func:`ossdrop.db.repository.find_by_md5`. ``creator_ids`` restricts to those creators (scope ``creator``);
    with ``None`` any creator counts and ``creator_id`` is ``None`` in the result (scope ``global``)."""
    if not md5s:
        return set()
    if creator_ids is None:
        rows = conn.execute(_DEDUP_ANYONE, {"md5s": sorted(md5s)})
    else:
        rows = conn.execute(_DEDUP_BY_CREATOR, {"md5s": sorted(md5s), "creators": sorted(creator_ids)})
    return {(md5, size, owner) for md5, size, owner in rows}


_INSERT_PENDING = insert(PENDING)


def insert_pending(conn: Connection, rows: Sequence[Values]) -> None:
    """Insert pending uploads (one statement); every ``upload_id`` must be new."""
    if rows:
        conn.execute(_INSERT_PENDING, [dict(r) for r in rows])


# ----------------------------------------------------------------------------------------------- callbacks


# Only what recording needs (see ossdrop.services.upload_rows.PendingLike): fewer columns, less to parse.
_LOCK_PENDING = (
    select(
        PENDING.c.upload_id,
        PENDING.c.object_key,
        PENDING.c.creator_id,
        PENDING.c.name,
        PENDING.c.ext,
        PENDING.c.expected_size,
        PENDING.c.state,
    )
    .where(PENDING.c.upload_id.in_(bindparam("ids", expanding=True)))
    .order_by(PENDING.c.upload_id)
    .with_for_update()
)


def lock_pending(conn: Connection, upload_ids: Collection[str]) -> dict[str, PendingRow]:
    """Lock the pending uploads ``upload_ids`` (``SELECT ... FOR UPDATE``, one statement); rows by upload id."""
    if not upload_ids:
        return {}
    return {row.upload_id: row for row in conn.execute(_LOCK_PENDING, {"ids": sorted(upload_ids)})}


_LOCK_OBJECTS = (
    select(OBJECTS.c.path)
    .where(OBJECTS.c.path.in_(bindparam("paths", expanding=True)))
    .order_by(OBJECTS.c.path)
    .with_for_update()
)
_INSERT_RECORDS = insert(RECORDS)
_INSERT_RECORDS_RETURNING = insert(RECORDS).returning(RECORDS.c.id, RECORDS.c.upload_id)
_RECORD_IDS = select(RECORDS.c.id, RECORDS.c.upload_id).where(RECORDS.c.upload_id.in_(bindparam("ids", expanding=True)))


@functools.cache
def _insert_objects(dialect: str) -> Executable:
    """The insert-ignoring-conflict of stored objects for ``dialect``, built once (its rows come as parameters)."""
    if dialect == "postgresql":
        return postgresql.insert(OBJECTS).on_conflict_do_nothing(index_elements=["path"])
    if dialect == "sqlite":
        return sqlite.insert(OBJECTS).on_conflict_do_nothing(index_elements=["path"])
    if dialect in ("mysql", "mariadb"):
        stmt = mysql.insert(OBJECTS)
        return stmt.on_duplicate_key_update(path=stmt.inserted.path)
    raise NotImplementedError(f"unsupported dialect {dialect!r}")


def lock_objects(conn: Connection, rows: Iterable[Values]) -> None:
    """Make sure the stored-object row of each of ``rows`` (``path``, ``md5``, ``size``, ``created_at``) exists
    and lock them all until commit: the batch form of :func:`ossdrop.db.repository.lock_object`, including its
    re-insert when a concurrent last-delete removed a row before our lock was granted."""
    wanted = {r["path"]: r for r in rows}
    insert_stmt = _insert_objects(conn.dialect.name)
    for _ in range(_LOCK_OBJECT_ATTEMPTS):
        if not wanted:
            return
        ordered = sorted(wanted)
        params = [{c: wanted[p][c] for c in ("path", "md5", "size", "created_at")} for p in ordered]
        conn.execute(insert_stmt, params)
        for (path,) in conn.execute(_LOCK_OBJECTS, {"paths": ordered}):
            wanted.pop(path, None)
    raise RuntimeError(f"could not lock objects {sorted(wanted)!r}: they kept disappearing")


def insert_records(conn: Connection, rows: Sequence[Values]) -> dict[str, int]:
    """Insert storage records that all carry an ``upload_id`` (one statement); their new ids by upload id.

    Uses ``RETURNING`` where the database has it (PostgreSQL, SQLite, MariaDB >= 10.5), else reads the ids back
    by the unique ``upload_id``.
    """
    if not rows:
        return {}
    params = [dict(r) for r in rows]
    if conn.dialect.insert_executemany_returning:
        return {upload_id: record_id for record_id, upload_id in conn.execute(_INSERT_RECORDS_RETURNING, params)}
    conn.execute(_INSERT_RECORDS, params)
    found = conn.execute(_RECORD_IDS, {"ids": sorted(str(r["upload_id"]) for r in rows)})
    return {upload_id: record_id for record_id, upload_id in found}


def _complete_statement() -> Update:
    made = RECORDS.c.upload_id == PENDING.c.upload_id
    return (
        update(PENDING)
        .where(PENDING.c.upload_id.in_(bindparam("ids", expanding=True)))
        .values(
            state=UploadState.COMPLETED.value,
            storage_id=select(RECORDS.c.id).where(made).scalar_subquery(),
            completed_at=select(RECORDS.c.created_at).where(made).scalar_subquery(),
        )
    )


_COMPLETE_PENDING = _complete_statement()


def complete_pending(conn: Connection, upload_ids: Collection[str]) -> None:
    """Mark pending uploads completed by the records carrying their upload ids, at those records' creation time
    (one statement; the values come from correlated subqueries)."""
    if upload_ids:
        conn.execute(_COMPLETE_PENDING, {"ids": sorted(upload_ids)})
