"""Engines and sessions from a database URL, tuned so that concurrent writers behave on all three databases.

* SQLite: WAL (readers do not block the writer), foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for
  transactions started by :func:`begin_write`. A deferred SQLite transaction that reads first and writes later
  fails at once with "database is locked" when another connection wrote meanwhile (the busy timeout does not
  apply to that upgrade), so writers take the write lock up front and wait for it instead. Other transactions
  stay deferred, so that a session that only reads never blocks the writers.
* MySQL/MariaDB (``mysql+pymysql``) and PostgreSQL (``postgresql+psycopg``): READ COMMITTED, so that a statement
  run after taking a row lock sees what other transactions committed before (MySQL's default REPEATABLE READ would
  keep an older snapshot and take gap locks that deadlock concurrent inserts).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_ATTEMPTS = 8

# Plain spellings map to the drivers the project installs; anything else is refused rather than guessed.
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
WRITE_OPTION = "ossdrop_write"
_MYSQL_RETRY_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock
_PG_RETRY_STATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected


class UnsupportedDatabaseError(ValueError):
    """The URL names a database or driver ossdrop does not support."""


def normalize_url(database_url: str | URL) -> URL:
    """``database_url`` with its driver made explicit: ``sqlite:///`` -> pysqlite, ``mysql://`` -> pymysql,
    ``postgresql://`` -> psycopg (3). MySQL URLs get ``charset=utf8mb4`` unless they name a charset.
    """
    url = make_url(database_url)
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise UnsupportedDatabaseError(f"unsupported database URL scheme: {url.drivername!r}")
    url = url.set(drivername=driver)
    if driver == "mysql+pymysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def create_engine(database_url: str | URL, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An :class:`~sqlalchemy.Engine` for ``database_url`` (any spelling :func:`normalize_url` accepts)."""
    url = normalize_url(database_url)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": backend != "sqlite"}
    if backend == "sqlite":
        # The sqlite3 module's own transaction handling would issue a deferred BEGIN; we issue our own.
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs["isolation_level"] = "READ COMMITTED"
    if url.database not in (None, "", ":memory:"):
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    engine = sa_create_engine(url, **kwargs)
    if backend == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit at the driver: SQLAlchemy's BEGIN below rules
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``. Objects stay readable after commit (``expire_on_commit=False``), so a service
    can return the rows it wrote without a reload.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Start ``session``'s transaction as a write transaction (SQLite: ``BEGIN IMMEDIATE``, waiting up to the busy
    timeout for other writers). No-op when a transaction is already in progress; elsewhere only a marker.
    """
    if not session.in_transaction():
        session.connection(execution_options={WRITE_OPTION: True})


def is_retryable(error: DBAPIError) -> bool:
    """True when ``error`` is a transient lock conflict (deadlock, lock timeout, SQLite busy) and the whole
    transaction may simply be run again.
    """
    orig = error.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY_CODES:
        return True
    if getattr(orig, "sqlstate", None) in _PG_RETRY_STATES:
        return True
    return "database is locked" in str(orig)


def should_retry(error: DBAPIError, attempt: int, attempts: int) -> bool:
    """True when a write transaction that failed with ``error`` on try ``attempt`` of ``attempts`` is run again: a
    transient lock conflict (:func:`is_retryable`), or a lost connection (a kept connection the server closed
    while idle, say; the next try opens a new one)."""
    return attempt < attempts and (is_retryable(error) or error.connection_invalidated)


class WriterConnection:
    """One connection that a single writer thread keeps across its transactions (:meth:`run`).

    Checking a connection out of the pool and back in costs two round trips per transaction (the pre-ping, and the
    rollback the pool issues on return) and more CPU than a small transaction's own statements; a writer that
    commits a batch every few milliseconds keeps its connection instead. After any error the connection goes back
    to the pool (an invalidated one is discarded), so the next transaction starts on a pre-pinged one. Not
    thread-safe: one writer thread uses it, and :meth:`close` once that thread is done.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def run(self, work: Callable[[Connection], T], *, attempts: int = WRITE_ATTEMPTS) -> T:
        """Run ``work`` in one write transaction on the kept connection and commit it.

        The whole unit re-runs after a transient lock conflict (a deadlock victim's statements were all undone
        by the rollback) or on a new connection when the kept one was lost (:func:`should_retry`). Any other
        error propagates (after the rollback). The SQL-level twin of the ORM transactions of
        :mod:`ossdrop.services.files`, for set-at-a-time statements.
        """
        for attempt in range(1, attempts + 1):
            conn = self._conn or self._open()
            try:
                with conn.begin():
                    return work(conn)
            except DBAPIError as exc:
                self.close()
                if not should_retry(exc, attempt, attempts):
                    raise
            except BaseException:
                self.close()
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter spreads the retries
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _open(self) -> Connection:
        self._conn = self.engine.connect().execution_options(**{WRITE_OPTION: True})
        return self._conn
