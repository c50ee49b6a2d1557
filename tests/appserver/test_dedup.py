"""Dedup scopes, the proof of possession, refcounted deletes, and 50 concurrent uploads of one content."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

from ossdrop.db.models import StorageRecord, StoredObject
from tests.appserver.conftest import (
    Stack,
    StackFactory,
    browser_post,
    md5_hex,
    new_user,
    policy,
    random_bytes,
    upload,
)


def test_creator_scope_never_shares_across_creators(stack: Stack) -> None:
    data = random_bytes(800)
    with stack.client(new_user()) as a, stack.client(new_user()) as b:
        first = upload(a, data, "a.bin")
        r = policy(b, data, "b.bin").json()
        assert r["status"] == "upload" and r["key"] != first["path"]


def test_global_scope_needs_a_proof(stacks: StackFactory, backend: str) -> None:
    stack = stacks(backend, dedup_scope="global")
    data = random_bytes(100_000)
    with stack.client(new_user()) as a, stack.client(new_user()) as b:
        first = upload(a, data, "a.bin")
        assert "/g/" in first["path"]
        challenge = policy(b, data, "b.bin").json()
        assert challenge["status"] == "proof_required"
        proof = challenge["proof"]
        wrong = policy(b, data, "b.bin", proof={"token": proof["token"], "md5": md5_hex(b"guess")})
        assert wrong.status_code == 403 and wrong.json()["error"] == "bad_proof"
        forged = policy(b, data, "b.bin", proof={"token": proof["token"] + "0", "md5": md5_hex(b"x")})
        assert forged.status_code == 422 and forged.json()["error"] == "bad_proof"
        part = data[proof["first"] : proof["last"] + 1]
        ok = policy(b, data, "b.bin", proof={"token": proof["token"], "md5": hashlib.md5(part).hexdigest()})
        assert ok.status_code == 200 and ok.json()["status"] == "exists"
        assert ok.json()["file"]["path"] == first["path"] and ok.json()["file"]["name"] == "b.bin"
    with stack.client(new_user()) as c:  # a token is bound to the user it was issued to
        stolen = policy(c, data, "c.bin", proof={"token": proof["token"], "md5": hashlib.md5(part).hexdigest()})
        assert stolen.status_code == 422


def test_off_scope_stores_every_upload(stacks: StackFactory, backend: str) -> None:
    stack = stacks(backend, dedup_scope="off")
    data = random_bytes(300)
    with stack.client(new_user()) as c:
        one, two = upload(c, data, "1.bin"), upload(c, data, "2.bin")
    assert one["path"] != two["path"]


def object_rows(stack: Stack, path: str) -> int:
    with stack.deps.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(StoredObject).where(StoredObject.path == path)) or 0)


def test_refcounted_delete(stack: Stack) -> None:
    data = random_bytes(500)
    with stack.client(new_user()) as c, stack.client(new_user()) as other:
        a = upload(c, data, "a.bin")
        b = upload(c, data, "b.bin")
        assert a["path"] == b["path"]
        assert other.delete(f"/api/files/{a['id']}").status_code == 404
        assert c.delete(f"/api/files/{a['id']}").status_code == 204
        assert c.delete(f"/api/files/{a['id']}").status_code == 404
        assert stack.deps.store.head(a["path"]) is not None
        assert c.delete(f"/api/files/{b['id']}").status_code == 204
    assert stack.deps.store.head(a["path"]) is None and object_rows(stack, a["path"]) == 0


def test_concurrent_deletes_remove_the_object_once(stack: Stack) -> None:
    data = random_bytes(600)
    with stack.client(new_user()) as c:
        ids = [upload(c, data, f"{i}.bin")["id"] for i in range(12)]
        path = c.get(f"/api/files/{ids[0]}").json()["path"]
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda i: c.delete(f"/api/files/{i}").status_code, ids))
    assert codes == [204] * 12
    assert stack.deps.store.head(path) is None and object_rows(stack, path) == 0


def one_client_upload(stack: Stack, user: int, data: bytes, name: str) -> dict[str, Any]:
    """What a real client does: policy; upload; on 409 FileAlreadyExists or 203 call ``complete``."""
    with stack.client(user) as c:
        r = policy(c, data, name)
        assert r.status_code == 200, r.text
        ticket = r.json()
        if ticket["status"] == "exists":
            return dict(ticket["file"], via="exists")
        posted = browser_post(ticket, data, name)
        if posted.status_code == 200:
            return dict(posted.json()["file"], via="callback")
        assert posted.status_code in (203, 409), posted.text
        if posted.status_code == 409:
            assert b"FileAlreadyExists" in posted.content
        done = c.post("/api/uploads/complete", json={"key": ticket["key"], "upload_id": ticket["upload_id"]})
        assert done.status_code == 200, done.text
        return dict(done.json()["file"], via=f"complete-{posted.status_code}")


def test_fifty_concurrent_uploads_of_one_content(stack: Stack) -> None:
    user = new_user()
    data = random_bytes(64 * 1024)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: one_client_upload(stack, user, data, f"same-{i}.bin"), range(50)))
    assert len({r["id"] for r in results}) == 50
    assert sorted(r["name"] for r in results) == sorted(f"same-{i}.bin" for i in range(50))
    assert len({r["path"] for r in results}) == 1
    assert sum(r["via"] == "callback" for r in results) >= 1  # exactly one upload wrote the object
    path = results[0]["path"]
    listed = list(stack.deps.store.list(path))
    assert len(listed) == 1 and listed[0].size == len(data)
    assert httpx.get(stack.deps.store.presign_get(path, 60)).content == data
    with stack.deps.sessions() as s:
        n = s.scalar(select(func.count()).select_from(StorageRecord).where(StorageRecord.creator_id == user))
    assert n == 50 and object_rows(stack, path) == 1
