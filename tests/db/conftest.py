"""Real databases for the data-layer tests: SQLite (a temp file), MariaDB and PostgreSQL on 127.0.0.1.

Every run creates its own uniquely named databases and drops them afterwards. An unreachable server makes its
tests SKIP with the reason, except under ``CI=true``, where it FAILS: CI must not go green by skipping.

Fixtures; other test packages import them by their function names, e.g.
``from tests.db.conftest import fixture_session  # noqa: F401`` gives a test module the ``session`` fixture.

* ``fresh_url``: a new empty database per test (migration tests).
* ``migrated_url``: one migrated database per backend for the whole run.
* ``db_engine``: an engine on ``migrated_url`` with all tables emptied before the test.
* ``session``: a session on ``db_engine``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import Engine, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ossdrop.db import migrate
from ossdrop.db.models import Base
from ossdrop.db.session import create_engine, session_factory

BACKENDS = ["sqlite", "mariadb", "postgresql"]
MARIADB_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _unreachable(backend: str, exc: Exception) -> NoReturn:
    reason = f"{backend} server at 127.0.0.1 unreachable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing database is a failure, not a skip)")
    pytest.skip(reason)


def _admin_engine(backend: str) -> Engine:
    if backend == "mariadb":
        return sa_create_engine(MARIADB_SERVER, connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
    return sa_create_engine(
        POSTGRES_SERVER + "postgres", connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT"
    )


@contextmanager
def database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """A new, empty database on ``backend``; yields its URL and drops the database on exit."""
    name = f"ossdrop_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / (name + '.db')}"
        return
    admin = _admin_engine(backend)
    try:
        with admin.connect() as conn:
            if backend == "mariadb":
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
            else:
                conn.execute(text(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"))
    except OperationalError as exc:
        admin.dispose()
        _unreachable(backend, exc)
    try:
        yield (MARIADB_SERVER + name) if backend == "mariadb" else (POSTGRES_SERVER + name)
    finally:
        with admin.connect() as conn:
            force = "" if backend == "mariadb" else " WITH (FORCE)"
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


@pytest.fixture(name="fresh_url", params=BACKENDS)
def fixture_fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new empty database for this test only."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(name="migrated_url", scope="session", params=BACKENDS)
def fixture_migrated_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend, migrated to head, shared by the run (tests empty it via ``db_engine``)."""
    with database(request.param, tmp_path_factory.mktemp("db")) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(name="db_engine")
def fixture_db_engine(migrated_url: str) -> Iterator[Engine]:
    """An engine (pool large enough for 50 threads) on the shared database, emptied before the test."""
    engine = create_engine(migrated_url, pool_size=20, max_overflow=40)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    yield engine
    engine.dispose()


@pytest.fixture(name="session")
def fixture_session(db_engine: Engine) -> Iterator[Session]:
    """A session on ``db_engine``, closed after the test."""
    with session_factory(db_engine)() as s:
        yield s


@pytest.fixture(name="new_session")
def fixture_new_session(db_engine: Engine) -> sessionmaker[Session]:
    """Opens further sessions (one per thread in concurrency tests)."""
    return session_factory(db_engine)
