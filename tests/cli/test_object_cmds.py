"""``ossdrop bucket|put|get|ls|rm`` end to end against a real ``ossdrop store`` process."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import alibabacloud_oss_v2 as oss
import pytest

from tests.cli import clean_env, run_cli
from tests.conftest import StoreProcess

COMMANDS = [
    ["bucket"],
    ["bucket", "create"],
    ["bucket", "ls"],
    ["bucket", "rm"],
    ["put"],
    ["get"],
    ["ls"],
    ["rm"],
    ["upload"],
    [],
    ["store"],
    ["serve"],
    ["db"],
    ["db", "upgrade"],
    ["reconcile"],
    ["sweep"],
]


@dataclass
class Cli:
    """The CLI pointed at the test store as its embedded store (key pair from the environment)."""

    store: StoreProcess
    bucket: str
    cwd: Path
    env: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.cwd / "data"

    @property
    def port(self) -> str:
        return self.store.endpoint.rsplit(":", 1)[1]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        place = ["--data-dir", str(self.data_dir), "--store-port", self.port]
        return run_cli(*args, *place, env=self.env, cwd=self.cwd, timeout=timeout)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    def sdk(self) -> oss.Client:
        cfg = oss.config.load_default()
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
            self.store.access_key_id, self.store.access_key_secret
        )
        cfg.region, cfg.endpoint, cfg.use_path_style = "cn-hangzhou", self.store.endpoint, True
        return oss.Client(cfg)


@pytest.fixture
def cli(store: StoreProcess, bucket_name: str, tmp_path: Path) -> Cli:
    env = clean_env(
        OSSDROP_ACCESS_KEY_ID=store.access_key_id,
        OSSDROP_ACCESS_KEY_SECRET=store.access_key_secret,
        OSSDROP_BUCKET=bucket_name,
    )
    runner = Cli(store, bucket_name, tmp_path, env)
    assert runner.ok("bucket", "create", bucket_name) == f"created bucket {bucket_name}\n"
    return runner


def failure(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (exit 1)."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_random(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ossdrop")
def test_help_says_what_and_shows_an_example(command: list[str], tmp_path: Path) -> None:
    done = run_cli(*command, "--help", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Example" in done.stdout
    assert f"ossdrop {' '.join(command)}" in done.stdout


def test_bucket_create_ls_rm(cli: Cli) -> None:
    name = cli.bucket + "-x"
    assert cli.ok("bucket", "create", name, "--acl", "private", "--storage-class", "IA") == f"created bucket {name}\n"
    listed = [line.split() for line in cli.ok("bucket", "ls").splitlines()]
    assert [name, "IA"] in [[row[-1], row[-2]] for row in listed]
    assert failure(cli.run("bucket", "create", name)).startswith("error: BucketAlreadyExists: ")
    bad = cli.run("bucket", "create", name, "--acl", "secret")
    assert bad.returncode == 2
    cli.ok("put", str(write_random(cli.cwd / "f.bin", 10)), "--bucket", name)
    assert (
        failure(cli.run("bucket", "rm", name)) == "error: BucketNotEmpty: The bucket you tried to delete is not empty."
    )
    cli.ok("rm", "f.bin", "--bucket", name)
    assert cli.ok("bucket", "rm", name) == f"removed bucket {name}\n"
    assert name not in cli.ok("bucket", "ls")
    assert failure(cli.run("bucket", "rm", name)) == "error: NoSuchBucket: The specified bucket does not exist."


def test_invalid_bucket_name_is_refused_before_any_request(tmp_path: Path) -> None:
    # No store and no credentials at all: any request would fail differently.
    for args in (["bucket", "create", "Bad_Name"], ["bucket", "rm", "ab"], ["ls", "--bucket", "-bad-"]):
        done = run_cli(
            *args,
            "--store-port",
            "1",
            env=clean_env(OSSDROP_ACCESS_KEY_ID="k", OSSDROP_ACCESS_KEY_SECRET="s"),
            cwd=tmp_path,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("error: invalid bucket name ")
        assert "3-63 characters of a-z, 0-9 and '-'" in done.stderr
        assert done.stderr.count("\n") == 1


def test_large_file_put_and_get_multipart(cli: Cli) -> None:
    src = write_random(cli.cwd / "big.bin", 3 * 1024 * 1024 + 123)
    out = cli.ok("put", str(src), "videos/", "--part-size", "256KiB")
    assert out == f"uploaded {src} -> oss://{cli.bucket}/videos/big.bin (3.0 MiB)\n"
    head = cli.sdk().head_object(oss.HeadObjectRequest(bucket=cli.bucket, key="videos/big.bin"))
    assert head.content_length == src.stat().st_size
    assert head.object_type == "Multipart"
    assert not list((cli.data_dir / "checkpoints").iterdir())  # checkpoint removed once done

    copy = cli.cwd / "copy.bin"
    out = cli.ok("get", "videos/big.bin", str(copy), "--part-size", "512KiB")
    assert out == f"downloaded oss://{cli.bucket}/videos/big.bin -> {copy} (3.0 MiB)\n"
    assert md5_of(copy) == md5_of(src)
    (cli.cwd / "here").mkdir()
    cli.ok("get", "videos/big.bin", str(cli.cwd / "here"))
    assert md5_of(cli.cwd / "here" / "big.bin") == md5_of(src)
    piped = subprocess.run(
        [sys.executable, "-m", "ossdrop", "get", "videos/big.bin", "-", "--data-dir", str(cli.data_dir)]
        + ["--store-port", cli.port],
        env=cli.env,
        cwd=cli.cwd,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert hashlib.md5(piped.stdout).hexdigest() == md5_of(src)


def test_ls_and_rm(cli: Cli) -> None:
    for name, size in (("a.txt", 5), ("docs/b.txt", 300), ("docs/c/d.bin", 70000)):
        cli.ok("put", str(write_random(cli.cwd / "x", size)), name)
    rows = [line.split() for line in cli.ok("ls").splitlines()]
    assert [(row[-1], int(row[-2])) for row in rows] == [("a.txt", 5), ("docs/b.txt", 300), ("docs/c/d.bin", 70000)]
    assert all(len(row) == 4 for row in rows)  # date, time, size, key
    assert [line.split()[-1] for line in cli.ok("ls", "docs/").splitlines()] == ["docs/b.txt", "docs/c/d.bin"]
    assert cli.ok("ls", "nothing/") == ""

    assert cli.ok("rm", "a.txt", "docs/b.txt") == (
        f"removed oss://{cli.bucket}/a.txt\nremoved oss://{cli.bucket}/docs/b.txt\n"
    )
    assert [line.split()[-1] for line in cli.ok("ls").splitlines()] == ["docs/c/d.bin"]
    assert failure(cli.run("rm", "a.txt")) == "error: NoSuchKey: The specified key does not exist."
    assert cli.ok("rm", "-f", "a.txt") == f"removed oss://{cli.bucket}/a.txt\n"
    assert cli.run("rm", "/abs").returncode == 2


def test_failed_transfers_exit_1_with_one_line(cli: Cli) -> None:
    missing = cli.run("get", "no/such.key", str(cli.cwd / "out.bin"))
    assert failure(missing) == "error: NoSuchKey: The specified key does not exist."
    assert missing.stdout == ""
    assert not (cli.cwd / "out.bin").exists() and not (cli.cwd / "out.bin.temp").exists()

    src = write_random(cli.cwd / "f.bin", 1000)
    no_bucket = cli.run("put", str(src), "--bucket", cli.bucket + "-none")
    assert failure(no_bucket) == "error: NoSuchBucket: The specified bucket does not exist."
    big = write_random(cli.cwd / "g.bin", 300 * 1024)
    multipart = cli.run("put", str(big), "--bucket", cli.bucket + "-none", "--part-size", "100KiB")
    assert failure(multipart) == "error: NoSuchBucket: The specified bucket does not exist."

    down = run_cli("ls", "--store-port", "1", "--data-dir", str(cli.data_dir), env=cli.env, cwd=cli.cwd)
    assert failure(down) == "error: cannot reach the store at http://127.0.0.1:1: Connection refused"
    bad_secret = {**cli.env, "OSSDROP_ACCESS_KEY_SECRET": "wrong"}
    denied = run_cli("ls", "--data-dir", str(cli.data_dir), "--store-port", cli.port, env=bad_secret, cwd=cli.cwd)
    assert failure(denied).startswith("error: SignatureDoesNotMatch: ")

    usage = cli.run("put", str(cli.cwd / "absent.bin"))
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert cli.run("put", str(src), "--part-size", "10KiB").returncode == 2


def test_interrupted_upload_resumes(cli: Cli) -> None:
    src = write_random(cli.cwd / "resume.bin", 24 * 1024 * 1024)
    args = ["put", str(src), "--part-size", "128KiB", "--parallel", "1"]
    cmd = [sys.executable, "-m", "ossdrop", *args, "--data-dir", str(cli.data_dir), "--store-port", cli.port]
    proc = subprocess.Popen(cmd, env=cli.env, cwd=cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    checkpoints = cli.data_dir / "checkpoints"
    upload_id = wait_for_parts(cli, checkpoints, proc, parts=4)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ucp = list(checkpoints.glob("*.ucp"))
    assert len(ucp) == 1 and upload_id in ucp[0].read_text()

    out = cli.ok(*args)
    assert out.startswith(f"uploaded {src} -> oss://{cli.bucket}/resume.bin (24.0 MiB, resumed at ")
    resumed_at = out.split("resumed at ")[1]
    assert not resumed_at.startswith("0 ")
    assert not list(checkpoints.glob("*.ucp"))
    copy = cli.cwd / "copy.bin"
    cli.ok("get", "resume.bin", str(copy))
    assert md5_of(copy) == md5_of(src)


def wait_for_parts(cli: Cli, checkpoints: Path, proc: subprocess.Popen[bytes], parts: int) -> str:
    """Wait until the running upload wrote its checkpoint and the store holds ``parts`` parts; its upload id."""
    client = cli.sdk()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the upload ended before it could be interrupted"
        for cp in checkpoints.glob("*.ucp") if checkpoints.is_dir() else []:
            upload_id = str(json.loads(cp.read_text())["Data"]["UploadInfo"]["UploadId"])
            request = oss.ListPartsRequest(bucket=cli.bucket, key="resume.bin", upload_id=upload_id)
            if len(client.list_parts(request).parts or []) >= parts:
                return upload_id
        time.sleep(0.01)
    raise AssertionError("the upload never got going")


def test_store_of_the_data_dir_and_external_endpoint(store: StoreProcess, bucket_name: str, tmp_path: Path) -> None:
    port = store.endpoint.rsplit(":", 1)[1]
    data_dir = tmp_path / "data"
    missing = run_cli("ls", "--data-dir", str(data_dir), "--store-port", port, env=clean_env(), cwd=tmp_path)
    assert missing.returncode == 2 and "no embedded store in" in missing.stderr
    assert not data_dir.exists()  # nothing made on the way

    (data_dir / "store").mkdir(parents=True)
    keys = {"access_key_id": store.access_key_id, "access_key_secret": store.access_key_secret}
    (data_dir / "store" / "credentials.json").write_text(json.dumps(keys))
    env = clean_env(OSSDROP_BUCKET=bucket_name)
    created = run_cli(
        "bucket", "create", bucket_name, "--data-dir", str(data_dir), "--store-port", port, env=env, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr

    external = clean_env(
        OSSDROP_OSS_ENDPOINT=store.endpoint,
        OSSDROP_ACCESS_KEY_ID=store.access_key_id,
        OSSDROP_ACCESS_KEY_SECRET=store.access_key_secret,
        OSSDROP_BUCKET=bucket_name,
    )
    src = write_random(tmp_path / "e.bin", 100)
    put = run_cli("put", str(src), env=external, cwd=tmp_path)
    assert put.returncode == 0, put.stderr
    listed = run_cli("ls", "--data-dir", str(data_dir), "--store-port", port, env=env, cwd=tmp_path)
    assert listed.stdout.split()[-2:] == ["100", "e.bin"]
