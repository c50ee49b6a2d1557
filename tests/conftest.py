"""Shared fixtures: a real ``ossdrop store`` process on a free loopback port."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY_ID = "LTAItestkey0001"
ACCESS_KEY_SECRET = "test-secret-0001-abcdefghijklmnop"


@dataclass
class StoreProcess:
    """A running store: its endpoint, root and process handle."""

    endpoint: str
    root: Path
    proc: subprocess.Popen[str]
    access_key_id: str = ACCESS_KEY_ID
    access_key_secret: str = ACCESS_KEY_SECRET

    def stop(self, sig: int | None = None) -> None:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


def start_store(root: Path, *extra: str) -> StoreProcess:
    """Start ``ossdrop store`` on port 0 and wait for its "listening on" line."""
    cmd = [
        sys.executable,
        "-m",
        "ossdrop",
        "store",
        "--root",
        str(root),
        "--port",
        "0",
        "--access-key-id",
        ACCESS_KEY_ID,
        "--access-key-secret",
        ACCESS_KEY_SECRET,
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "listening on " in line:
            return StoreProcess(line.rsplit("listening on ", 1)[1].strip(), root, proc)
    proc.kill()
    raise RuntimeError("store did not start:\n" + "".join(seen))


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    """One store for the whole session; tests use their own buckets."""
    proc = start_store(tmp_path_factory.mktemp("store"))
    yield proc
    proc.stop()


@pytest.fixture
def bucket_name() -> str:
    return "test-" + secrets.token_hex(6)


@dataclass
class Launched:
    """A just-started ``ossdrop serve``: its process, what it printed so far, and the two URLs it announced."""

    proc: subprocess.Popen[str]
    lines: list[str]
    app_url: str
    store_url: str


def launch_serve(data_dir: Path, env: dict[str, str], *, port: int = 0) -> Launched:
    """Start ``ossdrop serve`` (app on ``port``, store on a free port) and wait for "app listening on"."""
    cmd = [sys.executable, "-m", "ossdrop", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    cmd += ["--store-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=data_dir)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("app listening on" in ln for ln in lines):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    text = "".join(lines)
    app = re.search(r"app listening on (http://\S+)", text)
    store = re.search(r"ossdrop store: (http://\S+)", text)
    if not (app and store):
        proc.kill()
        proc.wait(10)
        pytest.fail("ossdrop serve did not start:\n" + text)
    return Launched(proc, lines, app[1], store[1])
