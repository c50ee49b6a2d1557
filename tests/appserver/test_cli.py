"""The commands as a user runs them: ``ossdrop serve`` (both servers), ``db upgrade``, ``reconcile``, ``sweep``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ossdrop.client.oss import OssClient
from tests.appserver.conftest import browser_post, md5_hex, random_bytes
from tests.conftest import launch_serve

POLICY_TTL = 2


@dataclass
class Served:
    app_url: str
    store_url: str
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[str]

    @property
    def store_port(self) -> str:
        return self.store_url.rsplit(":", 1)[1]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "ossdrop",
            *args,
            "--data-dir",
            str(self.data_dir),
            "--store-port",
            self.store_port,
        ]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)

    def store_client(self) -> OssClient:
        creds = json.loads((self.data_dir / "store" / "credentials.json").read_text())
        return OssClient(self.store_url, "ossdrop", "cn-hangzhou", creds["access_key_id"], creds["access_key_secret"])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSSDROP_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve")
    env = clean_env(OSSDROP_POLICY_TTL=str(POLICY_TTL), OSSDROP_RECONCILE_INTERVAL="3600")
    launched = launch_serve(data_dir, env)
    proc = launched.proc
    yield Served(launched.app_url, launched.store_url, data_dir, env, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def login(served: Served, user_id: int) -> httpx.Client:
    token = httpx.post(served.app_url + "/api/dev/login", json={"user_id": user_id}).json()["token"]
    return httpx.Client(base_url=served.app_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_serve_runs_the_whole_flow(served: Served) -> None:
    assert (served.data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600
    assert (served.data_dir / "ossdrop.db").exists()
    data = random_bytes(2000)
    with login(served, 1) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ticket = c.post("/api/uploads/policy", json={"filename": "a.txt", "size": 2000, "md5": md5_hex(data)}).json()
        posted = browser_post(ticket, data, "a.txt", "text/plain")
        assert posted.status_code == 200 and posted.json()["file"]["md5"] == md5_hex(data)
        assert len(c.get("/api/files").json()["items"]) == 1


def test_reconcile_and_sweep_commands(served: Served) -> None:
    lost = random_bytes(300)
    store = served.store_client()
    with login(served, 2) as c:
        ticket = c.post("/api/uploads/policy", json={"filename": "lost.bin", "size": 300, "md5": md5_hex(lost)}).json()
    # The object arrives but its callback never does (as if the app was unreachable and the client gone).
    posted = httpx.post(ticket["url"], data={**ticket["fields"], "callback": ""}, files={"file": ("x", lost)})
    assert posted.status_code == 403  # the policy pins the callback: no way around it, so put it by SDK instead
    import alibabacloud_oss_v2 as oss

    store._client.put_object(oss.PutObjectRequest(bucket="ossdrop", key=ticket["key"], body=lost))
    store._client.put_object(oss.PutObjectRequest(bucket="ossdrop", key="user-dirs/stray/orphan.bin", body=b"x"))
    time.sleep(POLICY_TTL + 1)
    done = served.run("reconcile")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["recorded"] >= 1
    with login(served, 2) as c:
        assert [f["name"] for f in c.get("/api/files").json()["items"]] == ["lost.bin"]
    dry = served.run("sweep", "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0 and "would remove user-dirs/stray/orphan.bin" in dry.stdout
    assert ticket["key"] not in dry.stdout and store.head("user-dirs/stray/orphan.bin") is not None
    wet = served.run("sweep", "--older-than", "0s")
    assert wet.returncode == 0 and "removed user-dirs/stray/orphan.bin" in wet.stdout
    assert store.head("user-dirs/stray/orphan.bin") is None and store.head(ticket["key"]) is not None
    bad = served.run("sweep", "--older-than", "soon")
    assert bad.returncode != 0


def test_db_upgrade_and_bad_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    cmd = [sys.executable, "-m", "ossdrop", "db", "upgrade", "--data-dir", str(tmp_path)]
    ok = subprocess.run(cmd, env=clean_env(OSSDROP_DATABASE_URL=url), capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        cmd, env=clean_env(OSSDROP_SIGNATURE_VERSION="v9"), capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "OSSDROP_SIGNATURE_VERSION" in bad.stderr
    external = clean_env(OSSDROP_OSS_ENDPOINT="https://oss-cn-hangzhou.aliyuncs.com")
    missing = subprocess.run(cmd, env=external, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "OSSDROP_ACCESS_KEY_ID" in missing.stderr
