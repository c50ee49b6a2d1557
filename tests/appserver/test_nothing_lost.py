"""Nothing lost: callback failed (203) -> complete; client gone too -> reconcile; orphans -> sweep."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from ossdrop.db.models import PendingUpload, StorageRecord
from ossdrop.services.reconcile import reconcile, sweep
from ossdrop.services.uploads import Uploads
from tests.appserver.conftest import Stack, StackFactory, browser_post, md5_hex, new_user, policy, random_bytes

DEAD = "http://127.0.0.1:1"  # nothing listens there: every callback fails


@pytest.fixture
def dead(stacks: StackFactory, backend: str) -> Stack:
    """A stack whose callbacks cannot arrive (the store answers 203 CallbackFailed)."""
    return stacks(backend, public_url=DEAD)


def later(stack: Stack, seconds: float) -> Uploads:
    """The stack's use-cases with a clock ``seconds`` ahead."""
    return replace(stack.deps.uploads, clock=lambda: time.time() + seconds)


def pending_state(stack: Stack, upload_id: str) -> str:
    with stack.deps.sessions() as s:
        return str(s.scalars(select(PendingUpload.state).where(PendingUpload.upload_id == upload_id)).one())


def test_callback_failed_then_complete(dead: Stack) -> None:
    user = new_user()
    data = random_bytes(1234)
    with dead.client(user) as c:
        ticket = policy(c, data, "late.bin").json()
        posted = browser_post(ticket, data, "late.bin")
        assert posted.status_code == 203 and b"CallbackFailed" in posted.content
        assert c.get("/api/files").json()["items"] == []
        done = c.post("/api/uploads/complete", json={"key": ticket["key"]})
        assert done.status_code == 200, done.text
        file = done.json()["file"]
        assert file["md5"] == md5_hex(data) and file["size"] == len(data) and file["name"] == "late.bin"
        again = c.post("/api/uploads/complete", json={"key": ticket["key"], "upload_id": ticket["upload_id"]})
        assert again.status_code == 200 and again.json()["file"]["id"] == file["id"]
    with dead.client(new_user()) as other:
        r = other.post("/api/uploads/complete", json={"key": ticket["key"], "upload_id": ticket["upload_id"]})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_complete_before_upload_is_409(dead: Stack) -> None:
    data = random_bytes(99)
    with dead.client(new_user()) as c:
        ticket = policy(c, data, "never.bin").json()
        r = c.post("/api/uploads/complete", json={"key": ticket["key"]})
        assert r.status_code == 409 and r.json()["error"] == "object_missing"
        r = c.post("/api/uploads/complete", json={"key": "user-dirs/nope"})
        assert r.status_code == 404


def test_lost_client_reconcile(dead: Stack) -> None:
    user = new_user()
    data, never = random_bytes(4321), random_bytes(10)
    with dead.client(user) as c:
        ticket = policy(c, data, "lost.bin").json()
        assert browser_post(ticket, data, "lost.bin").status_code == 203
        unused = policy(c, never, "unused.bin").json()
    with dead.deps.sessions() as s:
        early = reconcile(dead.deps.uploads, s)  # policies still valid: nothing to settle yet
        assert ticket["upload_id"] not in early.failed and pending_state(dead, ticket["upload_id"]) == "pending"
        report = reconcile(later(dead, dead.settings.policy_ttl + 5), s)
    assert report.recorded >= 1 and report.expired >= 1 and not report.failed
    assert pending_state(dead, ticket["upload_id"]) == "completed"
    assert pending_state(dead, unused["upload_id"]) == "expired"
    with dead.deps.sessions() as s:
        rec = s.scalars(select(StorageRecord).where(StorageRecord.creator_id == user)).one()
    assert rec.name == "lost.bin" and rec.md5 == md5_hex(data)


def test_sweep_removes_only_unexplained_objects(dead: Stack) -> None:
    user = new_user()
    kept, orphan = random_bytes(50), random_bytes(51)
    with dead.client(user) as c:
        t1 = policy(c, kept, "kept.bin").json()
        browser_post(t1, kept, "kept.bin")
        assert c.post("/api/uploads/complete", json={"key": t1["key"]}).status_code == 200
        t2 = policy(c, orphan, "orphan.bin").json()
        browser_post(t2, orphan, "orphan.bin")
    up = dead.deps.uploads
    with dead.deps.sessions() as s:
        young = sweep(up, s, older_than=3600, dry_run=False)
        assert t2["key"] not in young.removed  # too young
        pending = sweep(later(dead, 7200), s, older_than=3600, dry_run=True)
        assert t2["key"] not in pending.removed  # its upload is still pending
        reconcile_expire(dead, t2["upload_id"])
        dry = sweep(later(dead, 7200), s, older_than=3600, dry_run=True)
        assert t2["key"] in dry.removed and t1["key"] not in dry.removed
        assert dead.deps.store.head(t2["key"]) is not None
        wet = sweep(later(dead, 7200), s, older_than=3600)
    assert t2["key"] in wet.removed
    assert dead.deps.store.head(t2["key"]) is None and dead.deps.store.head(t1["key"]) is not None


def reconcile_expire(stack: Stack, upload_id: str) -> None:
    from ossdrop.services.files import expire_upload

    with stack.deps.sessions() as s:
        assert expire_upload(s, upload_id, now=int(time.time()))


def test_serve_reconciles_periodically(stacks: StackFactory, backend: str) -> None:
    """The task in the app's lifespan records a lost upload by itself once its policy has expired."""
    stack = stacks(backend, public_url=DEAD, policy_ttl=1, reconcile_interval=0.3)
    data = random_bytes(222)
    with stack.client(new_user()) as c:
        ticket = policy(c, data, "auto.bin").json()
        assert browser_post(ticket, data, "auto.bin").status_code == 203
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not c.get("/api/files").json()["items"]:
            time.sleep(0.2)
        items = c.get("/api/files").json()["items"]
    assert [f["name"] for f in items] == ["auto.bin"]
