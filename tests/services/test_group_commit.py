"""Group commit (ossdrop.services.batching, ossdrop.services.group_commit, ossdrop.db.bulk): concurrent policies
and callbacks share transactions, each gets exactly the answer of the per-request use-case, a bad job never fails
the others of its batch, and nothing is answered before its batch committed; on SQLite, MariaDB and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from ossdrop.db import bulk, driver_sql
from ossdrop.db.async_writer import create_async_writer_engine
from ossdrop.db.models import PendingUpload, StorageRecord, StoredObject
from ossdrop.services import files, group_commit
from ossdrop.services.app_errors import BadInputError, ConflictError, NotFoundError
from ossdrop.services.batching import Batcher, BatcherClosedError, LoopBatcher
from ossdrop.services.group_commit import GroupCommit
from ossdrop.services.keys import DedupScope
from ossdrop.services.uploads import Exists, ProofRequired, UploadConfig, Uploads, UploadTicket
from tests.db.conftest import (  # noqa: F401 - fixtures: db_engine, migrated_url, new_session, session
    fixture_db_engine,
    fixture_migrated_url,
    fixture_new_session,
    fixture_session,
)

NOW = 1_700_000_000
T = TypeVar("T")


class FakeStore:
    """The little of :class:`~ossdrop.client.oss.OssClient` that policies and callbacks touch."""

    post_url = "http://127.0.0.1:9/bucket"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, key: str) -> None:
        self.deleted.append(key)


def _uploads(scope: DedupScope = DedupScope.CREATOR) -> Uploads:
    config = UploadConfig(
        bucket="bucket",
        region="cn-hangzhou",
        access_key_id="AK",
        access_key_secret="SK",
        callback_url="http://127.0.0.1:8000/api/uploads/callback",
        proof_secret="p" * 32,
        dedup_scope=scope,
    )
    return Uploads(config, FakeStore(), lambda: float(NOW))  # type: ignore[arg-type]


def _group_commit(db_engine: Engine, scope: DedupScope = DedupScope.CREATOR) -> GroupCommit:
    """As the app builds it: policy batches on the event loop on MariaDB and PostgreSQL, on a thread on SQLite."""
    async_engine = create_async_writer_engine(db_engine.url)
    assert (async_engine is None) == (db_engine.dialect.name == "sqlite")
    return GroupCommit(db_engine, scope=scope, upload_dir="user-dirs", async_engine=async_engine)


@pytest.fixture
def writer(db_engine: Engine) -> Iterator[GroupCommit]:
    gc = _group_commit(db_engine)
    yield gc
    gc.close()


def run(gc: GroupCommit, work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, then ``gc``'s connections of that loop are closed (as the app's lifespan does)."""

    async def main() -> T:
        try:
            return await work
        finally:
            await gc.release()

    return asyncio.run(main())


class Statements:
    """Counts the SQL statements the writers of ``gc`` send (commit and rollback are not statements): Core ones
    through the engines' events, and those :mod:`ossdrop.db.driver_sql` sends on the driver's own connection."""

    def __init__(self, gc: GroupCommit) -> None:
        self.engines = [gc.engine] + ([gc.async_engine.sync_engine] if gc.async_engine else [])
        self.patches = contextlib.ExitStack()
        self.sql: list[str] = []

    def __enter__(self) -> Statements:
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._seen)
        run = driver_sql._run

        async def counted(driver_conn: Any, dialect: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
            self.sql.append(sql)
            return await run(driver_conn, dialect, sql, *args, **kwargs)

        self.patches.enter_context(pytest.MonkeyPatch.context()).setattr(driver_sql, "_run", counted)
        return self

    def __exit__(self, *_exc: object) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._seen)
        self.patches.close()

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.strip().upper().startswith(("PRAGMA", "BEGIN", "SELECT 1")):
            self.sql.append(statement)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _body(ticket: UploadTicket, md5: str, size: int, **overrides: Any) -> bytes:
    values = {"upload_id": ticket.upload_id, "object": ticket.key, "size": size, "etag": md5.upper()}
    values.update(mimeType="image/png", width="4", height="3")
    values.update(overrides)
    return urlencode(values).encode()


