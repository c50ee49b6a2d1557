#!/usr/bin/env python3
"""Issue 2: PutObject / GetObject throughput of the embedded store on loopback, next to this machine's limits.

One run prints, for an object of ``--size-mib`` (default 1 GiB):

* the limits: writing the bytes to a file in 1 MiB chunks then fsync; one MD5 + CRC-64 pass over them with the
  libraries the store uses (``hashlib.md5``, ``ossdrop.core.checksums.crc64``); nginx (Debian's) serving the file;
* the load client (curl) checked against nginx first: GET of the file, and PUT into a location that discards the body;
* ossdrop's store: PUT and GET (median of ``--runs``), the store's peak RSS sampled every 50 ms from start to end,
  and its CPU use during each transfer;
* the peer: moto's S3 server doing the same PUT and GET with the same client;
* the issue's targets, met or not; the same figures go to ``bench/out/store_throughput.json``.

Everything it needs is installed on first use: nginx and curl with apt-get, moto into ``bench/.venvs/moto``,
py-spy (only with ``--py-spy``) into ``bench/.venvs/py-spy``. All traffic stays on 127.0.0.1; every server it starts
is ended when it stops, also on error.

Usage: .venv/bin/python bench/store_throughput.py [--size-mib 1024] [--runs 3] [--skip-moto] [--skip-nginx]
                                                  [--py-spy] [--wait-idle SECONDS]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, TypeVar

from _common import (
    MB,
    MIB,
    OUT_DIR,
    REPO_DIR,
    Child,
    Children,
    ForeignLoad,
    RssSampler,
    Transfer,
    children,
    cpu_seconds,
    curl_delete,
    curl_get,
    curl_put,
    curl_version,
    ensure_apt,
    ensure_venv,
    format_table,
    free_port,
    hwm_bytes,
    log,
    median,
    rss_bytes,
    wait_until_idle,
)

OSSDROP = REPO_DIR / ".venv" / "bin" / "ossdrop"
WORK_DIR = OUT_DIR / "store_throughput"
JSON_PATH = OUT_DIR / "store_throughput.json"
MOTO_REQUIREMENT = "moto[server]>=5,<6"
PY_SPY_REQUIREMENT = "py-spy>=0.4"
BUCKET = "bench-throughput"
ACCESS_KEY_ID = "LTAIbenchthroughput"
ACCESS_KEY_SECRET = "bench-throughput-secret"  # noqa: S105 - a throwaway key for a store that lives for one run

# The targets.
PUT_OF_WRITE_LIMIT = 0.60
GET_OF_NGINX = 0.30
RSS_LIMIT = 150 * MB
BUSY_CORES = 0.3  # a run during which other work used more than this many cores is redone
EXTRA_ATTEMPTS = 2  # at most this many redone runs per measurement (moto keeps every PUT body in memory)


# -- the bytes ---------------------------------------------------------------------------------------------------
def make_source(path: Path, size: int) -> None:
    """Incompressible, reproducible bytes (seeded PRNG), written once per run."""
    rng = random.Random(20260402)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(MIB, left)
            fh.write(rng.randbytes(n))
            left -= n


def read_chunks(path: Path) -> list[bytes]:
    """The file as 1 MiB chunks in memory, so the limits below time only writing and hashing."""
    chunks: list[bytes] = []
    with open(path, "rb") as fh:
        while chunk := fh.read(MIB):
            chunks.append(chunk)
    return chunks


# -- the machine's limits ----------------------------------------------------------------------------------------
def fsync_write(chunks: list[bytes], target: Path) -> tuple[float, float]:
    """Seconds to write the chunks to a new file, and then to fsync it (what the store must do before it answers)."""
    os.sync()  # start with nothing else dirty
    start = time.perf_counter()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        written = time.perf_counter()
        os.fsync(fd)
    finally:
        os.close(fd)
    done = time.perf_counter()
    target.unlink()
    return written - start, done - written


def hash_pass(chunks: list[bytes]) -> tuple[float, str, int]:
    """Seconds for one MD5 + CRC-64/XZ pass with the store's own digest functions; also the two digests."""
    from ossdrop.core.checksums import crc64

    start = time.perf_counter()
    md5 = hashlib.md5()  # noqa: S324 - the protocol's content digest
    crc = 0
    for chunk in chunks:
        md5.update(chunk)
        crc = crc64(chunk, crc)
    return time.perf_counter() - start, md5.hexdigest(), crc


