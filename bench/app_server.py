"""App server benchmark (issue 4): policy req/s next to a trivial JSON endpoint, and signed callbacks at a fixed
rate with their latency percentiles, against MariaDB (``--database`` picks PostgreSQL or SQLite instead).

    .venv/bin/python bench/app_server.py                 # ~2 minutes
    .venv/bin/python bench/app_server.py --rate 200 --seconds 15 --wrk-seconds 10

It starts ``ossdrop serve`` (embedded store, a database made for the run and dropped after) as a child. The
callbacks are signed with an RSA key generated here, whose public half a small HTTP server of this script serves;
the app is configured (``OSSDROP_CALLBACK_PUBKEY_PREFIXES``) to trust that URL, exactly as it trusts OSS's key host.
Policy and trivial endpoints are loaded by wrk (Debian package, installed when missing); callbacks by an open-loop
generator here (one request every 1/rate s whatever the answers do, so slow answers cannot hide as lower load).

Besides req/s, each phase reports the app process's CPU time per request (user + system of ``ossdrop serve`` and its
threads, from ``/proc``, divided by the requests served). Other processes on the 2 cores change req/s from run to
run, the CPU an app spends on a request much less, so ``policy_cpu_ratio`` (trivial CPU/request over policy
CPU/request) is the steadier form of the policy-vs-trivial ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    OUT_DIR,
    REPO_DIR,
    children,
    cpu_seconds,
    ensure_apt,
    format_table,
    free_port,
    log,
    machine_busy_seconds,
)

from ossdrop.appserver.auth import issue_token  # noqa: E402
from ossdrop.protocol.callback import generate_callback_key, pub_key_url_header, sign_callback  # noqa: E402

SERVERS = {
    "mariadb": ("mysql+pymysql://root@127.0.0.1:3306/", "CHARACTER SET utf8mb4"),
    "postgresql": ("postgresql+psycopg://postgres@127.0.0.1:5432/", ""),
}
JWT_SECRET = "bench-jwt-secret-" + "b" * 32
WORK = OUT_DIR / "app_server"


def serve_key(pem: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-pem-file")
            self.send_header("Content-Length", str(len(pem)))
            self.end_headers()
            self.wfile.write(pem)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/keys/"


def wrk(url: str, seconds: int, script: Path | None) -> dict[str, float]:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out)[1]),  # type: ignore[index]
        "rps": rps,
        "p99_ms": float(p99[1]) * scale[p99[2]] if p99 else float("nan"),
        "non_2xx": int(non2xx[1]) if non2xx else 0,
    }


def policy_script(token: str) -> Path:
    body = json.dumps({"filename": "bench.bin", "size": 1000, "md5": secrets.token_hex(16)})
    path = WORK / "policy.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return path


def make_pending(app: str, token: str, count: int) -> list[tuple[str, str, str]]:
    """``count`` pending uploads via the API: (upload_id, key, md5) each."""

    async def run() -> list[tuple[str, str, str]]:
        limits = httpx.Limits(max_connections=16)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=app, headers=headers, limits=limits, timeout=60) as c:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> tuple[str, str, str]:
                md5 = hashlib.md5(f"{i}-{secrets.token_hex(8)}".encode()).hexdigest()
                async with sem:
                    r = await c.post("/api/uploads/policy", json={"filename": f"c{i}.bin", "size": 1000, "md5": md5})
                t = r.json()
                return t["upload_id"], t["key"], md5

            return list(await asyncio.gather(*(one(i) for i in range(count))))

    return asyncio.run(run())


def signed(
    callback_url: str, key_url: str, private_pem: bytes, item: tuple[str, str, str]
) -> tuple[bytes, dict[str, str]]:
    upload_id, key, md5 = item
    values = {"upload_id": upload_id, "object": key, "size": 1000, "etag": md5.upper(), "mimeType": "x/bin"}
    body = urlencode({**values, "width": "", "height": ""}).encode()
    headers = {
        "authorization": sign_callback(private_pem, urlsplit(callback_url).path, "", body),
        "x-oss-pub-key-url": pub_key_url_header(key_url + "bench.pem"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def fire(callback_url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float) -> tuple[list[float], int]:
    """Send ``requests`` open-loop at ``rate``/s; latencies (ms) of the 200s and the count of failures."""

    async def run() -> tuple[list[float], int]:
        latencies: list[float] = []
        failures = 0
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:

            async def one(body: bytes, headers: dict[str, str]) -> None:
                nonlocal failures
                t0 = time.perf_counter()
                try:
                    r = await client.post(callback_url, content=body, headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    failures += 1

            start = time.perf_counter()
            tasks = []
            for i, (body, headers) in enumerate(requests):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(body, headers)))
            await asyncio.gather(*tasks)
        return latencies, failures

    return asyncio.run(run())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="callbacks per second (default 200)")
    parser.add_argument("--seconds", type=float, default=15.0, help="callback phase length (default 15)")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="each wrk run's length (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="trivial/policy wrk pairs (default 3; median)")
    parser.add_argument(
        "--database", choices=["mariadb", "postgresql", "sqlite"], default="mariadb", help="(default mariadb)"
    )
    args = parser.parse_args()
    ensure_apt("wrk", ["wrk"])
    WORK.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = generate_callback_key(1024)
    key_server, key_url = serve_key(public_pem)
    try:
        with bench_database(args.database) as url:
            result = run_all(args, url, private_pem, key_url)
    finally:
        key_server.shutdown()
    (OUT_DIR / "app_server.json").write_text(json.dumps(result, indent=2))
    print_result(result)


@contextlib.contextmanager
def bench_database(kind: str) -> Iterator[str]:
    """The URL of a new, empty database of ``kind`` for this run (dropped after); SQLite's lives in the work dir."""
    if kind == "sqlite":
        path = WORK / f"bench-{secrets.token_hex(4)}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in WORK.glob(path.name + "*"):
                leftover.unlink()
        return
    server, options = SERVERS[kind]
    db = f"ossdrop_bench_{secrets.token_hex(4)}"
    admin = create_engine(server + ("postgres" if kind == "postgresql" else ""), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {db} {options}"))
    try:
        yield server + db
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {db}"))
        admin.dispose()


def wrk_rounds(
    pid: int, base: str, token: str, args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, float], list[dict[str, float]]]:
    """``--rounds`` pairs of wrk runs, trivial then policy: the median run of each and every pair's ratios.

    The two endpoints alternate so that whatever else the 2 cores do (the database's background work, say) weighs
    on both alike; the verdict is the median of the per-round ratios."""
    trivials: list[dict[str, float]] = []
    policies: list[dict[str, float]] = []
    ratios: list[dict[str, float]] = []
    script = policy_script(token)
    for n in range(1, args.rounds + 1):
        log(f"round {n}/{args.rounds}: wrk GET /api/version (trivial), then POST /api/uploads/policy")
        trivial = wrk_cpu(pid, base + "/api/version", args.wrk_seconds, None)
        policy = wrk_cpu(pid, base + "/api/uploads/policy", args.wrk_seconds, script)
        trivials.append(trivial)
        policies.append(policy)
        cpu = trivial["cpu_ms_per_request"] / policy["cpu_ms_per_request"]
        ratios.append({"rps": policy["rps"] / trivial["rps"], "cpu": cpu})
        log(
            f"  trivial {trivial['rps']:.0f} req/s, policy {policy['rps']:.0f} req/s: {ratios[-1]['rps']:.1%}"
            f" (app CPU/request {1000 * trivial['cpu_ms_per_request']:.0f} vs {1000 * policy['cpu_ms_per_request']:.0f}"
            f" us, machine busy {trivial['machine_busy']:.0%} vs {policy['machine_busy']:.0%})"
        )
    return median_run(trivials), median_run(policies), ratios


