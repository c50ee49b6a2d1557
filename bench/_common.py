"""Helpers shared by the benchmarks: installing tools, running servers as children, RSS/CPU sampling, curl, tables.

Everything here is stdlib only so a benchmark runs from the project venv without extra packages. Servers are started
in their own process group and :class:`Children` ends each of them (by its own id) when the benchmark stops, also on
error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
VENVS_DIR = BENCH_DIR / ".venvs"
MB = 1_000_000  # figures are in MB (10^6 bytes), as the issue states them
MIB = 1 << 20


def log(message: str) -> None:
    """Progress goes to stderr so stdout keeps only the result table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- installing what a benchmark needs ---------------------------------------------------------------------------
def _run_quiet(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env, check=False)


def ensure_apt(binary: str, packages: Sequence[str]) -> str:
    """Path of ``binary``, installing the first of ``packages`` that apt can install when it is missing.

    Tries each package as is, then once more after ``apt-get update`` (a fresh machine may have no package lists).
    """
    found = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{binary} is missing and installing it needs root: apt-get install -y {packages[0]}")
    errors: list[str] = []
    for updated in (False, True):
        if updated:
            log("apt-get update")
            _run_quiet(["apt-get", "update", "-q"], timeout=600)
        for package in packages:
            log(f"apt-get install -y {package} (for {binary})")
            done = _run_quiet(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], timeout=900)
            path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.access(f"/usr/sbin/{binary}", os.X_OK) else "")
            if done.returncode == 0 and path:
                return path
            errors.append(f"{package}: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    raise SystemExit(f"could not install {binary}: {'; '.join(errors)}")


def ensure_venv(name: str, requirements: Sequence[str], probe: str) -> Path:
    """A venv under ``bench/.venvs/<name>`` holding ``requirements``; ``probe`` is Python code that must run in it.

    Idempotent: when the probe already succeeds nothing is installed. Returns the venv's ``bin`` directory.
    """
    venv = VENVS_DIR / name
    python = venv / "bin" / "python"
    if python.exists() and _run_quiet([str(python), "-c", probe], timeout=120).returncode == 0:
        return python.parent
    log(f"creating {venv.relative_to(REPO_DIR)} with {' '.join(requirements)}")
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    ignore = VENVS_DIR / ".gitignore"  # keeps the venvs out of git and out of ruff (which honours .gitignore)
    if not ignore.exists():
        ignore.write_text("*\n")
    if not python.exists():
        made = _run_quiet([sys.executable, "-m", "venv", str(venv)], timeout=300)
        if made.returncode != 0:
            raise SystemExit(f"python -m venv {venv} failed: {made.stderr.strip()}")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]
    done = _run_quiet(pip, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"pip install {' '.join(requirements)} failed:\n{done.stderr.strip()[-2000:]}")
    if _run_quiet([str(python), "-c", probe], timeout=120).returncode != 0:
        raise SystemExit(f"{venv}: installed {' '.join(requirements)} but the check {probe!r} still fails")
    return python.parent


# -- child processes ---------------------------------------------------------------------------------------------
@dataclass
class Child:
    """A server we started: its process, the file its output goes to, its name for messages."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_text(self, needle: str, timeout: float) -> str:
        """The first output line containing ``needle``; fails if the child dies or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print {needle!r} within {timeout:.0f}s:\n{self.output()[-3000:]}")

    def wait_for_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} is not listening on 127.0.0.1:{port} after {timeout:.0f}s")


@dataclass
class Children:
    """Every process a benchmark starts; :meth:`stop_all` ends them (their process groups) by their own ids."""

    log_dir: Path
    items: list[Child] = field(default_factory=list)

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: we can end it and anything it forked, and nothing else
                env={**os.environ, **(env or {})},
            )
        child = Child(name, proc, log_path)
        self.items.append(child)
        return child

    def stop(self, child: Child, grace: float = 5.0) -> None:
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.proc.wait(timeout=grace)
        else:  # the leader is gone; members of its group may linger
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
        if child in self.items:
            self.items.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.items)):
            try:
                self.stop(child)
            except Exception as err:  # keep stopping the others
                log(f"could not stop {child.name} (pid {child.pid}): {err}")


@contextlib.contextmanager
def children(log_dir: Path) -> Iterator[Children]:
    """A :class:`Children` that is emptied on exit, including on SIGTERM/SIGHUP (turned into SystemExit)."""
    group = Children(log_dir)

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield group
    finally:
        group.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- measuring a process -----------------------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1000:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(p) for p in fh.read().split())
    return found


