"""Group-commit writes on the event loop, for MySQL/MariaDB (asyncmy) and PostgreSQL (asyncpg).

A writer thread with a blocking driver shares the interpreter lock with the event loop: every socket read of the
driver gives the lock up and must win it back from the loop, which under load costs more than the batch's own
statements (bench/app_server.py, policies on MariaDB: about 220 us of app CPU per policy with a pymysql writer
thread, about 145 us with the batch awaited on the loop). SQLite keeps its writer thread: its driver never waits
on a socket, and an async SQLite driver is a thread underneath anyway.

:meth:`AsyncWriterConnection.run_driver` runs code written against the driver's own connection
(:mod:`ossdrop.db.driver_sql`), which skips SQLAlchemy's async layer.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ossdrop.db import driver_sql
from ossdrop.db.session import WRITE_ATTEMPTS, normalize_url, should_retry

T = TypeVar("T")

# The async twin of each blocking driver normalize_url picks; SQLite has none (see the module docstring).
_ASYNC_DRIVERS = {"mysql+pymysql": "mysql+asyncmy", "postgresql+psycopg": "postgresql+asyncpg"}


def create_async_writer_engine(database_url: str | URL) -> AsyncEngine | None:
    """An async engine for the group-commit writers of ``database_url``; ``None`` for SQLite.

    Same isolation as :func:`ossdrop.db.session.create_engine` (READ COMMITTED). No pool: a connection belongs to
    the event loop it was opened on, and :class:`AsyncWriterConnection` keeps one per loop itself.
    """
    url = normalize_url(database_url)
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        return None
    return create_async_engine(url.set(drivername=driver), poolclass=NullPool, isolation_level="READ COMMITTED")


class AsyncWriterConnection:
    """The event-loop twin of :class:`ossdrop.db.session.WriterConnection`: one kept connection per event loop,
    one transaction per :meth:`run_driver`, the same retries. Use it from one task at a time per loop (a batcher's
    drain).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnection] = weakref.WeakKeyDictionary()

    async def run_driver(self, work: Callable[[Any], Awaitable[T]], *, attempts: int = WRITE_ATTEMPTS) -> T:
        """Run ``work`` on this loop's connection, as the driver's own connection (asyncmy's or asyncpg's), which it
        gets as its argument, in one write transaction, and commit it. ``work`` must raise driver errors as
        :class:`~sqlalchemy.exc.DBAPIError` (see :mod:`ossdrop.db.driver_sql`) for the retries to apply.

        The whole unit re-runs after a transient lock conflict or on a new connection when the kept one was lost;
        any other error propagates after the rollback, and the connection is closed.

        On asyncpg each of ``work``'s statements commits by itself (asyncpg's default; SQLAlchemy's adapter begins
        a transaction only for a statement of its own): ``work`` must need no more than that, as a batch whose one
        ``INSERT`` is its only write does. A ``BEGIN``/``COMMIT`` pair would cost two more round trips per batch.
        """
        for attempt in range(1, attempts + 1):
            conn = await self._connection()
            try:
                async with conn.begin():
                    return await self._on_driver(conn, work)
            except DBAPIError as exc:
                await self.close()
                if not should_retry(exc, attempt, attempts):
                    raise
            except Exception:
                await self.close()
                raise
            except BaseException:  # cancelled mid-transaction: drop the connection, the server rolls it back
                self._conns.pop(asyncio.get_running_loop(), None)
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter spreads the retries
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close this event loop's connection (connections of other loops are theirs to close)."""
        conn = self._conns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            await conn.close()

    @staticmethod
    async def _on_driver(conn: AsyncConnection, work: Callable[[Any], Awaitable[T]]) -> T:
        driver_conn: Any = (await conn.get_raw_connection()).driver_connection
        try:
            return await work(driver_conn)
        except driver_sql.driver_errors(conn.dialect) as exc:
            raise driver_sql.dbapi_error(conn.dialect, exc) from exc

    async def _connection(self) -> AsyncConnection:
        loop = asyncio.get_running_loop()
        conn = self._conns.get(loop)
        if conn is None:
            conn = self._conns[loop] = await self.engine.connect()
        return conn
