"""Blob files on disk: written under ``tmp/``, fsynced, then renamed into ``blobs/``.

Blob ids are random hex names chosen here, never derived from keys, so a key cannot steer a path. A blob becomes
visible only when the metadata database commits a row pointing at it; a crash before that leaves an orphan in
``tmp/`` (cleared at start) or, in a very short window, an unreferenced file in ``blobs/`` (never served).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import secrets
import shutil
from collections.abc import Callable

from ossdrop.core.checksums import Digester
from ossdrop.storage.base import BlobInfo

_BLOB_ID = re.compile(r"^[0-9a-f]{32}$")
# Small writes (form-parser pieces) are coalesced; writes at least this large go straight to the kernel with no
# copy (BufferedWriter bypasses its buffer for them), which is what large uploads' 64 KiB+ chunks do.
_BUFFER = 64 * 1024


class BlobDir:
    """The two directories that hold blob bytes."""

    def __init__(self, root: str) -> None:
        self.blobs = os.path.join(root, "blobs")
        self.tmp = os.path.join(root, "tmp")
        os.makedirs(self.blobs, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)

    def clear_tmp(self) -> None:
        """Remove partial uploads left by a crash (nothing in tmp/ was ever acknowledged)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp, exist_ok=True)

    def path(self, blob_id: str) -> str:
        """The one place a blob id becomes a path; ids are validated so none can escape the root."""
        if not _BLOB_ID.fullmatch(blob_id):
            raise ValueError(f"invalid blob id {blob_id!r}")
        return os.path.join(self.blobs, blob_id[:2], blob_id)

    def writer(self) -> FileBlobWriter:
        return FileBlobWriter(self)

    def adopt(self, tmp_path: str) -> str:
        """Move a finished temp file into place and return its new blob id."""
        blob_id = secrets.token_hex(16)
        final = self.path(blob_id)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(tmp_path, final)
        return blob_id

    def link(self, blob_id: str) -> str:
        """A second name for an immutable blob (a hard link), so a copy costs no I/O."""
        new_id = secrets.token_hex(16)
        final = self.path(new_id)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.link(self.path(blob_id), final)
        return new_id

    def remove(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(blob_id))


_WRITEBACK_STEP = 16 * 1024 * 1024


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    """Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which the ``os`` module lacks; None elsewhere.

    Written by hand through ctypes because no maintained library exposes it: starting writeback while an upload is
    still arriving leaves the final fsync almost nothing to do (0.5 s per GiB saved on this machine's disk)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    write_flag = 2  # SYNC_FILE_RANGE_WRITE: start writeback, do not wait

    def start_writeback(fd: int, offset: int, length: int) -> None:
        call(fd, offset, length, write_flag)  # advisory: a failure only means the final fsync does the work

    return start_writeback


_start_writeback = _load_sync_file_range()


class FileBlobWriter:
    """Writes one blob to a temp file, computing MD5 and CRC-64 as the bytes pass."""

    def __init__(self, blobs: BlobDir) -> None:
        self._blobs = blobs
        self._tmp = os.path.join(blobs.tmp, secrets.token_hex(16))
        self._file = open(self._tmp, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed in finish/discard
        self._digest = Digester()
        self._info: BlobInfo | None = None
        self._synced = 0  # bytes already handed to writeback

    @property
    def size(self) -> int:
        return self._digest.size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._digest.update(data)
        self._file.write(data)
        written = self._digest.size
        if _start_writeback is not None and written - self._synced >= _WRITEBACK_STEP:
            self._file.flush()
            _start_writeback(self._file.fileno(), self._synced, written - self._synced)
            self._synced = written

    def finish(self) -> BlobInfo:
        if self._info is None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            blob_id = self._blobs.adopt(self._tmp)
            d = self._digest
            self._info = BlobInfo(blob_id=blob_id, size=d.size, md5=d.md5(), crc64=d.crc64)
        return self._info

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._info is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
        else:
            self._blobs.remove(self._info.blob_id)


def concatenate(blobs: BlobDir, blob_ids: list[str]) -> tuple[str, int]:
    """Join blobs into a new durable blob with ``copy_file_range`` (no bytes through Python); returns (id, size)."""
    tmp = os.path.join(blobs.tmp, secrets.token_hex(16))
    total = 0
    with open(tmp, "wb") as out:
        for blob_id in blob_ids:
            with open(blobs.path(blob_id), "rb") as src:
                size = os.fstat(src.fileno()).st_size
                total += _copy_all(src.fileno(), out.fileno(), size)
        os.fsync(out.fileno())
    return blobs.adopt(tmp), total


def _copy_all(src: int, dst: int, size: int) -> int:
    copied = 0
    while copied < size:
        n = os.copy_file_range(src, dst, size - copied)
        if n == 0:
            break
        copied += n
    return copied
