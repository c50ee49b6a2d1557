"""Bad input: each a clear JSON error with the right status, nothing written, never a 500 with a traceback."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from ossdrop.db.models import PendingUpload
from tests.appserver.conftest import JWT_SECRET, Stack, StackFactory, md5_hex, new_user, random_bytes, upload


def pending_count(stack: Stack) -> int:
    with stack.deps.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(PendingUpload)) or 0)


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message"} and "Traceback" not in r.text
    if code is not None:
        assert body["error"] == code


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer " + jwt.encode({"sub": "5", "iat": 0, "exp": 1}, JWT_SECRET, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "5", "iat": 0, "exp": 2**40}, "another-secret-" * 4, algorithm="HS256"),
        "Bearer " + jwt.encode({"sub": "x", "iat": 0, "exp": 2**40}, JWT_SECRET, algorithm="HS256"),
    ],
)
def test_missing_or_bad_token_is_401(stack: Stack, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    before = pending_count(stack)
    body = {"filename": "a", "size": 1, "md5": "0" * 32}
    with stack.client() as c:
        assert_error(c.post("/api/uploads/policy", json=body, headers=headers), 401, "unauthorized")
        assert_error(c.get("/api/files", headers=headers), 401, "unauthorized")
        assert_error(c.get("/api/files/1", headers=headers), 401, "unauthorized")
    assert pending_count(stack) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"filename": "a.bin", "size": -1, "md5": "0" * 32}, 422, "bad_size"),
        ({"filename": "a.bin", "size": 6 * 1024**3, "md5": "0" * 32}, 413, "too_large"),
        ({"filename": "a.bin", "size": 10, "md5": "xyz"}, 422, "bad_md5"),
        ({"filename": "a.bin", "size": 10, "md5": "g" * 32}, 422, "bad_md5"),
        ({"filename": "a.bin", "size": 10, "md5": ""}, 422, "bad_md5"),
        ({"filename": "", "size": 10, "md5": "0" * 32}, 422, "invalid_request"),
        ({"filename": "a" * 300, "size": 10, "md5": "0" * 32}, 422, "invalid_request"),
        ({"filename": "a.bin", "size": "ten", "md5": "0" * 32}, 422, "invalid_request"),
        ({"filename": "a.bin", "size": 1, "md5": "0" * 32, "content_type": "bad\ntype"}, 422, "invalid_request"),
        ({"filename": "a.bin", "size": 1, "md5": "0" * 32, "admin": True}, 422, "invalid_request"),
    ],
)
def test_bad_policy_requests(stack: Stack, body: dict[str, object], status: int, code: str) -> None:
    before = pending_count(stack)
    with stack.client(new_user()) as c:
        assert_error(c.post("/api/uploads/policy", json=body), status, code)
        assert_error(
            c.post("/api/uploads/policy", content=b"{not json", headers={"Content-Type": "application/json"}), 422
        )
    assert pending_count(stack) == before


def test_max_upload_bytes_is_enforced(stacks: StackFactory, backend: str) -> None:
    stack = stacks(backend, max_upload_bytes=1000)
    with stack.client(new_user()) as c:
        assert_error(c.post("/api/uploads/policy", json={"filename": "a", "size": 1001, "md5": "0" * 32}), 413)


def test_unknown_and_foreign_file_ids(stack: Stack) -> None:
    with stack.client(new_user()) as owner, stack.client(new_user()) as other:
        file = upload(owner, random_bytes(100), "mine.bin")
        for path in (f"/api/files/{file['id']}", f"/api/files/{file['id']}/download"):
            assert_error(other.get(path), 404, "not_found")
        assert_error(other.delete(f"/api/files/{file['id']}"), 404)
        for bad in ("999999999", "0", "-1", "99999999999999999999"):
            assert_error(owner.get(f"/api/files/{bad}"), 404)
        assert_error(owner.get("/api/files/abc"), 422, "invalid_request")
        assert_error(owner.get("/api/files", params={"limit": 0}), 422)
        assert_error(owner.get("/api/files", params={"cursor": "zz"}), 422, "bad_cursor")
        assert owner.get(f"/api/files/{file['id']}").status_code == 200


def test_dev_login_only_in_dev_mode(stacks: StackFactory, backend: str) -> None:
    dev, prod = stacks(backend), stacks(backend, dev_mode=False)
    with dev.client() as c:
        token = c.post("/api/dev/login", json={"user_id": 42}).json()["token"]
        assert c.get("/api/files", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert_error(c.post("/api/dev/login", json={"user_id": 0}), 422)
    with prod.client() as c:
        assert_error(c.post("/api/dev/login", json={"user_id": 42}), 404)


DEAD_DATABASES = {
    "sqlite": "sqlite:////nonexistent-dir/ossdrop.db",
    "mariadb": "mysql://root@127.0.0.1:1/ossdrop",
    "postgresql": "postgresql://postgres@127.0.0.1:1/ossdrop",
}


def test_database_down_is_503(stacks: StackFactory, backend: str) -> None:
    """A database that does not answer: 503 JSON, for reads and writes alike, and /healthz says so."""
    down = stacks(backend, database_url=DEAD_DATABASES[backend])
    data = random_bytes(10)
    with down.client(new_user()) as c:
        t0 = time.monotonic()
        policy = {"filename": "a", "size": 10, "md5": md5_hex(data)}
        assert_error(c.post("/api/uploads/policy", json=policy), 503, "database_unavailable")
        assert_error(c.get("/api/files"), 503, "database_unavailable")
        assert_error(c.delete("/api/files/1"), 503, "database_unavailable")
        assert time.monotonic() - t0 < 20
        r = c.get("/healthz")
        assert r.status_code == 503 and "database" in r.json()["message"]