def wrk_cpu(pid: int, url: str, seconds: int, script: Path | None) -> dict[str, float]:
    """:func:`wrk`, plus the app's CPU time per request served."""
    cpu0, busy0, t0 = cpu_seconds(pid), machine_busy_seconds(), time.perf_counter()
    result = wrk(url, seconds, script)
    result["cpu_ms_per_request"] = 1000 * (cpu_seconds(pid) - cpu0) / max(1, result["requests"])
    cores = os.cpu_count() or 1
    result["machine_busy"] = (machine_busy_seconds() - busy0) / (cores * (time.perf_counter() - t0))
    return result


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def run_all(args: argparse.Namespace, database_url: str, private_pem: bytes, key_url: str) -> dict[str, object]:
    port, store_port = free_port(), free_port()
    env = {
        "OSSDROP_DATABASE_URL": database_url,
        "OSSDROP_JWT_SECRET": JWT_SECRET,
        "OSSDROP_CALLBACK_PUBKEY_PREFIXES": key_url,
        "OSSDROP_RECONCILE_INTERVAL": "3600",
    }
    data_dir = WORK / f"data-{secrets.token_hex(3)}"
    cmd = [sys.executable, "-m", "ossdrop", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    with children(WORK / "logs") as kids:
        app = kids.start("ossdrop-serve", [*cmd, "--store-port", str(store_port)], env=env)
        app.wait_for_text("app listening on", 60)
        base = f"http://127.0.0.1:{port}"
        token = issue_token(JWT_SECRET, 1, 3600)
        trivial, policy, ratios = wrk_rounds(app.pid, base, token, args)
        total = int(args.rate * args.seconds)
        warm = int(args.rate * 2)
        log(f"making {total + warm} pending uploads")
        items = make_pending(base, token, total + warm)
        url = base + "/api/uploads/callback"
        reqs = [signed(url, key_url, private_pem, it) for it in items]
        log(f"warm-up: {warm} callbacks at {args.rate}/s")
        fire(url, reqs[:warm], args.rate)
        log(f"callbacks: {total} at {args.rate}/s")
        t0, cpu0 = time.perf_counter(), cpu_seconds(app.pid)
        latencies, failures = fire(url, reqs[warm:], args.rate)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(app.pid) - cpu0
    return {
        "machine": "2 cores (wrk, load generator, app server, store and database share them)",
        "database": args.database,
        "command": "bench/app_server.py " + " ".join(sys.argv[1:]),
        "trivial": trivial,
        "policy": policy,
        "rounds": ratios,
        "policy_ratio": statistics.median(r["rps"] for r in ratios),
        # App CPU per request is robust to other processes' load; the inverse ratio is the CPU-bound req/s ratio.
        "policy_cpu_ratio": statistics.median(r["cpu"] for r in ratios),
        "callbacks": {
            "target_rate": args.rate,
            "sent": total,
            "ok": len(latencies),
            "failed": failures,
            "achieved_rate": len(latencies) / elapsed,
            "p50_ms": statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": pct(latencies, 0.99),
            "max_ms": max(latencies) if latencies else float("nan"),
            "cpu_ms_per_request": 1000 * cpu / max(1, total),
        },
        "repo": str(REPO_DIR),
    }


def print_result(r: dict[str, object]) -> None:
    trivial, policy, cb, rounds = r["trivial"], r["policy"], r["callbacks"], r["rounds"]
    assert isinstance(trivial, dict) and isinstance(policy, dict) and isinstance(cb, dict)
    assert isinstance(rounds, list)
    each = ", ".join(f"{100 * x['rps']:.0f}" for x in rounds)
    rows = [
        [
            "GET /api/version (trivial)",
            f"{trivial['rps']:.0f} req/s",
            f"p99 {trivial['p99_ms']:.1f} ms",
            f"{trivial['cpu_ms_per_request']:.3f}",
            "",
        ],  # fmt: skip
        [
            "POST /api/uploads/policy",
            f"{policy['rps']:.0f} req/s",
            f"p99 {policy['p99_ms']:.1f} ms",
            f"{policy['cpu_ms_per_request']:.3f}",
            f"{100 * float(r['policy_ratio']):.0f}% of trivial, by CPU {100 * float(r['policy_cpu_ratio']):.0f}%"
            f" (median of {len(rounds)}: {each}%; target >= 50%)",
        ],  # fmt: skip
        [
            "POST /api/uploads/callback",
            f"{cb['achieved_rate']:.0f}/s of {cb['target_rate']:.0f}/s",
            f"p50 {cb['p50_ms']:.1f} / p99 {cb['p99_ms']:.1f} / max {cb['max_ms']:.1f} ms",
            f"{cb['cpu_ms_per_request']:.3f}",
            f"{cb['failed']} failed (target p99 < 50 ms)",
        ],  # fmt: skip
    ]
    print(f"database: {r['database']}")
    print(format_table(rows, ["endpoint", "throughput", "latency", "app CPU ms/req", "verdict"]))


if __name__ == "__main__":
    main()
