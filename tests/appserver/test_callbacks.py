"""Callback authenticity: forged, unsigned, untrusted-key and replayed-to-another-object requests change nothing."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from ossdrop.db.models import StorageRecord
from ossdrop.objectserver.callback_hook import load_or_create_callback_key, pub_key_url
from ossdrop.protocol.callback import generate_callback_key, load_private_key, pub_key_url_header, sign_callback
from ossdrop.services.callback_verify import CallbackAuthError, CallbackVerifier
from tests.appserver.conftest import Stack, browser_post, md5_hex, new_user, policy, random_bytes


def callback_body(upload_id: str, key: str, size: int, etag: str) -> bytes:
    values = {"upload_id": upload_id, "object": key, "size": size, "etag": etag.upper(), "mimeType": "x/y"}
    return urlencode({**values, "width": "", "height": ""}).encode()


def signed_callback(
    stack: Stack, upload_id: str, key: str, size: int, etag: str, *, private_pem: bytes | None = None, url: str = ""
) -> httpx.Response:
    """A callback signed like the store signs it (with the store's own key unless ``private_pem``)."""
    body = callback_body(upload_id, key, size, etag)
    target = stack.settings.callback_url
    path = urlsplit(target).path
    signer = load_private_key(private_pem) if private_pem else load_or_create_callback_key(str(stack.store.root))
    headers = {
        "authorization": sign_callback(signer, path, "", body),
        "x-oss-pub-key-url": pub_key_url_header(url or pub_key_url(stack.store.endpoint)),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return httpx.post(target, content=body, headers=headers)


def record_count(stack: Stack) -> int:
    with stack.deps.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(StorageRecord)) or 0)


def pending_ticket(stack: Stack, data: bytes) -> dict[str, object]:
    with stack.client(new_user()) as c:
        return dict(policy(c, data, "p.bin").json())


def test_unsigned_and_forged_callbacks_are_refused(stack: Stack) -> None:
    data = random_bytes(64)
    t = pending_ticket(stack, data)
    before = record_count(stack)
    body = callback_body(str(t["upload_id"]), str(t["key"]), len(data), md5_hex(data))
    plain = httpx.post(stack.settings.callback_url, content=body)
    assert plain.status_code == 403 and plain.json()["error"] == "unsigned"
    forged_pem, _ = generate_callback_key(1024)
    forged = signed_callback(
        stack, str(t["upload_id"]), str(t["key"]), len(data), md5_hex(data), private_pem=forged_pem
    )
    assert forged.status_code == 403 and forged.json()["error"] == "bad_signature"
    evil = signed_callback(
        stack, str(t["upload_id"]), str(t["key"]), len(data), md5_hex(data), private_pem=forged_pem,
        url="http://127.0.0.1:1/evil.pem",
    )  # fmt: skip
    assert evil.status_code == 403 and evil.json()["error"] == "untrusted_key"
    assert record_count(stack) == before


def test_replay_to_another_object_is_refused(stack: Stack) -> None:
    """A genuine signature over one body does not cover another: changing the object breaks it."""
    data = random_bytes(64)
    t = pending_ticket(stack, data)
    good = callback_body(str(t["upload_id"]), str(t["key"]), len(data), md5_hex(data))
    signer = load_or_create_callback_key(str(stack.store.root))
    path = urlsplit(stack.settings.callback_url).path
    headers = {
        "authorization": sign_callback(signer, path, "", good),
        "x-oss-pub-key-url": pub_key_url_header(pub_key_url(stack.store.endpoint)),
    }
    other = good.replace(b"user-dirs", b"user-dirz")
    before = record_count(stack)
    r = httpx.post(stack.settings.callback_url, content=other, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "bad_signature"
    assert record_count(stack) == before


def test_signed_callback_for_wrong_object_or_unknown_upload(stack: Stack) -> None:
    data = random_bytes(64)
    t = pending_ticket(stack, data)
    before = record_count(stack)
    wrong_key = str(t["key"]).replace("/c", "/c9", 1)
    r = signed_callback(stack, str(t["upload_id"]), wrong_key, len(data), md5_hex(data))
    assert r.status_code == 409 and r.json()["error"] == "upload_mismatch"
    r = signed_callback(stack, "f" * 32, str(t["key"]), len(data), md5_hex(data))
    assert r.status_code == 404 and r.json()["error"] == "unknown_upload"
    assert record_count(stack) == before


def test_key_url_checked_before_fetch_and_cached() -> None:
    fetched: list[str] = []
    pem_priv, pem_pub = generate_callback_key(1024)

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem_pub

    verifier = CallbackVerifier(["http://127.0.0.1:9/keys/"], fetch)
    body = b"a=1"
    auth = sign_callback(pem_priv, "/cb", "", body)
    bad_url = pub_key_url_header("http://127.0.0.1:9/other.pem")
    try:
        verifier.verify(authorization=auth, pub_key_url=bad_url, path="/cb", query="", body=body)
    except Exception as exc:  # noqa: BLE001
        assert type(exc).__name__ == "CallbackAuthError"
    assert fetched == []
    good_url = pub_key_url_header("http://127.0.0.1:9/keys/k.pem")
    for _ in range(3):
        verifier.verify(authorization=auth, pub_key_url=good_url, path="/cb", query="", body=body)
    assert fetched == ["http://127.0.0.1:9/keys/k.pem"]


def test_verify_cached_never_fetches_and_decides_exactly_as_verify() -> None:
    fetched: list[str] = []
    pem_priv, pem_pub = generate_callback_key(1024)

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem_pub

    verifier = CallbackVerifier(["http://127.0.0.1:9/keys/"], fetch)
    body = b"a=1"
    auth = sign_callback(pem_priv, "/cb", "", body)
    url = pub_key_url_header("http://127.0.0.1:9/keys/k.pem")
    args = {"authorization": auth, "pub_key_url": url, "path": "/cb", "query": ""}
    assert verifier.verify_cached(**args, body=body) is False  # key not cached: nothing decided, nothing fetched
    assert fetched == []
    verifier.verify(**args, body=body)
    assert verifier.verify_cached(**args, body=body) is True
    for bad in ({"body": b"a=2"}, {"authorization": None, "body": body}):
        with pytest.raises(CallbackAuthError):
            verifier.verify_cached(**{**args, **bad})
    with pytest.raises(CallbackAuthError):  # an untrusted key URL is refused before any cache lookup
        verifier.verify_cached(**{**args, "pub_key_url": pub_key_url_header("http://evil/k.pem")}, body=body)
    assert fetched == ["http://127.0.0.1:9/keys/k.pem"]


def test_content_not_matching_its_md5_is_removed(stack: Stack) -> None:
    """The client claims one MD5 and uploads other bytes of the same size: not recorded, object removed."""
    real = random_bytes(256)
    claimed = random_bytes(256)
    user = new_user()
    with stack.client(user) as c:
        ticket = c.post(
            "/api/uploads/policy", json={"filename": "lie.bin", "size": 256, "md5": md5_hex(claimed)}
        ).json()
    posted = browser_post(ticket, real, "lie.bin")
    assert posted.status_code == 203 and b"CallbackFailed" in posted.content
    assert stack.deps.store.head(ticket["key"]) is None
    with stack.deps.sessions() as s:
        assert s.scalar(select(func.count()).select_from(StorageRecord).where(StorageRecord.creator_id == user)) == 0
    assert json.loads(base64.b64decode(ticket["fields"]["callback"]))["callbackUrl"] == stack.settings.callback_url