@dataclass
class Limits:
    """One run of the two write-side limits."""

    fsync_mb_s: float
    write_s: float
    fsync_s: float
    hash_mb_s: float
    other_load: float
    md5: str
    crc64: int


def measure_limits(chunks: list[bytes], k: int) -> Limits:
    size = sum(len(c) for c in chunks)
    load = ForeignLoad()
    write_s, sync_s = fsync_write(chunks, WORK_DIR / "fsync-test.bin")
    seconds, md5_hex, crc = hash_pass(chunks)
    lim = Limits(
        fsync_mb_s=round(size / (write_s + sync_s) / MB, 1),
        write_s=round(write_s, 3),
        fsync_s=round(sync_s, 3),
        hash_mb_s=round(size / seconds / MB, 1),
        other_load=round(load.stop(), 2),
        md5=md5_hex,
        crc64=crc,
    )
    log(
        f"limits #{k + 1}: write + fsync {lim.fsync_mb_s:.0f} MB/s ({write_s:.2f}s write + {sync_s:.2f}s fsync), "
        f"MD5 + CRC-64 {lim.hash_mb_s:.0f} MB/s; others {lim.other_load:.2f} cores"
    )
    return lim


# -- signing (OSS V1, oss-protocol.md §3.1) -----------------------------------------------------------------------
def oss_v1_request(port: int, method: str, resource: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One signed request without a body; ``resource`` is the canonical resource, e.g. ``/bucket/``."""
    date = formatdate(usegmt=True)
    oss_headers = "".join(
        f"{k.lower()}:{v.strip()}\n" for k, v in sorted(headers.items()) if k.lower().startswith("x-oss-")
    )
    to_sign = f"{method}\n\n\n{date}\n{oss_headers}{resource}"
    signature = base64.b64encode(hmac.new(ACCESS_KEY_SECRET.encode(), to_sign.encode(), hashlib.sha1).digest())
    all_headers = {**headers, "Date": date, "Authorization": f"OSS {ACCESS_KEY_ID}:{signature.decode()}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, resource, body=b"" if method in ("PUT", "POST") else None, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def plain_request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=b"" if method in ("PUT", "POST") else None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- one server under load ---------------------------------------------------------------------------------------
@dataclass
class Op:
    """The runs of one operation against one server."""

    mb_per_s: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # server CPU seconds / wall seconds, per run
    client_cpu: list[float] = field(default_factory=list)  # curl CPU seconds / wall seconds, per run
    other_load: list[float] = field(default_factory=list)  # cores used by everything else on the machine, per run
    disturbed: list[tuple[float, float]] = field(default_factory=list)  # (MB/s, other load) of runs not counted

    def add_all(self, kept: list[Run], dropped: list[Run], size: int) -> None:
        for run in kept:
            self.add(run, size)
        self.disturbed += [(round(r.transfer.mb_per_s(size), 1), round(r.other_load, 2)) for r in dropped]

    def add(self, run: Run, size: int) -> None:
        wall = max(run.transfer.seconds, 1e-6)
        self.mb_per_s.append(round(run.transfer.mb_per_s(size), 1))
        self.seconds.append(round(run.transfer.seconds, 3))
        self.client_cpu.append(round(run.transfer.client_cpu / wall, 2))
        self.server_cpu.append(round(run.server_cpu / wall, 2))
        self.other_load.append(round(run.other_load, 2))

    @property
    def median(self) -> float:
        return median(self.mb_per_s)


@dataclass
class ServerResult:
    put: Op = field(default_factory=Op)
    get: Op = field(default_factory=Op)
    rss_idle: int = 0
    rss_peak: int = 0
    rss_hwm: int = 0
    rss_samples: int = 0
    version: str = ""
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    transfer: Transfer
    server_cpu: float  # CPU seconds the server spent during the transfer
    other_load: float  # cores busy with other work meanwhile


def timed(child: Child, action: Callable[[], Transfer]) -> Run:
    """Run one transfer, with the server's CPU seconds and the machine's other load during it."""
    before = cpu_seconds(child.pid)
    load = ForeignLoad([child.pid])
    transfer = action()
    other = load.stop()
    return Run(transfer, cpu_seconds(child.pid) - before, other)


T = TypeVar("T")


def undisturbed(
    runs: int, attempt: Callable[[int], T], load_of: Callable[[T], float], what: str
) -> tuple[list[T], list[T]]:
    """``runs`` results of ``attempt(k)`` taken while other work stayed under ``BUSY_CORES``; (kept, dropped).

    A disturbed attempt is repeated, at most ``EXTRA_ATTEMPTS`` times in all; if that is not enough, the least
    disturbed attempts are kept (and the report marks the figure).
    """
    done: list[T] = []
    for k in range(runs + EXTRA_ATTEMPTS):
        result = attempt(k)
        done.append(result)
        if load_of(result) > BUSY_CORES and k < runs + EXTRA_ATTEMPTS - 1:
            log(f"{what}: other work used {load_of(result):.2f} cores meanwhile; this run will be repeated")
        clean = [r for r in done if load_of(r) <= BUSY_CORES]
        if len(clean) >= runs:
            return clean, [r for r in done if load_of(r) > BUSY_CORES]
    ranked = sorted(done, key=load_of)
    return ranked[:runs], ranked[runs:]


def _run_line(run: Run, size: int) -> str:
    wall = max(run.transfer.seconds, 1e-6)
    return (
        f"{run.transfer.mb_per_s(size):.0f} MB/s in {run.transfer.seconds:.2f}s; CPU (cores) server "
        f"{run.server_cpu / wall:.2f}, curl {run.transfer.client_cpu / wall:.2f}, others {run.other_load:.2f}"
    )


def check(transfer: Transfer, what: str, *, status: int = 200, downloaded: int | None = None) -> None:
    if transfer.status != status:
        raise RuntimeError(f"{what}: HTTP {transfer.status}, expected {status}")
    if downloaded is not None and transfer.downloaded != downloaded:
        raise RuntimeError(f"{what}: received {transfer.downloaded} bytes, expected {downloaded}")


def run_transfers(
    name: str,
    child: Child,
    base_url: str,
    source: Path,
    size: int,
    runs: int,
    timeout: float,
    md5_hex: str,
    result: ServerResult,
) -> None:
    """Warm up with a small object, then ``runs`` PUTs (each to its own key) and ``runs`` GETs."""
    small = source.with_name("warmup.bin")
    small.write_bytes(b"w" * 4096)
    check(curl_put(f"{base_url}/warmup", small, timeout), f"{name} warm-up PUT")
    check(curl_get(f"{base_url}/warmup", timeout), f"{name} warm-up GET", downloaded=4096)

    def put(k: int) -> Run:
        key = f"{base_url}/obj-{k % runs}"
        if k >= runs:  # a repeat: start from the same state as the first time (no old version to replace)
            check(curl_delete(key, timeout), f"{name} DELETE before PUT #{k + 1}", status=204)
        run = timed(child, lambda: curl_put(key, source, timeout))
        transfer = run.transfer
        check(transfer, f"{name} PUT #{k + 1}")
        if transfer.uploaded != size:
            raise RuntimeError(f"{name} PUT #{k + 1}: curl sent {transfer.uploaded} bytes of {size}")
        if transfer.etag.strip('"').lower() != md5_hex:
            raise RuntimeError(f"{name} PUT #{k + 1}: ETag {transfer.etag} is not the MD5 {md5_hex}")
        log(f"{name} PUT #{k + 1}: {_run_line(run, size)}")
        return run

    def get(k: int) -> Run:
        run = timed(child, lambda: curl_get(f"{base_url}/obj-{k % runs}", timeout))
        check(run.transfer, f"{name} GET #{k + 1}", downloaded=size)
        log(f"{name} GET #{k + 1}: {_run_line(run, size)}")
        return run

    result.put.add_all(*undisturbed(runs, put, _load, f"{name} PUT"), size)
    result.get.add_all(*undisturbed(runs, get, _load, f"{name} GET"), size)


def _load(run: Run) -> float:
    return run.other_load


# -- nginx -------------------------------------------------------------------------------------------------------
NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_max_body_size 0;
    client_body_temp_path {work}/nginx-body;
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{ alias {data}/; }}
        # A PUT sink for checking the load client: nginx reads the body and drops it.
        location /sink/ {{ return 201; }}
    }}
}}
"""


@dataclass
class NginxResult:
    get: Op = field(default_factory=Op)
    client_put: Op = field(default_factory=Op)
    version: str = ""


def bench_nginx(group: Children, nginx: str, source: Path, size: int, runs: int, timeout: float) -> NginxResult:
    work = WORK_DIR / "nginx"
    (work / "nginx-body").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, data=source.parent))
    result = NginxResult(version=_nginx_version(nginx))
    child = group.start("nginx", [nginx, "-p", str(work), "-c", str(conf)])
    try:
        child.wait_for_port(port, 30)
        url = f"http://127.0.0.1:{port}"
        check(curl_get(f"{url}/files/{source.name}", timeout), "nginx warm-up GET", downloaded=size)

        def get(k: int) -> Run:
            run = timed(child, lambda: curl_get(f"{url}/files/{source.name}", timeout))
            check(run.transfer, f"nginx GET #{k + 1}", downloaded=size)
            log(f"nginx GET #{k + 1}: {_run_line(run, size)}")
            return run

        def put(k: int) -> Run:
            run = timed(child, lambda: curl_put(f"{url}/sink/obj", source, timeout))
            check(run.transfer, f"curl PUT to nginx sink #{k + 1}", status=201)
            if run.transfer.uploaded != size:
                raise RuntimeError(f"curl PUT to nginx sink: sent {run.transfer.uploaded} of {size} bytes")
            log(f"curl PUT to nginx sink #{k + 1}: {_run_line(run, size)}")
            return run

        result.get.add_all(*undisturbed(runs, get, _load, "nginx GET"), size)
        result.client_put.add_all(*undisturbed(runs, put, _load, "curl PUT to nginx"), size)
    finally:
        group.stop(child)
    return result


