"""The hot paths of direct uploads with group commit: issuing policies and recording callbacks.

Issuing a policy writes one pending-upload row; recording a callback locks its pending upload and its object, adds
the record and completes the upload. Both run here in batches (:mod:`ossdrop.services.batching`; policies on the
event loop with an async driver, else on a writer thread): one transaction per batch of requests (on asyncpg, one
self-committing INSERT), a fixed number of statements per batch (:mod:`ossdrop.db.bulk`,
:mod:`ossdrop.db.driver_sql`), and a request is answered only after the commit that made its rows durable. This is
the *fast path*, for the common case only:

* a policy whose content no live record has (or that needs no dedup) gets its pending row;
* a callback for a pending (or expired) upload whose object matches it gets its record.

Anything else (an instant upload, a proof, a repeated or mismatching callback, an unknown upload) and every job of a
batch whose transaction failed takes the *full path*: the per-request use-cases of :mod:`ossdrop.services.uploads`,
in a worker thread, after the batch committed. They re-read everything under their own locks, so a batch never has
to decide anything but "this one is plain", and one odd job cannot fail the others of its batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from ossdrop.db import bulk, driver_sql
from ossdrop.db.async_writer import AsyncWriterConnection
from ossdrop.db.models import StorageRecord, UploadState
from ossdrop.db.session import WriterConnection
from ossdrop.services import files, uploads
from ossdrop.services.batching import Batcher, BatchQueue, LoopBatcher
from ossdrop.services.keys import DedupScope
from ossdrop.services.upload_rows import UploadFacts, pending_values, upload_matches, upload_record_values

log = logging.getLogger(__name__)
T = TypeVar("T")
J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class PolicyJob:
    """A pending upload to insert unless a live record has its content (``dedup``: look for one first)."""

    values: dict[str, Any]
    dedup: bool


@dataclass(frozen=True)
class CallbackJob:
    """A verified callback: ``facts`` of the object, ``md5`` its real MD5, ``now`` the time of recording."""

    upload_id: str
    facts: UploadFacts
    md5: str
    now: int


class GroupCommit:
    """The two writers (policies, callbacks) of one app.

    With ``async_engine`` (MySQL/MariaDB, PostgreSQL: :func:`ossdrop.db.async_writer.create_async_writer_engine`)
    policy batches run on the event loop, straight on the driver; else (SQLite) on a writer thread. Callback
    batches always run on a writer thread. Each writer thread keeps its own connection of ``engine``.
    A batch whose transaction failed is logged and each of its jobs takes the full path.
    :meth:`aclose` (on the serving loop) then :meth:`close` finish what is queued and release the connections.
    """

    def __init__(
        self, engine: Engine, *, scope: DedupScope, upload_dir: str, async_engine: AsyncEngine | None = None
    ) -> None:
        self.engine = engine
        self.async_engine = async_engine
        self.scope = scope
        self.upload_dir = upload_dir
        self.policies: BatchQueue[PolicyJob, bool]
        self.callbacks: BatchQueue[CallbackJob, StorageRecord | None]
        self._policy_conn: AsyncWriterConnection | None = None  # with an async engine
        policies, callbacks = "ossdrop-policy-writer", "ossdrop-callback-writer"
        # Callbacks stay on a writer thread whatever the database: a few per batch at OSS's pace, each batch four
        # Core statements, whose SQLAlchemy work on the event loop would delay every other request (measured on
        # MariaDB at 200 callbacks/s: p99 6-9 ms on the thread, 19-100 ms on the loop).
        self.callbacks = _thread_batcher(callbacks, WriterConnection(engine), self._record, None)
        if async_engine is None:
            self.policies = _thread_batcher(policies, WriterConnection(engine), self._issue, False)
        else:
            policy_conn = self._policy_conn = AsyncWriterConnection(async_engine)
            dialect = async_engine.dialect
            self.policies = _loop_batcher(
                policies,
                lambda jobs: policy_conn.run_driver(lambda c: _issue_on_driver(c, dialect, self.scope, jobs)),
                False,
            )

    async def aclose(self) -> None:
        """Stop taking jobs, let the running loop's queued ones run, close its connections (async engine)."""
        self.policies.close()
        self.callbacks.close()
        await self.policies.drained()
        await self.callbacks.drained()
        await self.release()

    async def release(self) -> None:
        """Close the running loop's connection (async engine); the writer opens a new one for its next batch."""
        if self._policy_conn is not None:
            await self._policy_conn.close()

    def close(self) -> None:
        """Stop taking jobs, finish the queued ones, end the writer threads (they give their connections back)."""
        self.policies.close()
        self.callbacks.close()

    def _issue(self, conn: Connection, jobs: Sequence[PolicyJob]) -> list[bool]:
        """Per job: ``True`` when its pending row is committed, ``False`` when it needs the full path."""
        return _issue(conn, self.scope, jobs)

    def _record(self, conn: Connection, jobs: Sequence[CallbackJob]) -> list[StorageRecord | None]:
        """Per job: its committed record, or ``None`` when it needs the full path."""
        return _record(conn, self.upload_dir, jobs)


