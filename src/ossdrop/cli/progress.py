"""Shared terminal helpers of the transfer commands: one-line failures, sizes, and rich progress bars.

Progress bars go to stderr and only when it is a terminal (``--quiet`` turns them off too), so stdout stays a
clean record of what was done and a failure's stderr stays a single ``error: ...`` line.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
HASH_CHUNK = 1 << 20

Quiet = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code`` (1 failure, 2 usage)."""
    one_line = " ".join(message.split())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code)


def parse_size(text: str) -> int:
    """Bytes from ``"6MiB"``, ``"256k"``, ``"1048576"`` (binary units); raises :class:`ValueError`."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 256KiB, 8MiB, 1048576)")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def format_size(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``1.5 KiB``, ``6.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def stderr_console() -> Console:
    """The console progress bars draw on."""
    return Console(stderr=True)


@contextmanager
def transfer_progress(quiet: bool) -> Iterator[Progress]:
    """A running rich progress display for byte transfers; disabled when quiet or stderr is not a terminal."""
    console = stderr_console()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=False,
        redirect_stdout=False,
    )
    with progress:
        yield progress


class TransferBar:
    """One task of a :class:`Progress`, fed by the SDK's ``progress_fn(increment, transferred, total)``.

    Remembers where the transfer started (``resumed_at``): a resumed upload's first report already counts the
    parts a previous run sent.
    """

    def __init__(self, progress: Progress, description: str, total: int | None = None) -> None:
        self._progress = progress
        self._task: TaskID = progress.add_task(description, total=total)
        self._lock = threading.Lock()
        self.resumed_at: int | None = None
        self.transferred = 0

    def __call__(self, increment: int, transferred: int, total: int) -> None:
        """The SDK's progress callback (called from its worker threads)."""
        with self._lock:
            if self.resumed_at is None:
                self.resumed_at = max(transferred - increment, 0)
            self.transferred = transferred
        self._progress.update(self._task, completed=transferred, total=total if total >= 0 else None)

    def set(self, completed: int, total: int | None = None) -> None:
        """Move the bar to ``completed`` bytes (and set its total when given)."""
        self.transferred = completed
        self._progress.update(self._task, completed=completed, total=total)


class ProgressReader:
    """A binary file whose reads advance a :class:`TransferBar`; for streaming it as a request body.

    ``fileno``, ``seek`` and ``tell`` pass through so that httpx learns the length without reading the file.
    """

    def __init__(self, fh: BinaryIO, bar: TransferBar) -> None:
        self._fh = fh
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        """Read and report the new position."""
        data = self._fh.read(size)
        self._bar.set(self._fh.tell())
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Seek (httpx rewinds before sending) and report the position."""
        pos = self._fh.seek(offset, whence)
        self._bar.set(pos)
        return pos

    def tell(self) -> int:
        """The current position."""
        return self._fh.tell()

    def fileno(self) -> int:
        """The underlying descriptor (httpx uses it to learn the size)."""
        return self._fh.fileno()


def hash_file(path: Path, progress: Progress) -> tuple[int, str]:
    """Size and hex MD5 of ``path``, read in chunks with a progress bar."""
    size = path.stat().st_size
    bar = TransferBar(progress, f"md5 {path.name}", total=size)
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            bar.set(done)
    return done, digest.hexdigest()


def range_md5(path: Path, first: int, last: int) -> str:
    """Hex MD5 of bytes ``first..last`` (inclusive) of ``path``: the answer to a dedup proof challenge."""
    digest = hashlib.md5(usedforsecurity=False)
    left = max(last - first + 1, 0)
    with path.open("rb") as fh:
        fh.seek(first)
        while left > 0 and (chunk := fh.read(min(HASH_CHUNK, left))):
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()
