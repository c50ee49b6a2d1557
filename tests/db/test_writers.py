"""The thread writer's connection (ossdrop.db.session.WriterConnection) on SQLite, MariaDB and PostgreSQL: a unit
commits or leaves nothing, a deadlock re-runs it, a connection the server killed is replaced without failing the
unit. The event-loop writer's twin checks are in test_driver_sql."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import OperationalError

from ossdrop.db.models import PendingUpload
from ossdrop.db.session import WriterConnection
from tests.db.conftest import (  # noqa: F401 - fixtures: db_engine, migrated_url
    fixture_db_engine,
    fixture_migrated_url,
)

PENDING = PendingUpload.__table__


@pytest.fixture(name="writer")
def fixture_writer(db_engine: Engine) -> Iterator[WriterConnection]:
    writer = WriterConnection(db_engine)
    yield writer
    writer.close()


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


def test_a_unit_commits_and_a_failing_unit_leaves_nothing(db_engine: Engine, writer: WriterConnection) -> None:
    assert writer.run(_insert("u1")) == "u1"
    assert "u1" in _ids(db_engine)  # committed: another connection sees it

    def half_then_fail(conn: Connection) -> None:
        _insert("u2")(conn)
        raise ValueError("the work fails after its first statement")

    with pytest.raises(ValueError, match="first statement"):
        writer.run(half_then_fail)
    assert "u2" not in _ids(db_engine)  # rolled back
    assert writer.run(_insert("u3")) == "u3"  # the writer goes on


class Deadlock(Exception):
    """What a driver raises for a deadlock victim: MySQL's error 1213 (PostgreSQL's SQLSTATE 40P01)."""

    sqlstate = "40P01"

    def __init__(self) -> None:
        super().__init__(1213, "Deadlock found when trying to get lock; try restarting transaction")


def test_a_deadlock_victim_is_run_again_whole(db_engine: Engine, writer: WriterConnection) -> None:
    tries: list[int] = []

    def victim_once(conn: Connection) -> int:
        _insert(f"try{len(tries)}")(conn)
        tries.append(1)
        if len(tries) == 1:
            raise OperationalError("INSERT ...", {}, Deadlock())
        return len(tries)

    assert writer.run(victim_once) == 2
    ids = _ids(db_engine)
    assert "try0" not in ids and "try1" in ids  # the victim's statements were undone


def kill(engine: Engine, backend_id: int) -> None:
    """Have the server drop connection ``backend_id`` (MariaDB ``KILL``, PostgreSQL ``pg_terminate_backend``)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_id})
        else:
            conn.execute(text(f"KILL CONNECTION {int(backend_id)}"))


def test_a_kept_connection_the_server_dropped_is_replaced(db_engine: Engine, writer: WriterConnection) -> None:
    if db_engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server to drop a connection")
    which = "SELECT pg_backend_pid()" if db_engine.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
    first = writer.run(lambda conn: conn.scalar(text(which)))
    kill(db_engine, first)
    assert writer.run(_insert("after-kill")) == "after-kill"  # no error reaches the caller
    assert writer.run(lambda conn: conn.scalar(text(which))) != first
    assert "after-kill" in _ids(db_engine)
