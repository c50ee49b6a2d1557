"""The group-commit writers' connections (ossdrop.db.session.WriterConnection, ossdrop.db.async_writer): one
contract for both, on SQLite, MariaDB and PostgreSQL: a unit commits or leaves nothing, a deadlock re-runs it, a
connection the server killed is replaced without failing the unit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import OperationalError

from ossdrop.db.async_writer import AsyncWriterConnection, create_async_writer_engine
from ossdrop.db.models import PendingUpload
from ossdrop.db.session import WriterConnection
from tests.db.conftest import (  # noqa: F401 - fixtures: db_engine, migrated_url
    fixture_db_engine,
    fixture_migrated_url,
)

T = TypeVar("T")
PENDING = PendingUpload.__table__


@dataclass
class Writer:
    """One writer connection behind a blocking ``run``: the thread kind, or the event-loop kind run on a loop."""

    kind: str
    run: Callable[[Callable[[Connection], Any]], Any]
    close: Callable[[], None]


@pytest.fixture(name="writers")
def fixture_writers(db_engine: Engine) -> Iterator[list[Writer]]:
    """The thread writer on every database; the event-loop writer too where the app uses it (not on SQLite)."""
    sync = WriterConnection(db_engine)
    writers = [Writer("thread", sync.run, sync.close)]
    async_engine = create_async_writer_engine(db_engine.url)
    assert (async_engine is None) == (db_engine.dialect.name == "sqlite")
    loop = asyncio.new_event_loop()
    if async_engine is not None:
        conn = AsyncWriterConnection(async_engine)
        writers.append(
            Writer(
                "loop",
                lambda work: loop.run_until_complete(conn.run(work)),
                lambda: loop.run_until_complete(conn.close()),
            )
        )
    yield writers
    for writer in writers:
        writer.close()
    loop.close()


def _insert(upload_id: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        values = dict(upload_id=upload_id, object_key=f"k/{upload_id}", creator_id=1, name="a", ext="")
        values.update(expected_size=1, expected_md5="0" * 32, state="pending", created_at=1, expires_at=2)
        conn.execute(PENDING.insert().values(**values))
        return upload_id

    return work


def _ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(PENDING.c.upload_id)))


def test_a_unit_commits_and_a_failing_unit_leaves_nothing(db_engine: Engine, writers: list[Writer]) -> None:
    for w in writers:
        assert w.run(_insert(f"{w.kind}-1")) == f"{w.kind}-1"
        assert f"{w.kind}-1" in _ids(db_engine)  # committed: another connection sees it

        def half_then_fail(conn: Connection) -> None:
            _insert(f"{w.kind}-2")(conn)
            raise ValueError("the work fails after its first statement")

        with pytest.raises(ValueError, match="first statement"):
            w.run(half_then_fail)
        assert f"{w.kind}-2" not in _ids(db_engine)  # rolled back
        assert w.run(_insert(f"{w.kind}-3")) == f"{w.kind}-3"  # the writer goes on


class _Deadlock(Exception):
    """What a driver raises for a deadlock victim: MySQL's error 1213 (PostgreSQL's SQLSTATE 40P01)."""

    sqlstate = "40P01"

    def __init__(self) -> None:
        super().__init__(1213, "Deadlock found when trying to get lock; try restarting transaction")


def test_a_deadlock_victim_is_run_again_whole(db_engine: Engine, writers: list[Writer]) -> None:
    for w in writers:
        tries: list[int] = []

        def victim_once(conn: Connection) -> int:
            _insert(f"{w.kind}-try{len(tries)}")(conn)
            tries.append(1)
            if len(tries) == 1:
                raise OperationalError("INSERT ...", {}, _Deadlock())
            return len(tries)

        assert w.run(victim_once) == 2
        ids = _ids(db_engine)
        assert f"{w.kind}-try0" not in ids and f"{w.kind}-try1" in ids  # the victim's statements were undone


def _kill(engine: Engine, backend_id: int) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_id})
        else:
            conn.execute(text(f"KILL CONNECTION {int(backend_id)}"))


def test_a_kept_connection_the_server_dropped_is_replaced(db_engine: Engine, writers: list[Writer]) -> None:
    if db_engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server to drop a connection")
    which = "SELECT pg_backend_pid()" if db_engine.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
    for w in writers:
        first = w.run(lambda conn: conn.scalar(text(which)))
        _kill(db_engine, first)
        assert w.run(_insert(f"{w.kind}-after-kill")) == f"{w.kind}-after-kill"  # no error reaches the caller
        assert w.run(lambda conn: conn.scalar(text(which))) != first
        assert f"{w.kind}-after-kill" in _ids(db_engine)


def test_each_event_loop_gets_its_own_connection(db_engine: Engine) -> None:
    async_engine = create_async_writer_engine(db_engine.url)
    if async_engine is None:
        pytest.skip("SQLite's writers are threads")
    conn = AsyncWriterConnection(async_engine)
    loops: list[asyncio.AbstractEventLoop] = []

    async def twice() -> int:
        loops.append(asyncio.get_running_loop())
        try:
            await conn.run(_insert(f"loop-{len(loops)}"))
            return int(await conn.run(lambda c: c.scalar(select(func.count()).select_from(PENDING))))
        finally:
            await conn.close()

    assert asyncio.run(twice()) == 1
    assert asyncio.run(twice()) == 2  # a new loop: a new connection, not the finished loop's
