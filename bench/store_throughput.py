#!/usr/bin/env python3
"""Issue 2: PutObject / GetObject throughput of the embedded store on loopback, next to this machine's limits.

One run prints, for an object of ``--size-mib`` (default 1 GiB):

* the limits: writing the bytes to a file in 1 MiB chunks then fsync; one MD5 + CRC-64 pass over them with the
  libraries the store uses (``hashlib.md5``, ``ossdrop.protocol.checksums.crc64``); nginx (Debian's) serving the file;
* the load client (curl) checked against nginx first: GET of the file, and PUT into a location that discards the body;
* ossdrop's store: PUT and GET (median of ``--runs``), the store's peak RSS sampled every 50 ms from start to end,
  and its CPU use during each transfer;
* the peer: moto's S3 server doing the same PUT and GET with the same client;
* the issue's targets, met or not; the same figures go to ``bench/out/store_throughput.json``.

Everything it needs is installed on first use: nginx and curl with apt-get, moto into ``bench/.venvs/moto``,
py-spy (only with ``--py-spy``) into ``bench/.venvs/py-spy``. All traffic stays on 127.0.0.1; every server it starts
is ended when it stops, also on error.

Usage: .venv/bin/python bench/store_throughput.py [--size-mib 1024] [--runs 3] [--skip-moto] [--skip-nginx] [--py-spy]
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
from typing import Any

from _common import (
    MB,
    MIB,
    OUT_DIR,
    REPO_DIR,
    Child,
    Children,
    RssSampler,
    Transfer,
    children,
    cpu_seconds,
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
def fsync_write(chunks: list[bytes], target: Path) -> float:
    """Seconds to write the chunks to a new file and fsync it (what the store must do before it answers)."""
    os.sync()  # start with nothing else dirty
    start = time.perf_counter()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def hash_pass(chunks: list[bytes]) -> tuple[float, str, int]:
    """Seconds for one MD5 + CRC-64/XZ pass with the store's own digest functions; also the two digests."""
    from ossdrop.protocol.checksums import crc64

    start = time.perf_counter()
    md5 = hashlib.md5()  # noqa: S324 - the protocol's content digest
    crc = 0
    for chunk in chunks:
        md5.update(chunk)
        crc = crc64(chunk, crc)
    return time.perf_counter() - start, md5.hexdigest(), crc


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

    def add(self, transfer: Transfer, size: int, cpu: float | None = None) -> None:
        self.mb_per_s.append(round(transfer.mb_per_s(size), 1))
        self.seconds.append(round(transfer.seconds, 3))
        if cpu is not None:
            self.server_cpu.append(round(cpu / transfer.seconds, 2) if transfer.seconds > 0 else 0.0)

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


def timed(child: Child | None, action: Callable[[], Transfer]) -> tuple[Transfer, float | None]:
    """Run one transfer; with a server child, also the CPU seconds the server spent during it."""
    before = cpu_seconds(child.pid) if child else 0.0
    transfer = action()
    return transfer, (cpu_seconds(child.pid) - before if child else None)


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
    for i in range(runs):
        transfer, cpu = timed(child, lambda i=i: curl_put(f"{base_url}/obj-{i}", source, timeout))
        check(transfer, f"{name} PUT #{i + 1}")
        if transfer.uploaded != size:
            raise RuntimeError(f"{name} PUT #{i + 1}: curl sent {transfer.uploaded} bytes of {size}")
        if transfer.etag.strip('"').lower() != md5_hex:
            raise RuntimeError(f"{name} PUT #{i + 1}: ETag {transfer.etag} is not the MD5 {md5_hex}")
        result.put.add(transfer, size, cpu)
        log(f"{name} PUT #{i + 1}: {transfer.mb_per_s(size):.0f} MB/s, server CPU {cpu or 0:.2f}s")
    for i in range(runs):
        transfer, cpu = timed(child, lambda i=i: curl_get(f"{base_url}/obj-{i}", timeout))
        check(transfer, f"{name} GET #{i + 1}", downloaded=size)
        result.get.add(transfer, size, cpu)
        log(f"{name} GET #{i + 1}: {transfer.mb_per_s(size):.0f} MB/s, server CPU {cpu or 0:.2f}s")


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
        for i in range(runs):
            transfer, cpu = timed(child, lambda: curl_get(f"{url}/files/{source.name}", timeout))
            check(transfer, f"nginx GET #{i + 1}", downloaded=size)
            result.get.add(transfer, size, cpu)
            log(f"nginx GET #{i + 1}: {transfer.mb_per_s(size):.0f} MB/s")
        for i in range(runs):
            transfer, cpu = timed(child, lambda: curl_put(f"{url}/sink/obj", source, timeout))
            check(transfer, f"curl PUT to nginx sink #{i + 1}", status=201)
            if transfer.uploaded != size:
                raise RuntimeError(f"curl PUT to nginx sink: sent {transfer.uploaded} of {size} bytes")
            result.client_put.add(transfer, size, cpu)
            log(f"curl PUT to nginx sink #{i + 1}: {transfer.mb_per_s(size):.0f} MB/s")
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
    """An extra, untimed PUT and GET under ``py-spy record``; returns the top frames by own and total time."""
    out: dict[str, Any] = {}
    for op in ("put", "get"):
        raw = WORK_DIR / f"py-spy-{op}.txt"
        cmd = [str(py_spy), "record", "--pid", str(store.pid), "--format", "raw", "--output", str(raw)]
        cmd += ["--rate", "200", "--nonblocking", "--threads", "--idle"]
        spy = group.start(f"py-spy-{op}", cmd)
        time.sleep(1.0)  # let it attach
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
            out[op]["collapsed_stacks"] = str(keep.relative_to(REPO_DIR))
        else:
            out[op] = {"error": spy.output()[-1000:]}
    return out