def _status_kib(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    """Resident set of ``pid`` and its descendants, in bytes."""
    return sum(_status_kib(p, "VmRSS") for p in _descendants(pid)) * 1024


def hwm_bytes(pid: int) -> int:
    """The kernel's resident high-water mark (VmHWM) of ``pid`` itself, in bytes."""
    return _status_kib(pid, "VmHWM") * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{p}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot, from ``/proc/stat``: user, nice, system and steal.

    Interrupt and softirq time are left out: loopback TCP does much of its work there and the kernel charges it to
    no process, so counting it would call our own transfers "other work".
    """
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this benchmark process (all its threads) and of the children it has waited for (curl)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class ForeignLoad:
    """How busy the machine was with work that is not ours over a stretch of time, in cores.

    ``machine busy - (this process + waited-for children + the given server pids)``. What is left is other
    processes, kernel threads (page writeback counts here, so an fsync-heavy step is never quite zero) and CPU time
    the hypervisor gave to someone else (steal).
    """

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = list(pids)
        self._start = (time.monotonic(), machine_busy_seconds(), own_cpu_seconds(), self._servers())
        self.cores = 0.0

    def _servers(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids)

    def stop(self) -> float:
        wall0, busy0, own0, srv0 = self._start
        wall = max(time.monotonic() - wall0, 1e-6)
        ours = (own_cpu_seconds() - own0) + (self._servers() - srv0)
        self.cores = max(0.0, (machine_busy_seconds() - busy0 - ours) / wall)
        return self.cores


def wait_until_idle(max_wait: float, threshold: float = 0.25, window: float = 2.0) -> float:
    """Wait (at most ``max_wait`` s) for a ``window`` in which the machine is busy under ``threshold`` cores.

    Returns the load of the last window, in cores.
    """
    deadline = time.monotonic() + max_wait
    while True:
        load = ForeignLoad()
        time.sleep(window)
        cores = load.stop()
        if cores < threshold or time.monotonic() >= deadline:
            return cores
        log(f"machine busy ({cores:.2f} cores used by others); waiting for it to calm down")


class RssSampler:
    """Samples a process tree's RSS every ``interval`` seconds in a thread; ``peak`` is the largest sample."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_bytes(self.pid)
            if value:
                self.peak = max(self.peak, value)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -- the load client ---------------------------------------------------------------------------------------------
@dataclass
class Transfer:
    """One curl transfer as curl itself timed it (``time_total``: connect to last byte, no process start-up)."""

    status: int
    seconds: float
    uploaded: int
    downloaded: int
    etag: str
    client_cpu: float = 0.0  # curl's user + system CPU seconds (whole process, start-up included)

    def mb_per_s(self, size: int) -> float:
        return size / self.seconds / MB if self.seconds > 0 else 0.0


_CURL_FORMAT = "%{http_code} %{time_total} %{size_upload} %{size_download} [%header{etag}]"


def _curl(args: Sequence[str], timeout: float) -> Transfer:
    cmd = ["curl", "-sS", "--http1.1", "--max-time", f"{timeout:.0f}", "-o", "/dev/null", "-w", _CURL_FORMAT, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    head, _, etag = done.stdout.partition("[")
    status, seconds, uploaded, downloaded = head.split()
    return Transfer(int(status), float(seconds), int(float(uploaded)), int(float(downloaded)), etag.rstrip("]"), cpu)


def curl_put(url: str, path: Path, timeout: float, headers: Sequence[str] = ()) -> Transfer:
    """PUT the file at ``path`` (``Expect:`` off, so no 100-continue round trip)."""
    extra = [a for h in headers for a in ("-H", h)]
    return _curl(
        ["-T", str(path), "-H", "Expect:", "-H", "Content-Type: application/octet-stream", *extra, url], timeout
    )


def curl_get(url: str, timeout: float) -> Transfer:
    return _curl([url], timeout)


def curl_delete(url: str, timeout: float) -> Transfer:
    return _curl(["-X", "DELETE", url], timeout)


def curl_version() -> str:
    done = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else "?"


# -- figures -----------------------------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain-text table; a row of one cell is a section title."""
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) > 1:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    for row in rows:
        if len(row) == 1:
            out.append(row[0])
        else:
            cells = [c.rjust(w) if 0 < i < 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))]
            out.append("  ".join(cells).rstrip())
    return "\n".join(out)
