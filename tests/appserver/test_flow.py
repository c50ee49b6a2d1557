"""The whole flow over real HTTP: policy -> browser form POST to the store -> signed callback -> row -> JSON."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from ossdrop.db.models import PendingUpload, StorageRecord
from ossdrop.protocol.post_policy import decode_policy
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


def rows(stack: Stack, creator_id: int) -> list[StorageRecord]:
    with stack.deps.sessions() as s:
        return list(s.scalars(select(StorageRecord).where(StorageRecord.creator_id == creator_id)))


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_upload_flow(stacks: StackFactory, backend: str, version: str) -> None:
    stack = stacks(backend, signature_version=version)
    user = new_user()
    data = random_bytes(5000)
    with stack.client(user) as c:
        r = policy(c, data, "Photo.JPG", content_type="image/jpeg")
        assert r.status_code == 200, r.text
        ticket = r.json()
        assert ticket["status"] == "upload" and ticket["signature_version"] == version
        assert ticket["key"] == ticket["fields"]["key"] and ticket["key"].endswith(md5_hex(data) + ".jpg")
        if version == "v1":
            assert {"OSSAccessKeyId", "policy", "Signature"} <= set(ticket["fields"])
            for seed in ("accessid", "host", "policy", "signature", "expire", "callback", "dir"):
                assert ticket[seed], seed
            assert ticket["dir"] == "user-dirs/" and ticket["host"] == ticket["url"]
        else:
            assert ticket["fields"]["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
        posted = browser_post(ticket, data, "Photo.JPG", "image/jpeg")
        assert posted.status_code == 200, posted.text
        file = posted.json()["file"]
        assert file["name"] == "Photo.JPG" and file["ext"] == "jpg" and file["md5"] == md5_hex(data)
        assert file["size"] == len(data) and file["creator_id"] == user and file["mime_type"] == "image/jpeg"
        assert [r.id for r in rows(stack, user)] == [file["id"]]
        got = c.get(f"/api/files/{file['id']}")
        assert got.status_code == 200 and got.json()["path"] == ticket["key"]
        assert httpx.get(got.json()["url"]).content == data
        redirect = c.get(f"/api/files/{file['id']}/download")
        assert redirect.status_code == 302 and httpx.get(redirect.headers["location"]).content == data


def test_policy_pins_everything(stack: Stack) -> None:
    data = random_bytes(100)
    with stack.client(new_user()) as c:
        ticket = policy(c, data, "a.txt").json()
    conditions = decode_policy(ticket["fields"]["policy"]).conditions
    text = repr(conditions)
    for needle in ("'key'", "x-oss-forbid-overwrite", "'callback'", "LengthRange(minimum=100, maximum=100)"):
        assert needle in text
    # A client that changes the key, the size or the callback is refused by the store and nothing is recorded.
    changed_key = dict(ticket, fields={**ticket["fields"], "key": ticket["key"] + "x"})
    assert browser_post(changed_key, data, "a.txt").status_code == 403
    assert browser_post(ticket, data + b"!", "a.txt").status_code == 400
    no_callback = dict(ticket, fields={k: v for k, v in ticket["fields"].items() if k != "callback"})
    assert browser_post(no_callback, data, "a.txt").status_code == 403


def test_instant_upload_moves_no_bytes(stack: Stack) -> None:
    user = new_user()
    data = random_bytes(3000)
    with stack.client(user) as c:
        first = upload(c, data, "one.bin")
        r = policy(c, data, "two.txt")
        assert r.status_code == 200 and r.json()["status"] == "exists"
        second = r.json()["file"]
    assert second["name"] == "two.txt" and second["path"] == first["path"] and second["id"] != first["id"]
    assert len(rows(stack, user)) == 2
    assert len(list(stack.deps.store.list(first["path"]))) == 1


def test_repeated_callback_is_idempotent(stack: Stack) -> None:
    """A callback delivered twice (store retry by hand) gives the same record."""
    from tests.appserver.test_callbacks import signed_callback

    user = new_user()
    data = random_bytes(700)
    with stack.client(user) as c:
        ticket = policy(c, data, "x.bin").json()
        file = browser_post(ticket, data, "x.bin").json()["file"]
    with stack.deps.sessions() as s:
        pending = s.scalars(select(PendingUpload).where(PendingUpload.upload_id == ticket["upload_id"])).one()
        assert pending.state == "completed" and pending.storage_id == file["id"]
    again = signed_callback(stack, ticket["upload_id"], ticket["key"], len(data), md5_hex(data))
    assert again.status_code == 200 and again.json()["file"]["id"] == file["id"]
    assert len(rows(stack, user)) == 1


def test_list_pages_newest_first(stack: Stack) -> None:
    user = new_user()
    data = random_bytes(300)
    with stack.client(user) as c:
        made = [upload(c, data, f"f{i}.bin")["id"] for i in range(5)]
        page1 = c.get("/api/files", params={"limit": 2}).json()
        page2 = c.get("/api/files", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
        page3 = c.get("/api/files", params={"limit": 2, "cursor": page2["next_cursor"]}).json()
    ids = [f["id"] for p in (page1, page2, page3) for f in p["items"]]
    assert ids == sorted(made, reverse=True) and page3["next_cursor"] is None


def test_healthz_and_version(stack: Stack) -> None:
    with stack.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/api/version").json()["name"] == "ossdrop"
        assert c.get("/docs").status_code == 200