async def _policies(up: Uploads, gc: GroupCommit, sessions: sessionmaker[Session], items: list[tuple[int, bytes]]):
    async def one(creator: int, data: bytes) -> Any:
        return await group_commit.request_upload(
            up, gc, sessions, creator_id=creator, filename="a.png", size=len(data), md5=_md5(data)
        )

    return await asyncio.gather(*(one(c, d) for c, d in items))


def _count(session: Session, model: type[Any]) -> int:
    session.rollback()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# ------------------------------------------------------------------------------------------------- the batcher


def test_batcher_runs_concurrent_jobs_in_batches_and_answers_each() -> None:
    batches: list[list[int]] = []

    def run(jobs: list[int]) -> list[int | BaseException]:
        batches.append(jobs)
        return [ValueError(j) if j % 5 == 0 else j * 10 for j in jobs]

    batcher: Batcher[int, int] = Batcher("test-batcher", run, max_batch=8)

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(1, 41)), return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        batcher.close()
    assert len(batches) < 40 and max(len(b) for b in batches) <= 8  # batched, bounded
    assert sorted(j for b in batches for j in b) == list(range(1, 41))
    for i, result in zip(range(1, 41), results, strict=True):
        if i % 5 == 0:
            assert isinstance(result, ValueError) and result.args == (i,)  # only that job fails
        else:
            assert result == i * 10


def test_batcher_answers_nothing_before_the_batch_returns() -> None:
    release = threading.Event()
    started = threading.Event()

    def run(jobs: list[int]) -> list[int | BaseException]:
        started.set()
        assert release.wait(10)
        return list(jobs)

    batcher: Batcher[int, int] = Batcher("test-batcher", run)

    async def main() -> None:
        tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(5)]
        await asyncio.to_thread(started.wait, 10)
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in tasks)  # the "commit" has not returned: nobody is answered
        release.set()
        assert await asyncio.gather(*tasks) == list(range(5))

    try:
        asyncio.run(main())
    finally:
        batcher.close()


def test_batcher_failure_fails_its_batch_only_and_close_refuses_new_jobs() -> None:
    calls = 0

    def run(jobs: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return list(jobs)

    exits: list[str] = []
    batcher: Batcher[int, int] = Batcher(
        "test-batcher", run, on_exit=lambda: exits.append(threading.current_thread().name)
    )

    async def main() -> None:
        with pytest.raises(RuntimeError, match="database gone"):
            await batcher.submit(1)
        assert await batcher.submit(2) == 2  # the writer lives on

    asyncio.run(main())
    batcher.close()
    assert exits and exits[0].startswith("test-batcher")  # on_exit ran on the writer thread
    with pytest.raises(BatcherClosedError):
        asyncio.run(batcher.submit(3))


def test_loop_batcher_batches_on_the_loop_and_answers_each_after_its_batch() -> None:
    batches: list[list[int]] = []
    threads: set[str] = set()

    async def main() -> list[int | BaseException]:
        gate = asyncio.Event()

        async def run(jobs: list[int]) -> list[int | BaseException]:
            batches.append(jobs)
            threads.add(threading.current_thread().name)
            await gate.wait()  # a commit in progress
            if jobs[0] == 33:
                raise RuntimeError("this batch's transaction fails")
            return [ValueError(j) if j % 5 == 0 else j * 10 for j in jobs]

        batcher: LoopBatcher[int, int] = LoopBatcher("test-loop-batcher", run, max_batch=8)
        tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 41)]
        await asyncio.sleep(0.05)
        assert len(batches) == 1 and not any(t.done() for t in tasks)  # one batch at a time, nobody answered yet
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        batcher.close()
        await batcher.drained()
        with pytest.raises(BatcherClosedError):
            await batcher.submit(41)
        return results

    results = asyncio.run(main())
    assert threads == {threading.main_thread().name}  # no writer thread
    assert len(batches) < 40 and max(len(b) for b in batches) <= 8
    assert sorted(j for b in batches for j in b) == list(range(1, 41))
    failed = next(b for b in batches if b[0] == 33)
    for i, result in zip(range(1, 41), results, strict=True):
        if i in failed:
            assert isinstance(result, RuntimeError) and "fails" in str(result)  # its whole batch, no other
        elif i % 5 == 0:
            assert isinstance(result, ValueError) and result.args == (i,)
        else:
            assert result == i * 10


# ------------------------------------------------------------------------------------------------- policies


