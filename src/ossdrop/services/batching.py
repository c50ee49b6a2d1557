"""Group commit: requests queue their jobs, one writer thread runs them in batches, one transaction per batch.

A request awaits its job's outcome; the writer delivers the outcomes of a batch only after the batch's
``run_batch`` returned, i.e. after its commit, so nothing is acknowledged before it is durable. While one batch
runs, the next requests queue up and form the next batch: under load the commit, its round trips and the thread
hops are shared by many requests, with no timer and no added latency when the server is idle.

``run_batch`` gets the jobs in arrival order and returns one outcome per job: a result, or the exception that job
alone must raise. An exception that escapes ``run_batch`` fails the whole batch with it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")
MAX_BATCH = 64


class BatcherClosedError(RuntimeError):
    """The batcher was closed; no further jobs are taken."""


@dataclass
class _Waiting(Generic[J, R]):
    job: J
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[R]


class Batcher(Generic[J, R]):
    """Runs submitted jobs in batches of at most ``max_batch`` on one thread (started on first use); thread-safe.

    Jobs may come from several event loops; each outcome is delivered on its job's loop.
    """

    def __init__(
        self, name: str, run_batch: Callable[[list[J]], Sequence[R | BaseException]], *, max_batch: int = MAX_BATCH
    ) -> None:
        self.name = name
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: collections.deque[_Waiting[J, R]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def submit(self, job: J) -> R:
        """Queue ``job`` and return its outcome once its batch committed (or raise the job's exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        waiting = _Waiting(job, loop, future)
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"{self.name} is closed")
            self._queue.append(waiting)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        # A cancelled request does not withdraw its job: its batch may still commit it (as with any request whose
        # client hangs up after sending); the outcome is then dropped.
        return await future

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs, finish the queued ones, and end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _next_batch(self) -> list[_Waiting[J, R]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            count = min(len(self._queue), self._max_batch)
            return [self._queue.popleft() for _ in range(count)]

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            outcomes = self._outcomes(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | BaseException]]] = {}
            for waiting, outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(waiting.loop, []).append((waiting.future, outcome))
            for loop, results in by_loop.items():
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
                    loop.call_soon_threadsafe(_deliver, results)  # one wake-up per loop and batch

    def _outcomes(self, batch: list[_Waiting[J, R]]) -> Sequence[R | BaseException]:
        try:
            outcomes = self._run_batch([w.job for w in batch])
        except Exception as exc:  # the whole batch fails with it; the writer thread lives on
            return [exc] * len(batch)
        if len(outcomes) != len(batch):
            error = RuntimeError(f"{self.name}: {len(outcomes)} outcomes for {len(batch)} jobs")
            return [error] * len(batch)
        return outcomes


def _deliver(results: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, outcome in results:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