def summarise_collapsed(text: str, top: int = 12) -> dict[str, Any]:
    """Own-time and total-time shares of the busiest frames in py-spy's collapsed-stack output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(n / samples, 3)) for frame, n in counter.most_common(top)] if samples else []

    return {"samples": samples, "own": shares(own), "total": shares(total)}


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
def mbps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB/s"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT MET")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


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

    put_ratio, get_ratio = ratio(put, write_limit), ratio(get, nginx_get)
    targets = {
        "put_vs_write_limit": {
            "target": f">= {PUT_OF_WRITE_LIMIT:.0%} of min(fsync write, MD5+CRC-64)",
            "ratio": put_ratio,
            "met": None if put_ratio is None else put_ratio >= PUT_OF_WRITE_LIMIT,
        },
        "get_vs_nginx": {
            "target": f">= {GET_OF_NGINX:.0%} of nginx GET",
            "ratio": get_ratio,
            "met": None if get_ratio is None else get_ratio >= GET_OF_NGINX,
        },
        "put_vs_moto": {
            "target": "> moto PUT",
            "ratio": ratio(put, moto_put),
            "met": None if not moto else put > moto_put,
        },
        "get_vs_moto": {
            "target": "> moto GET",
            "ratio": ratio(get, moto_get),
            "met": None if not moto else get > moto_get,
        },
        "rss": {
            "target": f"< {RSS_LIMIT // MB} MB throughout",
            "peak_bytes": max(store.rss_peak, store.rss_hwm),
            "met": max(store.rss_peak, store.rss_hwm) < RSS_LIMIT,
        },
    }

    def r(value: float | None, of: str) -> str:
        return "" if value is None else f"{value:.2f}x {of}"

    def cpu(op: Op) -> str:
        return f"{median(op.server_cpu):.2f}" if op.server_cpu else ""

    t = targets
    rows: list[list[str]] = [
        [f"limits on this machine ({args.size_mib} MiB, median of {args.runs})"],
        ["  write 1 MiB chunks + fsync", mbps(fsync), "", "", ""],
        ["  MD5 + CRC-64 pass (hashlib, anycrc)", mbps(hashing), "", "", ""],
        ["  -> write-side limit (slower of the two)", mbps(write_limit), "", "", ""],
        ["  nginx GET (sendfile)", mbps(nginx_get), "", cpu(nginx.get) if nginx else "", ""],
        ["load client: curl against nginx"],
        ["  curl GET from nginx", mbps(nginx_get), r(ratio(nginx_get, get), "store GET"), "", "client not the limit"],
        ["  curl PUT to nginx (body discarded)", mbps(client_put), r(ratio(client_put, put), "store PUT"), "", ""],
        [f"ossdrop store ({store.version})"],
        ["  PUT", mbps(put), r(put_ratio, "write limit"), cpu(store.put), _t(t["put_vs_write_limit"])],
        ["  GET", mbps(get), r(get_ratio, "nginx"), cpu(store.get), _t(t["get_vs_nginx"])],
        ["  PUT vs moto", "", r(t["put_vs_moto"]["ratio"], "moto"), "", _t(t["put_vs_moto"])],
        ["  GET vs moto", "", r(t["get_vs_moto"]["ratio"], "moto"), "", _t(t["get_vs_moto"])],
        [
            "  peak RSS (50 ms samples / VmHWM)",
            f"{store.rss_peak / MB:.0f} / {store.rss_hwm / MB:.0f} MB",
            f"idle {store.rss_idle / MB:.0f} MB",
            "",
            _t(t["rss"]),
        ],
    ]
    if moto:
        rows += [
            [f"peer: moto S3 server {moto.version}"],
            ["  PUT", mbps(moto_put), "", cpu(moto.put), ""],
            ["  GET", mbps(moto_get), "", cpu(moto.get), ""],
            [
                "  peak RSS (50 ms samples / VmHWM)",
                f"{moto.rss_peak / MB:.0f} / {moto.rss_hwm / MB:.0f} MB",
                "",
                "",
                "",
            ],
        ]
    client_ok = None
    if nginx:
        client_ok = (client_put or 0) >= 2 * max(put, moto_put or 0) and (nginx_get or 0) >= 2 * max(get, moto_get or 0)
        rows[6][4] = "client not the limit" if client_ok else "CLIENT MAY LIMIT"
    else:
        rows[6][4] = "n/a"
    header = ["figure", "value", "ratio", "srv CPU", "target"]
    table = format_table(rows, header)
    notes = (
        "MB = 10^6 bytes. 'srv CPU' = server CPU seconds per wall second during the transfer (1.00 = one core busy).\n"
        "Targets (issue 2): PUT >= 60% of the write-side limit, GET >= 30% of nginx, both faster than moto,\n"
        "store RSS < 150 MB throughout. The client is 'not the limit' when curl against nginx is at least twice\n"
        "every figure measured with it."
    )
    data = {
        "size_mib": args.size_mib,
        "runs": args.runs,
        "mb": "10^6 bytes",
        "limits": {
            "fsync_write_mb_s": round(fsync, 1),
            "fsync_write_runs": figures["fsync_runs"],
            "md5_crc64_mb_s": round(hashing, 1),
            "md5_crc64_runs": figures["hash_runs"],
            "write_limit_mb_s": round(write_limit, 1),
            "nginx": asdict(nginx) if nginx else None,
        },
        "client": {
            "tool": curl_version(),
            "put_to_nginx_sink_mb_s": client_put,
            "get_from_nginx_mb_s": nginx_get,
            "not_the_limit": client_ok,
        },
        "store": {**asdict(store), "put_mb_s": put, "get_mb_s": get},
        "moto": {**asdict(moto), "put_mb_s": moto_put, "get_mb_s": moto_get} if moto else None,
        "targets": targets,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "filesystem_of_store_root": _fs_of(WORK_DIR),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return f"{table}\n\n{notes}", data


def _t(target: dict[str, Any]) -> str:
    return f"{verdict(target['met'])} ({target['target']})"


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
    for op, prof in store.profile.items():
        if "own" not in prof:
            continue
        lines.append(f"py-spy, store during one {op.upper()} ({prof['samples']} samples, all threads, idle included):")
        lines += [f"  own {share:6.1%}  {frame}" for frame, share in prof["own"][:8]]
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024, help="object size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement; the median is reported")
    parser.add_argument("--skip-moto", action="store_true", help="do not install or run moto")
    parser.add_argument("--skip-nginx", action="store_true", help="do not install or run nginx (no GET baseline)")
    parser.add_argument("--py-spy", action="store_true", help="also profile one extra store PUT and GET with py-spy")
    args = parser.parse_args(argv)
    if not 1 <= args.size_mib <= 8192 or not 1 <= args.runs <= 20:
        parser.error("--size-mib must be 1..8192 and --runs 1..20")
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
            fsync_runs, hash_runs = [], []
            md5_hex, crc = "", 0
            for i in range(args.runs):
                fsync_runs.append(round(size / fsync_write(chunks, WORK_DIR / "fsync-test.bin") / MB, 1))
                seconds, md5_hex, crc = hash_pass(chunks)
                hash_runs.append(round(size / seconds / MB, 1))
                log(f"limits #{i + 1}: fsync write {fsync_runs[-1]:.0f} MB/s, MD5+CRC-64 {hash_runs[-1]:.0f} MB/s")
            del chunks
            figures.update(fsync_write=median(fsync_runs), fsync_runs=fsync_runs)
            figures.update(md5_crc64=median(hash_runs), hash_runs=hash_runs, md5=md5_hex, crc64=crc)
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