def test_concurrent_policies_share_a_few_statements_and_each_gets_its_row(
    writer: GroupCommit, new_session: sessionmaker[Session], session: Session
) -> None:
    up = _uploads()
    items = [(1000 + i % 3, f"content {i}".encode()) for i in range(40)]
    with Statements(writer) as seen:
        tickets = run(writer, _policies(up, writer, new_session, items))
    assert all(isinstance(t, UploadTicket) for t in tickets)
    assert len({t.upload_id for t in tickets}) == 40
    rows = {p.upload_id: p for p in session.scalars(select(PendingUpload))}
    assert set(rows) == {t.upload_id for t in tickets}  # one row per issued policy, committed before the answer
    for ticket, (creator, data) in zip(tickets, items, strict=True):
        row = rows[ticket.upload_id]
        assert (row.object_key, row.creator_id, row.expected_md5, row.state) == (
            ticket.key,
            creator,
            _md5(data),
            "pending",
        )
        assert row.expires_at == ticket.expire == NOW + up.config.policy_ttl
    batches = sum(1 for s in seen.sql if s.lstrip().upper().startswith("INSERT"))
    assert 1 <= batches < 40
    assert len(seen.sql) == 2 * batches  # per batch: one dedup SELECT and one INSERT, whatever its size


def test_a_policy_with_a_live_duplicate_takes_the_full_path(
    writer: GroupCommit, new_session: sessionmaker[Session], session: Session
) -> None:
    up = _uploads()
    data = b"already here"
    pending = files.begin_upload(
        session, creator_id=7, name="a.png", md5=_md5(data), size=len(data), scope=DedupScope.CREATOR, now=NOW, ttl=60
    )
    facts = files.UploadFacts(key=pending.object_key, size=len(data), md5=_md5(data))
    first = files.record_upload(session, pending.upload_id, facts, now=NOW)
    outcomes = run(writer, _policies(up, writer, new_session, [(7, data), (8, data), (7, b"new")]))
    assert isinstance(outcomes[0], Exists) and outcomes[0].record.path == first.path  # instant upload
    assert isinstance(outcomes[1], UploadTicket) and isinstance(outcomes[2], UploadTicket)  # another creator: upload
    with pytest.raises(BadInputError):
        run(writer, _bad_policy(up, writer, new_session))  # refused before anything is queued


@pytest.mark.parametrize("scope", [DedupScope.GLOBAL, DedupScope.OFF])
def test_global_and_off_scopes(
    db_engine: Engine, new_session: sessionmaker[Session], session: Session, scope: DedupScope
) -> None:
    data = b"shared content"
    pending = files.begin_upload(
        session, creator_id=7, name="a.png", md5=_md5(data), size=len(data), scope=scope, now=NOW, ttl=60
    )
    facts = files.UploadFacts(key=pending.object_key, size=len(data), md5=_md5(data))
    files.record_upload(session, pending.upload_id, facts, now=NOW)
    gc = _group_commit(db_engine, scope)
    try:
        outcomes = run(gc, _policies(_uploads(scope), gc, new_session, [(8, data), (8, b"fresh"), (7, data)]))
    finally:
        gc.close()
    if scope is DedupScope.GLOBAL:
        assert isinstance(outcomes[0], ProofRequired)  # someone else's copy: prove possession first
        assert isinstance(outcomes[2], Exists)  # one's own copy: instant upload
    else:
        assert isinstance(outcomes[0], UploadTicket) and isinstance(outcomes[2], UploadTicket)  # never dedups
        assert outcomes[0].key != outcomes[2].key != pending.object_key  # off: every upload has its own key
    assert isinstance(outcomes[1], UploadTicket)


async def _bad_policy(up: Uploads, gc: GroupCommit, sessions: sessionmaker[Session]) -> Any:
    return await group_commit.request_upload(up, gc, sessions, creator_id=1, filename="a", size=1, md5="nope")


# ------------------------------------------------------------------------------------------------- callbacks


