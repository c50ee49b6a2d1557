"""``ossdrop upload`` end to end against real ``ossdrop serve`` processes (app server + embedded store)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli import clean_env, run_cli
from tests.conftest import launch_serve


@dataclass
class Served:
    """A running ``ossdrop serve``."""

    app_url: str
    data_dir: Path
    proc: subprocess.Popen[str]

    def token(self, user_id: int) -> str:
        answer = httpx.post(self.app_url + "/api/dev/login", json={"user_id": user_id}, trust_env=False)
        return str(answer.json()["token"])

    def upload(self, *args: str, user_id: int | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        extra = {"OSSDROP_TOKEN": self.token(user_id)} if user_id is not None else {}
        return run_cli("upload", *args, "--server", self.app_url, env=clean_env(**extra, **env), cwd=self.data_dir)


def start_serve(data_dir: Path, port: int = 0, **env: str) -> Served:
    """``ossdrop serve`` on free ports (or app ``port``), once it says it is listening; ``app_url`` as announced."""
    launched = launch_serve(data_dir, clean_env(OSSDROP_RECONCILE_INTERVAL="3600", **env), port=port)
    return Served(f"http://127.0.0.1:{port}" if port else launched.app_url, data_dir, launched.proc)


def stop(served: Served) -> None:
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = start_serve(tmp_path_factory.mktemp("serve"))
    yield running
    stop(running)


@pytest.fixture(scope="module")
def no_callback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose callbacks miss (its public URL has a wrong path), with global dedup: 203, complete, proofs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wrong = f"http://127.0.0.1:{port}/nowhere"
    running = start_serve(
        tmp_path_factory.mktemp("serve-nocb"), port, OSSDROP_PUBLIC_URL=wrong, OSSDROP_DEDUP_SCOPE="global"
    )
    yield running
    stop(running)


def user() -> int:
    return int.from_bytes(os.urandom(3), "big") + 1000


def file_with(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_upload_then_instant_upload(served: Served, tmp_path: Path) -> None:
    big = file_with(tmp_path / "big.bin", os.urandom(3 * 1024 * 1024))
    small = file_with(tmp_path / "note.txt", b"hello from the cli\n")
    uid = user()
    first = served.upload(str(big), str(small), user_id=uid)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{big}: uploaded (id ")
    assert hashlib.md5(big.read_bytes()).hexdigest() in lines[0]
    assert lines[1].startswith(f"{small}: uploaded (id ")

    again = served.upload(str(big), "--json", user_id=uid)
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["md5"] == hashlib.md5(big.read_bytes()).hexdigest() and record["size"] == big.stat().st_size
    assert record["creator_id"] == uid and record["name"] == "big.bin"
    text = served.upload(str(small), user_id=uid)
    assert text.stdout.startswith(f"{small}: already stored, 0 bytes sent (id ")
    stored = httpx.get(record["url"], trust_env=False)
    assert stored.status_code == 200 and stored.content == big.read_bytes()


def test_upload_failures(served: Served, tmp_path: Path) -> None:
    data = file_with(tmp_path / "a.bin", b"x" * 100)
    no_token = served.upload(str(data))
    assert no_token.returncode == 2 and no_token.stderr == "error: no token: pass --token or set OSSDROP_TOKEN\n"
    bad = served.upload(str(data), "--token", "not-a-token")
    assert bad.returncode == 1
    assert re.fullmatch(rf"error: {re.escape(str(data))}: unauthorized: [^\n]+\n", bad.stderr), bad.stderr
    down = run_cli("upload", str(data), "--server", "http://127.0.0.1:1", "--token", "t", env=clean_env(), cwd=tmp_path)
    assert down.returncode == 1 and down.stderr.startswith(f"error: {data}: cannot reach the app server at ")
    assert down.stderr.count("\n") == 1
    missing = served.upload(str(tmp_path / "absent.bin"), user_id=user())
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_lost_callback_is_completed_and_global_dedup_is_proved(no_callback: Served, tmp_path: Path) -> None:
    data = file_with(tmp_path / "shared.bin", os.urandom(200_000))
    first = no_callback.upload(str(data), "--json", user_id=user())
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["md5"] == hashlib.md5(data.read_bytes()).hexdigest()

    other = no_callback.upload(str(data), user_id=user())
    assert other.returncode == 0, other.stderr
    assert other.stdout.startswith(f"{data}: already stored, 0 bytes sent (id ")
