"""The policy batch (:func:`ossdrop.db.bulk.dedup_hits` then :func:`ossdrop.db.bulk.insert_pending`) run on the
async driver's own connection: asyncmy (MySQL/MariaDB; ``%s`` placeholders, a DB-API cursor) or asyncpg
(PostgreSQL; ``$n`` placeholders, its own API).

Issuing a policy is the app's hottest write. Through SQLAlchemy's async execution layer these two statements and
the commit cost about 440 us of CPU per batch of 16 on the event loop; straight on the driver about 180 us
(``bench/app_server.py`` sees it as ~16 us per policy). The SQL is written here by hand because that layer is
what costs; its table and column names come from the models, and a test runs both forms on the same rows and
compares their answers. Errors come out as SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError`, as from a Core
statement, so the writer's retry rules apply unchanged. The batch writes with one ``INSERT``: on MySQL it commits
with the writer's transaction, on asyncpg by itself (see ``AsyncWriterConnection.run_driver``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from ossdrop.db.bulk import OBJECTS, PENDING, RECORDS, Values

# Insert order of a pending upload's columns (the values of pending_values); the rest take their defaults.
PENDING_COLUMNS = (
    "upload_id",
    "object_key",
    "creator_id",
    "name",
    "ext",
    "expected_size",
    "expected_md5",
    "state",
    "created_at",
    "expires_at",
)


# Only names of the models and placeholders are formatted into the SQL here; values always travel as parameters.
@functools.lru_cache(maxsize=256)
def _insert_sql(rows: int) -> str:
    """One ``INSERT`` of ``rows`` rows (several ``VALUES`` lists): one statement and one answer whatever the batch
    size (an ``executemany`` may send one statement per row)."""
    one = f"({', '.join(['%s'] * len(PENDING_COLUMNS))})"
    return f"INSERT INTO {PENDING.name} ({', '.join(PENDING_COLUMNS)}) VALUES {', '.join([one] * rows)}"  # noqa: S608


@functools.lru_cache(maxsize=256)
def _dedup_sql(md5s: int, creators: int | None) -> str:
    """The SQL of :data:`ossdrop.db.bulk._DEDUP_BY_CREATOR` (or ``_DEDUP_ANYONE`` for ``creators=None``) with
    ``md5s`` and ``creators`` placeholders in its two ``IN`` lists."""
    owner = "r.creator_id" if creators is not None else "NULL"
    head = f"SELECT DISTINCT r.md5, r.size, {owner} FROM {RECORDS.name} AS r"  # noqa: S608 - see _insert_sql
    sql = f"{head} JOIN {OBJECTS.name} AS o ON o.path = r.path WHERE r.md5 IN ({', '.join(['%s'] * md5s)})"
    if creators is not None:
        sql += f" AND r.creator_id IN ({', '.join(['%s'] * creators)})"
    return sql


async def dedup_hits(
    driver_conn: Any, dialect: Dialect, md5s: Collection[str], *, creator_ids: Collection[int] | None
) -> set[tuple[str, int | None, int | None]]:
    """:func:`ossdrop.db.bulk.dedup_hits` on the driver connection ``driver_conn`` of ``dialect``."""
    if not md5s:
        return set()
    params: list[Any] = sorted(md5s)
    creators = None if creator_ids is None else sorted(creator_ids)
    sql = _dedup_sql(len(params), None if creators is None else len(creators))
    rows = await _run(driver_conn, dialect, sql, params + (creators or []), fetch=True)
    return {(md5, size, owner) for md5, size, owner in rows}


async def insert_pending(driver_conn: Any, dialect: Dialect, rows: Sequence[Values]) -> None:
    """:func:`ossdrop.db.bulk.insert_pending` on the driver connection ``driver_conn`` of ``dialect``."""
    if rows:
        params = [r[c] for r in rows for c in PENDING_COLUMNS]
        await _run(driver_conn, dialect, _insert_sql(len(rows)), params)


async def _run(
    driver_conn: Any, dialect: Dialect, sql: str, params: Sequence[Any], *, fetch: bool = False
) -> list[tuple[Any, ...]]:
    try:
        if dialect.driver == "asyncpg":
            return await _run_asyncpg(driver_conn, sql, params, fetch)
        return await _run_cursor(driver_conn, sql, params, fetch)
    except driver_errors(dialect) as exc:
        raise dbapi_error(dialect, exc, sql, params) from exc


async def _run_asyncpg(driver_conn: Any, sql: str, params: Sequence[Any], fetch: bool) -> list[tuple[Any, ...]]:
    numbered = _numbered(sql)
    if fetch:
        return [tuple(row) for row in await driver_conn.fetch(numbered, *params)]
    await driver_conn.execute(numbered, *params)
    return []


async def _run_cursor(driver_conn: Any, sql: str, params: Sequence[Any], fetch: bool) -> list[tuple[Any, ...]]:
    async with driver_conn.cursor() as cursor:
        await cursor.execute(sql, params)
        return list(await cursor.fetchall()) if fetch else []


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """``sql`` with its ``%s`` placeholders as asyncpg's ``$1, $2, ...`` (the SQL here has no other ``%``)."""
    parts = sql.split("%s")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], start=1)) + parts[-1]


def driver_errors(dialect: Dialect) -> tuple[type[BaseException], ...]:
    """What the driver of ``dialect`` raises for a failed statement or a lost connection."""
    if dialect.driver == "asyncpg":
        return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
    return (dialect.loaded_dbapi.Error,)


def dbapi_error(
    dialect: Dialect, exc: BaseException, sql: str | None = None, params: Sequence[Any] | None = None
) -> DBAPIError:
    """``exc`` (one of :func:`driver_errors`) as SQLAlchemy would raise it from a statement, telling whether the
    connection was lost (``connection_invalidated``)."""
    if dialect.driver == "asyncpg":  # SQLSTATE class 08: connection exception; 57P0x: the server shut it
        state = str(getattr(exc, "sqlstate", None) or "")
        lost = isinstance(exc, asyncpg.InterfaceError | OSError) or state.startswith(("08", "57P"))
    else:
        lost = bool(dialect.is_disconnect(exc, None, None))  # type: ignore[arg-type]
    error = DBAPIError.instance(sql, params, exc, BaseException, connection_invalidated=lost)  # type: ignore[arg-type]
    assert isinstance(error, DBAPIError)
    return error