def _thread_batcher(
    name: str, conn: WriterConnection, work: Callable[[Connection, list[J]], list[R]], fallback: R
) -> Batcher[J, R]:
    def run_batch(jobs: list[J]) -> list[R]:
        try:
            return conn.run(lambda c: work(c, jobs))
        except Exception:
            log.warning("%s: a batch of %d failed; each takes the full path", name, len(jobs), exc_info=True)
            return [fallback] * len(jobs)

    return Batcher(name, run_batch, on_exit=conn.close)


def _loop_batcher(name: str, run: Callable[[list[J]], Awaitable[list[R]]], fallback: R) -> LoopBatcher[J, R]:
    async def run_batch(jobs: list[J]) -> list[R]:
        try:
            return await run(jobs)
        except Exception:
            log.warning("%s: a batch of %d failed; each takes the full path", name, len(jobs), exc_info=True)
            return [fallback] * len(jobs)

    return LoopBatcher(name, run_batch)


def _issue(conn: Connection, scope: DedupScope, jobs: Sequence[PolicyJob]) -> list[bool]:
    md5s, owners = _dedup_lookup(scope, jobs)
    plain = _plain_policies(jobs, owners, bulk.dedup_hits(conn, md5s, creator_ids=owners))
    bulk.insert_pending(conn, [j.values for j, ok in zip(jobs, plain, strict=True) if ok])
    return plain


async def _issue_on_driver(
    driver_conn: Any, dialect: Dialect, scope: DedupScope, jobs: Sequence[PolicyJob]
) -> list[bool]:
    """:func:`_issue` on the async driver's own connection (:mod:`ossdrop.db.driver_sql`: the same statements)."""
    md5s, owners = _dedup_lookup(scope, jobs)
    plain = _plain_policies(jobs, owners, await driver_sql.dedup_hits(driver_conn, dialect, md5s, creator_ids=owners))
    await driver_sql.insert_pending(driver_conn, dialect, [j.values for j, ok in zip(jobs, plain, strict=True) if ok])
    return plain


def _dedup_lookup(scope: DedupScope, jobs: Sequence[PolicyJob]) -> tuple[set[str], set[int] | None]:
    """The MD5s to look up for ``jobs``, and whose records count (``None``: anyone's, scope ``global``)."""
    wanted = [j for j in jobs if j.dedup]
    owners = None if scope is DedupScope.GLOBAL else {j.values["creator_id"] for j in wanted}
    return {j.values["expected_md5"] for j in wanted}, owners


def _plain_policies(
    jobs: Sequence[PolicyJob], owners: set[int] | None, hits: set[tuple[str, int | None, int | None]]
) -> list[bool]:
    """Per job: whether it gets its pending row here (no live record has its content)."""

    def fresh(job: PolicyJob) -> bool:
        v = job.values
        owner = None if owners is None else v["creator_id"]
        return not job.dedup or (v["expected_md5"], v["expected_size"], owner) not in hits

    return [fresh(j) for j in jobs]


