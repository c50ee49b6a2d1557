"""The hand-written policy statements (ossdrop.db.driver_sql) answer exactly as their Core twins (ossdrop.db.bulk),
on MariaDB and PostgreSQL (SQLite has no async driver: its writers use the Core statements)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from ossdrop.db import bulk, driver_sql
from ossdrop.db.async_writer import AsyncWriterConnection, create_async_writer_engine
from ossdrop.db.models import PendingUpload
from ossdrop.services import files
from ossdrop.services.keys import DedupScope
from ossdrop.services.upload_rows import pending_values
from tests.db.conftest import (  # noqa: F401 - fixtures: db_engine, migrated_url, session
    fixture_db_engine,
    fixture_migrated_url,
    fixture_session,
)
from tests.db.test_writers import Deadlock, kill

T = TypeVar("T")
NOW = 1_700_000_000


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(autouse=True)
def _server_databases_only(db_engine: Engine) -> None:
    if db_engine.dialect.name == "sqlite":
        pytest.skip("SQLite's writers use the Core statements (no async driver)")


def _on_driver(db_engine: Engine, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """``work(driver_conn, dialect)`` in one committed transaction of the async writer, as group commit runs it."""
    engine = create_async_writer_engine(db_engine.url)
    assert engine is not None
    conn = AsyncWriterConnection(engine)

    async def main() -> T:
        try:
            return await conn.run_driver(lambda driver_conn: work(driver_conn, engine.dialect))
        finally:
            await conn.close()

    return asyncio.run(main())


def _record(session: Session, creator: int, data: bytes) -> None:
    pending = files.begin_upload(
        session,
        creator_id=creator,
        name="a.bin",
        md5=_md5(data),
        size=len(data),
        scope=DedupScope.CREATOR,
        now=NOW,
        ttl=60,
    )
    facts = files.UploadFacts(key=pending.object_key, size=len(data), md5=_md5(data))
    files.record_upload(session, pending.upload_id, facts, now=NOW)


@pytest.mark.parametrize("creators", [[1], [1, 2, 3], None], ids=["one-creator", "creators", "anyone"])
def test_dedup_hits_match_the_core_statement(db_engine: Engine, session: Session, creators: list[int] | None) -> None:
    for creator, data in [(1, b"one"), (1, b"two"), (2, b"two"), (3, b"three"), (4, b"four")]:
        _record(session, creator, data)
    md5s = {_md5(d) for d in (b"one", b"two", b"three", b"four", b"absent")}
    with db_engine.connect() as conn:
        expected = bulk.dedup_hits(conn, md5s, creator_ids=creators)
    got = _on_driver(db_engine, lambda c, dialect: driver_sql.dedup_hits(c, dialect, md5s, creator_ids=creators))
    assert got == expected and got  # the same (md5, size, owner) triples, and some were found
    assert (
        _on_driver(db_engine, lambda c, dialect: driver_sql.dedup_hits(c, dialect, set(), creator_ids=creators))
        == set()
    )


def test_insert_pending_writes_the_rows_the_core_statement_writes(db_engine: Engine, session: Session) -> None:
    def values(creator: int, name: str) -> dict[str, Any]:
        return pending_values(
            creator_id=creator, name=name, md5=_md5(name.encode()), size=len(name), scope=DedupScope.CREATOR,
            now=NOW, ttl=60, upload_dir="user-dirs",
        )  # fmt: skip

    core_rows = [values(1, "core-é.png"), values(2, "core.tar.gz")]
    driver_rows = [values(1, "driver-é.png"), values(2, "driver.tar.gz")]
    with db_engine.begin() as conn:
        bulk.insert_pending(conn, core_rows)
    _on_driver(db_engine, lambda c, dialect: driver_sql.insert_pending(c, dialect, driver_rows))
    stored = {p.upload_id: p for p in session.scalars(select(PendingUpload))}  # committed: another session sees them
    columns = [c.key for c in PendingUpload.__table__.columns if c.key != "id"]
    for rows in (core_rows, driver_rows):
        for row in rows:
            assert {k: getattr(stored[row["upload_id"]], k) for k in row} == row
    core = [{c: getattr(stored[r["upload_id"]], c) for c in columns if c not in r} for r in core_rows]
    driver = [{c: getattr(stored[r["upload_id"]], c) for c in columns if c not in r} for r in driver_rows]
    assert core == driver  # the columns neither sets take the same defaults


def test_a_driver_error_is_a_dbapi_error_and_writes_nothing(db_engine: Engine, session: Session) -> None:
    row = _row("a")
    with pytest.raises(DBAPIError):  # the same upload id twice: a unique violation, all of it rolled back
        _on_driver(db_engine, lambda c, dialect: driver_sql.insert_pending(c, dialect, [row, dict(row)]))
    assert session.scalars(select(PendingUpload)).all() == []


async def backend_id(driver_conn: Any) -> int:
    """The server's id of ``driver_conn`` (asyncpg's or asyncmy's)."""
    if isinstance(driver_conn, asyncpg.Connection):
        return int(await driver_conn.fetchval("SELECT pg_backend_pid()"))
    async with driver_conn.cursor() as cursor:
        await cursor.execute("SELECT CONNECTION_ID()")
        return int((await cursor.fetchone())[0])


def _row(name: str) -> dict[str, Any]:
    return pending_values(
        creator_id=1, name=name, md5=None, size=1, scope=DedupScope.CREATOR, now=NOW, ttl=60, upload_dir="user-dirs"
    )


def _writer(db_engine: Engine) -> tuple[AsyncWriterConnection, Dialect]:
    engine = create_async_writer_engine(db_engine.url)
    assert engine is not None
    return AsyncWriterConnection(engine), engine.dialect


def test_a_connection_the_server_dropped_is_replaced_on_the_driver_path(db_engine: Engine, session: Session) -> None:
    conn, dialect = _writer(db_engine)
    row = _row("a")

    async def main() -> tuple[int, int]:
        try:
            first = await conn.run_driver(backend_id)
            kill(db_engine, first)
            await conn.run_driver(lambda c: driver_sql.insert_pending(c, dialect, [row]))  # no error reaches us
            return first, await conn.run_driver(backend_id)
        finally:
            await conn.close()

    first, second = asyncio.run(main())
    assert first != second
    assert [p.upload_id for p in session.scalars(select(PendingUpload))] == [row["upload_id"]]


def test_a_deadlock_victim_is_run_again(db_engine: Engine, session: Session) -> None:
    conn, dialect = _writer(db_engine)
    row = _row("a")
    tries: list[int] = []

    async def victim_once(driver_conn: Any) -> int:
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("INSERT ...", {}, Deadlock())
        await driver_sql.insert_pending(driver_conn, dialect, [row])
        return len(tries)

    async def main() -> int:
        try:
            return await conn.run_driver(victim_once)
        finally:
            await conn.close()

    assert asyncio.run(main()) == 2
    assert [p.upload_id for p in session.scalars(select(PendingUpload))] == [row["upload_id"]]


def test_each_event_loop_gets_its_own_connection(db_engine: Engine) -> None:
    conn, _dialect = _writer(db_engine)

    async def kept_twice() -> int:
        try:
            first = await conn.run_driver(backend_id)
            assert await conn.run_driver(backend_id) == first  # kept between units on one loop
            return first
        finally:
            await conn.close()

    assert asyncio.run(kept_twice()) != asyncio.run(kept_twice())  # a new loop: a new connection
