"""The flow against real Aliyun OSS, when ``OSSDROP_TEST_OSS_ENDPOINT/BUCKET/REGION/ACCESS_KEY_ID/ACCESS_KEY_SECRET``
are set (skipped otherwise). OSS cannot call back to a loopback app, so unless ``OSSDROP_TEST_PUBLIC_URL`` names an
address OSS reaches, the upload ends in 203 CallbackFailed and the test goes on through ``complete``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ossdrop.appserver.app import create_app
from ossdrop.appserver.auth import issue_token
from ossdrop.appserver.deps import build_deps
from ossdrop.appserver.runner import prepare
from ossdrop.appserver.settings import make_settings
from ossdrop.objectserver.runner import bind_socket
from tests.appserver.conftest import JWT_SECRET, ServerThread, browser_post, md5_hex, new_user, random_bytes

NAMES = ("ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY_ID", "ACCESS_KEY_SECRET")
ENV = {name: os.environ.get(f"OSSDROP_TEST_OSS_{name}", "") for name in NAMES}
pytestmark = pytest.mark.skipif(
    not all(ENV.values()),
    reason="real Aliyun OSS not configured: set OSSDROP_TEST_OSS_" + "/".join(NAMES),
)


@pytest.fixture(scope="module", params=["v4", "v1"])
def app_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    endpoint = ENV["ENDPOINT"] if "://" in ENV["ENDPOINT"] else "https://" + ENV["ENDPOINT"]
    settings = make_settings(
        database_url=f"sqlite:///{Path(tmp_path_factory.mktemp('real')) / 'real.db'}",
        oss_endpoint=endpoint,
        bucket=ENV["BUCKET"],
        region=ENV["REGION"],
        access_key_id=ENV["ACCESS_KEY_ID"],
        access_key_secret=ENV["ACCESS_KEY_SECRET"],
        public_url=os.environ.get("OSSDROP_TEST_PUBLIC_URL") or f"http://127.0.0.1:{port}",
        jwt_secret=JWT_SECRET,
        signature_version=request.param,
        upload_dir="ossdrop-test/",
    )
    prepare(settings)
    server = ServerThread(create_app(build_deps(settings), run_reconciler=False), sock, lifespan="on")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_real_oss_flow(app_url: str) -> None:
    token = issue_token(JWT_SECRET, new_user(), 600)
    data = random_bytes(4096)
    with httpx.Client(base_url=app_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        ticket = c.post("/api/uploads/policy", json={"filename": "r.bin", "size": len(data), "md5": md5_hex(data)})
        assert ticket.status_code == 200, ticket.text
        t = ticket.json()
        posted = browser_post(t, data, "r.bin")
        if posted.status_code == 200:
            file = posted.json()["file"]
        else:
            assert posted.status_code == 203, posted.text
            done = c.post("/api/uploads/complete", json={"key": t["key"], "upload_id": t["upload_id"]})
            assert done.status_code == 200, done.text
            file = done.json()["file"]
        assert file["md5"] == md5_hex(data)
        assert httpx.get(file["url"]).content == data
        again = c.post("/api/uploads/policy", json={"filename": "r2.bin", "size": len(data), "md5": md5_hex(data)})
        assert again.json()["status"] == "exists"
        for f in c.get("/api/files").json()["items"]:
            assert c.delete(f"/api/files/{f['id']}").status_code == 204
        assert httpx.get(file["url"]).status_code == 404
