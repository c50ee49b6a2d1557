"""Group commit: requests queue their jobs, a writer runs them in batches, one transaction per batch.

A request awaits its job's outcome; the outcomes of a batch are delivered only after the batch's ``run_batch``
returned, i.e. after its commit, so nothing is acknowledged before it is durable. While one batch runs, the next
requests queue up and form the next batch: under load the commit and its round trips are shared by many requests,
with no timer and no added latency when the server is idle.

Queueing and delivering happen on the event loop (a request costs no thread hop of its own). ``run_batch`` runs
on one writer thread (:class:`Batcher`, for a blocking driver; always the same thread, so it may keep a database
connection between batches) or on the event loop itself (:class:`LoopBatcher`, for an async driver).
``run_batch`` gets the jobs in arrival order and returns one outcome per job: a result, or the exception that job
alone must raise. An exception that escapes ``run_batch`` fails the whole batch with it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")
MAX_BATCH = 64


class BatcherClosedError(RuntimeError):
    """The batcher was closed; no further jobs are taken."""


@dataclass
class _LoopQueue(Generic[J, R]):
    """The jobs queued on one event loop, and whether a drain task is running for them."""

    items: collections.deque[tuple[J, asyncio.Future[R]]] = field(default_factory=collections.deque)
    draining: bool = False
    task: asyncio.Task[None] | None = None  # the loop keeps only weak references to tasks


class BatchQueue(Generic[J, R]):
    """Queues submitted jobs per event loop and runs them in batches of at most ``max_batch``, one batch at a time
    per loop: :meth:`_execute` (a subclass's) runs a batch. :class:`Batcher` runs batches on one writer thread,
    :class:`LoopBatcher` on the submitting event loop itself."""

    def __init__(self, name: str, *, max_batch: int = MAX_BATCH) -> None:
        self.name = name
        self._max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue[J, R]] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False

    async def submit(self, job: J) -> R:
        """Queue ``job`` and return its outcome once its batch committed (or raise the job's exception).

        A cancelled request does not withdraw its job: its batch may still commit it (as with any request whose
        client hangs up after sending); the outcome is then dropped.
        """
        if self._closed:
            raise BatcherClosedError(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues.setdefault(loop, _LoopQueue())
        future: asyncio.Future[R] = loop.create_future()
        queue.items.append((job, future))
        if not queue.draining:
            queue.draining = True
            queue.task = loop.create_task(self._drain(queue))
        return await future

    def close(self) -> None:
        """Stop taking jobs (queued ones still run)."""
        self._closed = True

    async def drained(self) -> None:
        """Return once the jobs queued on the running loop have run (their outcomes delivered)."""
        queue = self._queues.get(asyncio.get_running_loop())
        if queue is not None and queue.task is not None:
            await asyncio.wait([queue.task])

    async def _execute(self, jobs: list[J]) -> Sequence[R | BaseException]:
        """One outcome per job of the batch ``jobs``, or raises (every job then fails with it)."""
        raise NotImplementedError

    async def _drain(self, queue: _LoopQueue[J, R]) -> None:
        try:
            while queue.items:
                count = min(len(queue.items), self._max_batch)
                batch = [queue.items.popleft() for _ in range(count)]
                try:
                    outcomes = _checked(self.name, await self._execute([j for j, _ in batch]), count)
                except Exception as exc:  # the whole batch fails with it; the writer lives on
                    outcomes = [exc] * count
                except BaseException:  # the drain itself was cancelled (loop shutting down): nobody is left hanging
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    _deliver(future, outcome)
        finally:
            queue.draining = False
            queue.task = None


class Batcher(BatchQueue[J, R]):
    """Runs the batches on one writer thread (``run_batch`` blocks: a database driver's calls, say).

    Jobs may come from several event loops (each has its own queue; their batches share the thread).
    ``on_exit`` runs on the writer thread at :meth:`close`, e.g. to release what ``run_batch`` kept there.
    """

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[J]], Sequence[R | BaseException]],
        *,
        max_batch: int = MAX_BATCH,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, max_batch=max_batch)
        self._run_batch = run_batch
        self._on_exit = on_exit
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def close(self) -> None:
        """Stop taking jobs, let the running batch finish, run ``on_exit`` and end the thread (blocking)."""
        self._closed = True
        if self._on_exit is not None:
            with contextlib.suppress(RuntimeError):  # already shut down
                self._executor.submit(self._on_exit)
        self._executor.shutdown(wait=True)

    async def _execute(self, jobs: list[J]) -> Sequence[R | BaseException]:
        loop = asyncio.get_running_loop()
        try:
            outcomes = loop.run_in_executor(self._executor, self._run_batch, jobs)  # submits at once
        except RuntimeError as exc:  # the executor was shut down: fail what is left
            raise BatcherClosedError(f"{self.name} is closed") from exc
        return await outcomes


class LoopBatcher(BatchQueue[J, R]):
    """Runs the batches on the submitting event loop: ``run_batch`` is a coroutine function (an async database
    driver's calls, say). No thread: nothing to hand over and no interpreter lock to share with one."""

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[J]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(name, max_batch=max_batch)
        self._run_batch = run_batch

    async def _execute(self, jobs: list[J]) -> Sequence[R | BaseException]:
        return await self._run_batch(jobs)


def _checked(name: str, outcomes: Sequence[R | BaseException], count: int) -> Sequence[R | BaseException]:
    if len(outcomes) != count:
        raise RuntimeError(f"{name}: {len(outcomes)} outcomes for {count} jobs")
    return outcomes


def _deliver(future: asyncio.Future[R], outcome: R | BaseException) -> None:
    if future.done():  # the request was cancelled
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