def _record(conn: Connection, upload_dir: str, jobs: Sequence[CallbackJob]) -> list[StorageRecord | None]:
    pending = bulk.lock_pending(conn, {j.upload_id for j in jobs})
    chosen: dict[str, dict[str, Any]] = {}
    for job in jobs:
        row = pending.get(job.upload_id)
        if row is not None and job.upload_id not in chosen and _plain(row, job, upload_dir):
            chosen[job.upload_id] = upload_record_values(row, job.facts, job.md5, job.now)
    if not chosen:
        return [None] * len(jobs)
    bulk.lock_objects(conn, [{k: v[k] for k in ("path", "md5", "size", "created_at")} for v in chosen.values()])
    ids = bulk.insert_records(conn, list(chosen.values()))
    bulk.complete_pending(conn, chosen)
    made = {upload_id: StorageRecord(id=ids[upload_id], **values) for upload_id, values in chosen.items()}
    return [made.pop(j.upload_id, None) for j in jobs]  # a repeat in the same batch takes the full path


def _plain(row: bulk.PendingRow, job: CallbackJob, upload_dir: str) -> bool:
    return row.state != UploadState.COMPLETED.value and upload_matches(row, job.facts, job.md5, upload_dir)


# ----------------------------------------------------------------------------------------------- the use-cases


async def request_upload(
    up: uploads.Uploads,
    writer: GroupCommit,
    sessions: Callable[[], Session],
    *,
    creator_id: int,
    filename: str,
    size: int | None,
    md5: str | None,
    content_type: str | None = None,
    proof: uploads.Proof | None = None,
) -> uploads.Exists | uploads.ProofRequired | uploads.UploadTicket:
    """:func:`ossdrop.services.uploads.request_upload` with group commit; same answers, same errors."""
    if proof is None:
        ticket = await _plain_ticket(up, writer, creator_id, filename, size, md5, content_type)
        if ticket is not None:
            return ticket
    full = functools.partial(
        uploads.request_upload,
        up,
        creator_id=creator_id,
        filename=filename,
        size=size,
        md5=md5,
        content_type=content_type,
        proof=proof,
    )
    return await _in_session(sessions, full)


async def _plain_ticket(
    up: uploads.Uploads,
    writer: GroupCommit,
    creator_id: int,
    filename: str,
    size: int | None,
    md5: str | None,
    content_type: str | None,
) -> uploads.UploadTicket | None:
    """The ticket of a new pending upload once its row is committed; ``None`` when a live record has the content."""
    cfg = up.config
    digest = uploads.check_request(cfg, filename, size, md5)
    values = pending_values(
        creator_id=creator_id,
        name=filename,
        md5=digest,
        size=size,
        scope=cfg.dedup_scope,
        now=up.now(),
        ttl=cfg.policy_ttl,
        upload_dir=cfg.upload_dir,
    )
    dedup = digest is not None and size is not None and size > 0 and cfg.dedup_scope is not DedupScope.OFF
    if not await writer.policies.submit(PolicyJob(values, dedup)):
        return None
    return uploads.make_ticket(up, values["object_key"], values["upload_id"], values["expires_at"], size, content_type)


async def record_callback(
    up: uploads.Uploads, writer: GroupCommit, sessions: Callable[[], Session], body: bytes
) -> StorageRecord:
    """:func:`ossdrop.services.uploads.record_callback` with group commit; same answers, same errors."""
    upload_id, facts = uploads.parse_callback_body(body)
    try:
        md5 = files.real_md5(facts)
    except files.UnverifiableContentError:
        pass  # the full path gives the error its answer
    else:
        record = await writer.callbacks.submit(CallbackJob(upload_id, facts, md5, up.now()))
        if record is not None:
            return record
    return await _in_session(sessions, lambda session: uploads.record_callback(up, session, body))


async def _in_session(sessions: Callable[[], Session], work: Callable[[Session], T]) -> T:
    def run() -> T:
        with sessions() as session:
            return work(session)

    return await anyio.to_thread.run_sync(run)
