"""Uploads whose client gives no MD5 (issue 4: ``md5?``): a key that claims no content, the real MD5 recorded from
the store, and later uploads of that content deduplicated against it, on callback, complete and reconcile."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ossdrop.db.models import PendingUpload, StorageRecord
from ossdrop.protocol.post_policy import decode_policy
from ossdrop.services.reconcile import reconcile
from tests.appserver.conftest import Stack, StackFactory, browser_post, md5_hex, new_user, policy, random_bytes
from tests.appserver.test_nothing_lost import DEAD, later, pending_state


def unhashed_policy(client: httpx.Client, name: str, size: int | None) -> dict[str, Any]:
    """An ``upload`` ticket asked for without an MD5 (and without a size when ``size`` is None)."""
    body: dict[str, Any] = {"filename": name} if size is None else {"filename": name, "size": size}
    r = client.post("/api/uploads/policy", json=body)
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert ticket["status"] == "upload"
    return dict(ticket)


def record_of(stack: Stack, upload_id: str) -> StorageRecord:
    with stack.deps.sessions() as s:
        return s.scalars(select(StorageRecord).where(StorageRecord.upload_id == upload_id)).one()


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_upload_without_md5_then_dedup_by_md5(stacks: StackFactory, backend: str, version: str) -> None:
    stack = stacks(backend, signature_version=version)
    user = new_user()
    data = random_bytes(3333)
    with stack.client(user) as c:
        ticket = unhashed_policy(c, "Clip.MP4", len(data))
        assert ticket["key"] == f"user-dirs/c{user}/u/{ticket['upload_id']}.mp4" == ticket["fields"]["key"]
        if version == "v4":
            conditions = repr(decode_policy(ticket["fields"]["policy"]).conditions)
            for needle in ("'key'", "x-oss-forbid-overwrite", "'callback'", f"LengthRange(minimum={len(data)},"):
                assert needle in conditions
        assert browser_post(ticket, data + b"!", "Clip.MP4").status_code == 400  # the size is pinned
        posted = browser_post(ticket, data, "Clip.MP4")
        assert posted.status_code == 200, posted.text
        file = posted.json()["file"]
        assert file["md5"] == md5_hex(data) and file["path"] == ticket["key"] and file["size"] == len(data)
        assert record_of(stack, ticket["upload_id"]).md5 == md5_hex(data)
        again = policy(c, data, "copy.mp4")
        assert again.status_code == 200 and again.json()["status"] == "exists", again.text
        assert again.json()["file"]["path"] == ticket["key"] and again.json()["file"]["md5"] == md5_hex(data)
        assert c.get(f"/api/files/{file['id']}").status_code == 200


def test_upload_without_md5_or_size(stack: Stack) -> None:
    user = new_user()
    data = random_bytes(777)
    with stack.client(user) as c:
        ticket = unhashed_policy(c, "stream", None)
        assert re.fullmatch(rf"user-dirs/c{user}/u/[0-9a-f]{{32}}", ticket["key"])
        limit = stack.settings.max_upload_bytes
        assert f"LengthRange(minimum=0, maximum={limit})" in repr(decode_policy(ticket["fields"]["policy"]).conditions)
        posted = browser_post(ticket, data, "stream")
        assert posted.status_code == 200, posted.text
        assert posted.json()["file"]["md5"] == md5_hex(data) and posted.json()["file"]["size"] == len(data)
        # The same content asked for again without an MD5 is a new upload: nothing to look it up by.
        assert unhashed_policy(c, "stream", len(data))["key"] != ticket["key"]


@pytest.fixture
def dead(stacks: StackFactory, backend: str) -> Stack:
    """A stack whose callbacks cannot arrive (the store answers 203 CallbackFailed)."""
    return stacks(backend, public_url=DEAD)


def test_complete_without_md5(dead: Stack) -> None:
    user = new_user()
    data = random_bytes(1500)
    with dead.client(user) as c:
        ticket = unhashed_policy(c, "late.bin", len(data))
        assert c.post("/api/uploads/complete", json={"key": ticket["key"]}).status_code == 409
        assert browser_post(ticket, data, "late.bin").status_code == 203
        done = c.post("/api/uploads/complete", json={"key": ticket["key"], "upload_id": ticket["upload_id"]})
        assert done.status_code == 200, done.text
        assert done.json()["file"]["md5"] == md5_hex(data) and done.json()["file"]["path"] == ticket["key"]
        assert record_of(dead, ticket["upload_id"]).md5 == md5_hex(data)
        assert policy(c, data, "again.bin").json()["status"] == "exists"


def test_reconcile_without_md5(dead: Stack) -> None:
    user = new_user()
    data = random_bytes(2100)
    with dead.client(user) as c:
        ticket = unhashed_policy(c, "lost.bin", len(data))
        assert browser_post(ticket, data, "lost.bin").status_code == 203
        unused = unhashed_policy(c, "never.bin", None)
    with dead.deps.sessions() as s:
        report = reconcile(later(dead, dead.settings.policy_ttl + 5), s)
    assert not report.failed
    assert pending_state(dead, ticket["upload_id"]) == "completed"
    assert pending_state(dead, unused["upload_id"]) == "expired"
    assert record_of(dead, ticket["upload_id"]).md5 == md5_hex(data)
    with dead.deps.sessions() as s:
        expected = s.scalars(select(PendingUpload.expected_md5).where(PendingUpload.upload_id == unused["upload_id"]))
        assert expected.one() == ""
    with dead.client(user) as c:
        assert policy(c, data, "found.bin").json()["status"] == "exists"