def _nginx_version(nginx: str) -> str:
    done = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().split(":", 1)[-1].strip()


# -- ossdrop's store ---------------------------------------------------------------------------------------------
def bench_store(
    group: Children,
    source: Path,
    size: int,
    runs: int,
    timeout: float,
    md5_hex: str,
    py_spy: Path | None,
) -> ServerResult:
    root = WORK_DIR / "store-root"
    shutil.rmtree(root, ignore_errors=True)
    cmd = [str(OSSDROP), "store", "--root", str(root), "--port", "0"]
    cmd += ["--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET]
    child = group.start("ossdrop-store", cmd, env={"PYTHONUNBUFFERED": "1"})
    result = ServerResult(version=_git_head())
    try:
        with RssSampler(child.pid) as sampler:
            line = child.wait_for_text("listening on http://", 60)
            port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
            time.sleep(0.2)
            result.rss_idle = rss_bytes(child.pid)
            status, body = oss_v1_request(port, "PUT", f"/{BUCKET}/", {"x-oss-acl": "public-read-write"})
            if status != 200:
                raise RuntimeError(f"store: signed PutBucket answered {status}: {body[:500]!r}")
            url = f"http://127.0.0.1:{port}/{BUCKET}"
            run_transfers("store", child, url, source, size, runs, timeout, md5_hex, result)
            if py_spy is not None:
                result.profile = profile_store(group, py_spy, child, url, source, timeout)
        result.rss_peak, result.rss_samples = sampler.peak, sampler.samples
        result.rss_hwm = hwm_bytes(child.pid)
    finally:
        group.stop(child)
        shutil.rmtree(root, ignore_errors=True)
    return result


def _git_head() -> str:
    done = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip()


def profile_store(
    group: Children, py_spy: Path, store: Child, url: str, source: Path, timeout: float
) -> dict[str, Any]:
    """An extra, untimed PUT and GET under ``py-spy record``; the collapsed stacks go to ``bench/out/``."""
    out: dict[str, Any] = {}
    for op in ("put", "get"):
        raw = WORK_DIR / f"py-spy-{op}.txt"
        cmd = [str(py_spy), "record", "--pid", str(store.pid), "--format", "raw", "--output", str(raw)]
        cmd += ["--rate", "200", "--nonblocking", "--threads", "--idle"]
        spy = group.start(f"py-spy-{op}", cmd)
        time.sleep(0.5)  # let it attach
        if op == "put":
            curl_put(f"{url}/profiled", source, timeout)
        else:
            curl_get(f"{url}/profiled", timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(spy.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            spy.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log("py-spy did not stop on SIGINT")
        group.stop(spy)
        keep = OUT_DIR / f"store_throughput.py-spy-{op}.txt"
        if raw.exists():
            shutil.copyfile(raw, keep)
            out[op] = summarise_collapsed(raw.read_text())
        else:
            out[op] = {"error": spy.output()[-1000:]}
    return out


_WAITING = ("selectors.py", "concurrent/futures/thread.py", "threading.py", "queue.py")


def summarise_collapsed(text: str, top: int = 10) -> dict[str, Any]:
    """Per thread: how much of the wall time it waited, and its busiest frames (own time).

    Input is py-spy's collapsed stacks (``--format raw``, sampled with ``--idle``, so every thread has a sample at
    every tick). The loop's executor threads (``asyncio_N``) form one group, since any of them may run a batch; a
    frame's share is then in threads' worth of wall time (0.50 = half a thread busy there on average). A leaf frame in
    the selector, the thread pool's queue or ``threading`` counts as waiting; note that time spent waiting for the
    GIL shows on the line that wants it.
    """
    groups: dict[str, Counter[str]] = {}
    members: dict[str, set[str]] = {}
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread (") else "?"
        group = "asyncio_* (executor)" if thread.startswith("asyncio_") else thread
        members.setdefault(group, set()).add(frames[0])
        groups.setdefault(group, Counter())[frames[-1]] += int(count_text)
    result: dict[str, Any] = {}
    for group, leaves in groups.items():
        total = sum(leaves.values())
        ticks = total / len(members[group])  # samples of one thread: the wall time
        waiting = sum(n for leaf, n in leaves.items() if any(w in leaf for w in _WAITING))
        busy = [(leaf, round(n / ticks, 3)) for leaf, n in leaves.most_common() if not any(w in leaf for w in _WAITING)]
        result[group] = {
            "threads": len(members[group]),
            "ticks": round(ticks),
            "waiting": round(waiting / total, 3),
            "busy_threads": round((total - waiting) / ticks, 2),
            "busy_top": busy[:top],
        }
    return result


# -- moto --------------------------------------------------------------------------------------------------------
def bench_moto(
    group: Children, bindir: Path, source: Path, size: int, runs: int, timeout: float, md5_hex: str
) -> ServerResult:
    port = free_port()
    tmp = WORK_DIR / "moto-tmp"  # moto spools large objects to temp files: keep them on the same disk, then remove
    tmp.mkdir(parents=True, exist_ok=True)
    env = {"TMPDIR": str(tmp)}
    child = group.start("moto", [str(bindir / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env=env)
    version = subprocess.run(
        [str(bindir / "python"), "-c", "import moto; print(moto.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    result = ServerResult(version=version)
    try:
        with RssSampler(child.pid) as sampler:
            child.wait_for_port(port, 60)
            result.rss_idle = rss_bytes(child.pid)
            # Like the store's bucket: public-read-write, so the client's unsigned PUT and GET are allowed.
            status, body = plain_request(port, "PUT", f"/{BUCKET}", {"x-amz-acl": "public-read-write"})
            if status != 200:
                raise RuntimeError(f"moto: CreateBucket answered {status}: {body[:500]!r}")
            url = f"http://127.0.0.1:{port}/{BUCKET}"
            run_transfers("moto", child, url, source, size, runs, timeout, md5_hex, result)
        result.rss_peak, result.rss_samples = sampler.peak, sampler.samples
        result.rss_hwm = hwm_bytes(child.pid)
    finally:
        group.stop(child)
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# -- report ------------------------------------------------------------------------------------------------------
def mbps(value: float | None, loads: list[float] | None = None) -> str:
    """A figure; ``*`` when the runs behind it were taken while other work kept the machine busy."""
    if value is None:
        return "-"
    return f"{value:,.0f} MB/s{'*' if loads and median(loads) > BUSY_CORES else ''}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT MET")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _target(text: str, value: float | None, limit: float, *, above: bool = True) -> dict[str, Any]:
    met = None if value is None else (value >= limit if above else value < limit)
    return {"target": text, "value": None if value is None else round(value, 3), "limit": limit, "met": met}


def build_report(args: argparse.Namespace, figures: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fsync, hashing = figures["fsync_write"], figures["md5_crc64"]
    nginx: NginxResult | None = figures.get("nginx")
    store: ServerResult = figures["store"]
    moto: ServerResult | None = figures.get("moto")
    write_limit = min(fsync, hashing)
    nginx_get = nginx.get.median if nginx else None
    client_put = nginx.client_put.median if nginx else None
    put, get = store.put.median, store.get.median
    moto_put, moto_get = (moto.put.median, moto.get.median) if moto else (None, None)
    rss_peak = max(store.rss_peak, store.rss_hwm)

    targets = {
        "put_vs_write_limit": _target(
            f">= {PUT_OF_WRITE_LIMIT:.0%} of write limit", ratio(put, write_limit), PUT_OF_WRITE_LIMIT
        ),
        "get_vs_nginx": _target(f">= {GET_OF_NGINX:.0%} of nginx", ratio(get, nginx_get), GET_OF_NGINX),
        "put_vs_moto": _target("faster than moto", ratio(put, moto_put), 1.0),
        "get_vs_moto": _target("faster than moto", ratio(get, moto_get), 1.0),
        "rss": _target(f"< {RSS_LIMIT // MB} MB throughout", rss_peak, RSS_LIMIT, above=False),
    }
    for target in targets.values():  # "faster than" is strict
        if target["target"].startswith("faster") and target["value"] is not None:
            target["met"] = target["value"] > 1.0

    # The client is good enough when, against nginx, it moves data at least twice as fast as the level each target
    # asks of the store and as every peer figure: then neither a verdict nor a peer figure can be the client's doing.
    # A store figure close to the client's ceiling is then only a lower bound.
    put_level, get_level = PUT_OF_WRITE_LIMIT * write_limit, GET_OF_NGINX * (nginx_get or 0)
    client_ok = None
    if nginx and client_put and nginx_get:
        client_ok = client_put >= 2 * max(put_level, moto_put or 0) and nginx_get >= 2 * max(get_level, moto_get or 0)

    def r(value: float | None, of: str) -> str:
        return "" if value is None else f"{value:.2f}x {of}"

    def cpu(values: list[float]) -> str:
        return f"{median(values):.2f}" if values else ""

    def v(target: dict[str, Any]) -> str:
        return f"{verdict(target['met'])} ({target['target']})"

    t = targets
    ng_get_cpu = (cpu(nginx.get.server_cpu), cpu(nginx.get.client_cpu)) if nginx else ("", "")
    ng_put_cpu = (cpu(nginx.client_put.server_cpu), cpu(nginx.client_put.client_cpu)) if nginx else ("", "")
    client_verdict = {None: "n/a", True: "ok: not the bottleneck", False: "NOT OK: may be the bottleneck"}[client_ok]
    rows: list[list[str]] = [
        [f"limits on this machine ({args.size_mib} MiB object, median of {args.runs} runs)"],
        ["  write in 1 MiB chunks + fsync", mbps(fsync, figures["limit_load"]), "", "", "", ""],
        ["  MD5 + CRC-64 pass (hashlib + anycrc)", mbps(hashing, figures["limit_load"]), "", "", "", ""],
        ["  write limit = slower of the two", mbps(write_limit, figures["limit_load"]), "", "", "", ""],
        *(
            [
                [f"  {nginx.version} GET", mbps(nginx_get, nginx.get.other_load), "", *ng_get_cpu, ""],
                ["load client (curl) checked against nginx"],
                [
                    "  GET from nginx",
                    mbps(nginx_get, nginx.get.other_load),
                    r(ratio(nginx_get, get), "store GET"),
                    *ng_get_cpu,
                    client_verdict,
                ],
                [
                    "  PUT to nginx (body discarded)",
                    mbps(client_put, nginx.client_put.other_load),
                    r(ratio(client_put, put), "store PUT"),
                    *ng_put_cpu,
                    "",
                ],
            ]
            if nginx
            else [["  nginx GET and the load client check: skipped (--skip-nginx)"]]
        ),
        [f"ossdrop store (commit {store.version})"],
        [
            "  PUT",
            mbps(put, store.put.other_load),
            r(ratio(put, write_limit), "write limit"),
            cpu(store.put.server_cpu),
            cpu(store.put.client_cpu),
            v(t["put_vs_write_limit"]),
        ],
        [
            "  GET",
            mbps(get, store.get.other_load),
            r(ratio(get, nginx_get), "nginx GET"),
            cpu(store.get.server_cpu),
            cpu(store.get.client_cpu),
            v(t["get_vs_nginx"]),
        ],
        ["  PUT vs moto", "", r(t["put_vs_moto"]["value"], "moto PUT"), "", "", v(t["put_vs_moto"])],
        ["  GET vs moto", "", r(t["get_vs_moto"]["value"], "moto GET"), "", "", v(t["get_vs_moto"])],
        [
            "  peak RSS (50 ms samples / VmHWM)",
            f"{store.rss_peak / MB:.0f} / {store.rss_hwm / MB:.0f} MB",
            f"idle {store.rss_idle / MB:.0f} MB",
            "",
            "",
            v(t["rss"]),
        ],
    ]
    if moto:
        rows += [
            [f"peer: moto S3 server {moto.version}"],
            ["  PUT", mbps(moto_put, moto.put.other_load), "", cpu(moto.put.server_cpu), cpu(moto.put.client_cpu), ""],
            ["  GET", mbps(moto_get, moto.get.other_load), "", cpu(moto.get.server_cpu), cpu(moto.get.client_cpu), ""],
            [
                "  peak RSS (50 ms samples / VmHWM)",
                f"{moto.rss_peak / MB:.0f} / {moto.rss_hwm / MB:.0f} MB",
                f"idle {moto.rss_idle / MB:.0f} MB",
                "",
                "",
                "",
            ],
        ]
    measured: dict[str, Op] = {"store PUT": store.put, "store GET": store.get}
    if nginx:
        measured |= {"nginx GET": nginx.get, "curl PUT to nginx": nginx.client_put}
    if moto:
        measured |= {"moto PUT": moto.put, "moto GET": moto.get}
    loads = {"limits": median(figures["limit_load"])} | {name: median(op.other_load) for name, op in measured.items()}
    disturbed = sorted(name for name, value in loads.items() if value > BUSY_CORES)
    repeated = len(figures["limits_disturbed"]) + sum(len(op.disturbed) for op in measured.values())
    load = {
        "before": round(figures["idle_load"], 2),
        "median_per_measurement": {name: round(value, 2) for name, value in loads.items()},
        "runs_redone": repeated,
        "disturbed_measurements": disturbed,
    }
    busy = bool(disturbed)
    rows.append(
        ["machine: cores busy with other work during the kept runs (not ours: other processes, kernel threads)"]
    )
    rows.append(
        [
            "  before the run / worst measurement",
            f"{load['before']:.2f} / {max(loads.values()):.2f}",
            f"{repeated} disturbed run(s) redone",
            "",
            "",
            f"BUSY during: {', '.join(disturbed)} (marked *)" if busy else "quiet",
        ]
    )
    table = format_table(rows, ["figure", "value", "ratio", "srv CPU", "cli CPU", "target"])
    notes = (
        "MB = 10^6 bytes; each figure is the median of the runs. srv/cli CPU = CPU seconds of the server / of curl\n"
        "per wall second of the transfer (1.00 = one core busy; the machine has "
        f"{os.cpu_count()}). Targets (issue 2): PUT >= {PUT_OF_WRITE_LIMIT:.0%} of the write limit,\n"
        f"GET >= {GET_OF_NGINX:.0%} of nginx, both faster than moto, store RSS < {RSS_LIMIT // MB} MB throughout. "
        "The client is ok when, against nginx, it\nmoves at least twice what each target asks of the store and "
        "twice every moto figure."
    )
    data = {
        "size_mib": args.size_mib,
        "runs": args.runs,
        "units": "MB/s with MB = 10^6 bytes; cpu = CPU seconds per wall second",
        "limits": {
            "fsync_write_mb_s": round(fsync, 1),
            "md5_crc64_mb_s": round(hashing, 1),
            "runs": figures["limits_runs"],
            "disturbed_runs": figures["limits_disturbed"],
            "write_limit_mb_s": round(write_limit, 1),
            "nginx": asdict(nginx) if nginx else None,
        },
        "client": {
            "tool": curl_version(),
            "put_to_nginx_sink_mb_s": client_put,
            "get_from_nginx_mb_s": nginx_get,
            "put_level_needed_mb_s": round(put_level, 1),
            "get_level_needed_mb_s": round(get_level, 1),
            "not_the_bottleneck": client_ok,
        },
        "store": {**asdict(store), "put_mb_s": put, "get_mb_s": get},
        "moto": {**asdict(moto), "put_mb_s": moto_put, "get_mb_s": moto_get} if moto else None,
        "targets": targets,
        "all_targets_met": all(tg["met"] for tg in targets.values() if tg["met"] is not None),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "filesystem_of_store_root": _fs_of(WORK_DIR),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    data["machine_load_cores"] = {**load, "busy": busy}
    if busy:
        notes += (
            f"\nWARNING: * marks figures taken while other work kept more than {BUSY_CORES} of the "
            f"{os.cpu_count()} cores busy, even after redoing runs: re-run them on a quiet machine (--wait-idle 300)."
        )
    return f"{table}\n\n{notes}", data


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _fs_of(path: Path) -> str:
    best = ("", "?")
    with contextlib.suppress(OSError), open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) >= len(best[0]):
                best = (parts[1], f"{parts[2]} on {parts[1]} ({parts[0]})")
    return best[1]


def profile_lines(store: ServerResult) -> str:
    lines = []
    for op, groups in store.profile.items():
        if not isinstance(groups, dict) or "error" in groups:
            lines.append(f"py-spy during one {op.upper()}: {groups}")
            continue
        lines.append(f"py-spy, store during one extra {op.upper()} (shares in threads' worth of wall time):")
        for group, info in groups.items():
            if not isinstance(info, dict) or info.get("busy_threads", 0.0) < 0.03:
                continue  # an idle thread
            lines.append(
                f"  {group}: {info['threads']} thread(s), busy {info['busy_threads']:.2f} of "
                f"{info['ticks']} ticks, waiting {info['waiting']:.0%}"
            )
            lines += [f"    {share:5.2f}  {frame}" for frame, share in info["busy_top"][:6]]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024, help="object size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; the median is reported")
    parser.add_argument("--skip-moto", action="store_true", help="do not install or run moto")
    parser.add_argument("--skip-nginx", action="store_true", help="do not install or run nginx (no GET baseline)")
    parser.add_argument("--py-spy", action="store_true", help="also profile one extra store PUT and GET with py-spy")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be idle (other work under 0.25 core); default 0",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.size_mib <= 8192 or not 1 <= args.runs <= 20 or not 0 <= args.wait_idle <= 3600:
        parser.error("--size-mib must be 1..8192, --runs 1..20 and --wait-idle 0..3600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.size_mib * MIB
    timeout = max(120.0, size / (5 * MB))  # a transfer slower than 5 MB/s is a failure, not a figure
    if not OSSDROP.exists():
        raise SystemExit(f"{OSSDROP} is missing: run `make install` first")
    ensure_apt("curl", ["curl"])
    nginx = None if args.skip_nginx else ensure_apt("nginx", ["nginx", "nginx-light"])
    moto_bin = None if args.skip_moto else ensure_venv("moto", [MOTO_REQUIREMENT], "import moto.server, flask")
    spy_bin = ensure_venv("py-spy", [PY_SPY_REQUIREMENT], "import shutil, sys; sys.exit(0)") if args.py_spy else None
    py_spy = spy_bin / "py-spy" if spy_bin else None

    idle_load = wait_until_idle(args.wait_idle)
    log(f"machine load before the run: {idle_load:.2f} cores busy with other work")
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    data_dir = WORK_DIR / "data"
    data_dir.mkdir(parents=True)
    figures: dict[str, Any] = {}
    try:
        with children(WORK_DIR / "logs") as group:
            source = data_dir / f"object-{args.size_mib}MiB.bin"
            log(f"writing {args.size_mib} MiB of test data to {source.relative_to(REPO_DIR)}")
            make_source(source, size)
            chunks = read_chunks(source)
            kept, dropped = undisturbed(
                args.runs, lambda k: measure_limits(chunks, k), lambda lim: lim.other_load, "limits"
            )
            md5_hex, crc = kept[0].md5, kept[0].crc64
            chunks.clear()  # free the GiB before the servers run
            figures.update(
                fsync_write=median([lim.fsync_mb_s for lim in kept]),
                md5_crc64=median([lim.hash_mb_s for lim in kept]),
                limits_runs=[asdict(lim) for lim in kept],
                limits_disturbed=[asdict(lim) for lim in dropped],
                limit_load=[lim.other_load for lim in kept],
                md5=md5_hex,
                crc64=crc,
                idle_load=idle_load,
            )
            if nginx:
                figures["nginx"] = bench_nginx(group, nginx, source, size, args.runs, timeout)
            figures["store"] = bench_store(group, source, size, args.runs, timeout, md5_hex, py_spy)
            if moto_bin:
                figures["moto"] = bench_moto(group, moto_bin, source, size, args.runs, timeout, md5_hex)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        for leftover in ("fsync-test.bin", "moto-tmp", "store-root"):
            path = WORK_DIR / leftover
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    table, data = build_report(args, figures)
    print(table)
    summary = profile_lines(figures["store"])
    if summary:
        print()
        print(summary)
    JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(data, indent=2) + "\n")
    log(f"wrote {JSON_PATH.relative_to(REPO_DIR)}; server logs in {(WORK_DIR / 'logs').relative_to(REPO_DIR)}")
    return 0


def _in_project_venv() -> None:
    """Re-run under the project's venv when started with another Python (the store's digest code is imported)."""
    venv = REPO_DIR / ".venv"
    if (venv / "bin" / "python").exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(venv / "bin" / "python"), [str(venv / "bin" / "python"), __file__, *sys.argv[1:]])


if __name__ == "__main__":
    _in_project_venv()
    sys.exit(main())