def test_concurrent_callbacks_are_all_recorded_in_few_statements(
    writer: GroupCommit, new_session: sessionmaker[Session], session: Session
) -> None:
    up = _uploads()
    items = [(2000 + i % 4, f"file {i % 30}".encode()) for i in range(60)]  # shared keys: same content and creator
    tickets = run(writer, _policies(up, writer, new_session, items))

    async def callbacks() -> list[StorageRecord]:
        return await asyncio.gather(
            *(
                group_commit.record_callback(up, writer, new_session, _body(t, _md5(d), len(d)))
                for t, (_, d) in zip(tickets, items, strict=True)
            )
        )

    with Statements(writer) as seen:
        records = run(writer, callbacks())
    assert len({r.id for r in records}) == 60
    stored = {r.upload_id: r for r in session.scalars(select(StorageRecord))}
    for ticket, record, (creator, data) in zip(tickets, records, items, strict=True):
        row = stored[ticket.upload_id]
        assert (row.id, row.path, row.creator_id, row.md5, row.size) == (
            record.id,
            ticket.key,
            creator,
            _md5(data),
            len(data),
        )
        assert (record.mime_type, record.width, record.height, record.etag) == ("image/png", 4, 3, _md5(data).upper())
    pending = {p.upload_id: p for p in session.scalars(select(PendingUpload))}
    assert all(p.state == "completed" and p.storage_id == stored[u].id for u, p in pending.items())
    assert all(p.completed_at == NOW for p in pending.values())
    assert set(session.scalars(select(StoredObject.path))) == {t.key for t in tickets}
    updates = sum(1 for s in seen.sql if s.lstrip().upper().startswith("UPDATE"))
    assert updates < 60
    assert len(seen.sql) <= 6 * updates  # per batch: lock, insert + lock objects, insert records (+ ids), complete


def test_odd_callbacks_in_a_batch_get_their_own_answers_and_do_not_fail_the_others(
    writer: GroupCommit, new_session: sessionmaker[Session], session: Session
) -> None:
    up = _uploads()
    items = [(3000, f"good {i}".encode()) for i in range(6)] + [(3001, b"bad content"), (3002, b"wrong key")]
    tickets = run(writer, _policies(up, writer, new_session, items))
    good = [_body(t, _md5(d), len(d)) for t, (_, d) in zip(tickets[:6], items[:6], strict=True)]
    bodies = [
        *good,
        good[0],  # a repeat of a callback in the same batch
        _body(tickets[6], _md5(b"other bytes"), len(b"bad content")),  # content is not what the key claims
        _body(tickets[7], _md5(b"wrong key"), 9, object=tickets[0].key),  # another upload's key
        urlencode({"upload_id": "f" * 32, "object": tickets[0].key, "size": 1, "etag": "A" * 32}).encode(),
        b"not=ours",
    ]

    async def callbacks() -> list[Any]:
        return await asyncio.gather(
            *(group_commit.record_callback(up, writer, new_session, b) for b in bodies), return_exceptions=True
        )

    results = run(writer, callbacks())
    assert all(isinstance(r, StorageRecord) for r in results[:7])
    assert results[6].id == results[0].id  # idempotent: the repeat gets the same record
    assert isinstance(results[7], ConflictError) and results[7].code == "content_mismatch"
    assert isinstance(results[8], ConflictError) and results[8].code == "upload_mismatch"
    assert isinstance(results[9], NotFoundError) and results[9].code == "unknown_upload"
    assert isinstance(results[10], BadInputError)
    assert up.store.deleted == [tickets[6].key]  # type: ignore[attr-defined]
    assert _count(session, StorageRecord) == 6
    states = {uid: state for uid, state in session.execute(select(PendingUpload.upload_id, PendingUpload.state))}
    assert states[tickets[6].upload_id] == "expired" and states[tickets[7].upload_id] == "pending"


def test_a_failed_batch_transaction_falls_back_to_one_transaction_per_callback(
    writer: GroupCommit, new_session: sessionmaker[Session], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = _uploads()
    items = [(4000, f"fallback {i}".encode()) for i in range(5)]
    tickets = run(writer, _policies(up, writer, new_session, items))

    def broken(*_args: Any, **_kwargs: Any) -> dict[str, int]:
        raise RuntimeError("the batch transaction fails")

    monkeypatch.setattr(bulk, "insert_records", broken)

    async def callbacks() -> list[StorageRecord]:
        return await asyncio.gather(
            *(
                group_commit.record_callback(up, writer, new_session, _body(t, _md5(d), len(d)))
                for t, (_, d) in zip(tickets, items, strict=True)
            )
        )

    records = run(writer, callbacks())
    assert sorted(r.upload_id or "" for r in records) == sorted(t.upload_id for t in tickets)
    assert _count(session, StorageRecord) == 5
    assert set(session.scalars(select(PendingUpload.state))) == {"completed"}
