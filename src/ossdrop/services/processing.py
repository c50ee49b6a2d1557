"""``x-oss-process`` results as cached derived files, and ``sys/saveas`` (oss-protocol.md §7, §8), free of HTTP.

Derived results live outside the user key space, in ``<root>/derived/<aa>/<sha256>``, where the digest covers the
bucket, key, source ETag, the canonical operation string and the ETags of any watermark objects (Active Storage's
variant key, architecture.md). A repeated request is therefore one small file read, and a changed source can never
serve a stale result: its ETag, hence the digest, changes. Results of overwritten or deleted sources become
unreachable and age out of the size-bounded cache (oldest first, approximately least recently used).

Processing is CPU-bound and runs in worker threads, at most ``workers`` at a time, so the event loop never blocks
and a burst of requests cannot take memory up; identical concurrent requests share one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import Watermark
from ossdrop.media.image import process_image
from ossdrop.media.limits import Limits
from ossdrop.media.result import Processed
from ossdrop.media.video import snapshot
from ossdrop.protocol.process_spec import ProcessSpec
from ossdrop.services.objects import commit_put
from ossdrop.storage.base import ObjectAttrs, ObjectRecord, Storage

CACHE_VERSION = "1"  # bump when the pipeline's output for a given spec changes
_MAGIC = b"ossdrop-derived\n"
_TOUCH_AFTER = 3600.0  # a hit refreshes the file's mtime at most hourly (cheap approximate LRU)
_EVICT_TO = 0.8  # eviction goes down to this share of the bound

Loader = Callable[[str], str]
Pipeline = Callable[[str, ProcessSpec, ObjectRecord, Limits, Loader], Processed]


def run_pipeline(path: str, spec: ProcessSpec, record: ObjectRecord, limits: Limits, load: Loader) -> Processed:
    """The media layer for one spec: ``image/...`` through the image pipeline, ``video/snapshot`` through PyAV."""
    if spec.kind == "video" and spec.snapshot is not None:
        return snapshot(path, spec.snapshot, limits=limits)
    return process_image(path, spec.ops, file_size=record.size, limits=limits, load_object=load)


@dataclass(frozen=True)
class Derived:
    """A cached result: ``length`` bytes at ``offset`` of the file at ``path``, served as ``content_type``."""

    path: str
    offset: int
    length: int
    content_type: str
    body: bytes | None = None  # set when just computed, so the first answer needs no re-read

    def read(self) -> bytes:
        if self.body is not None:
            return self.body
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read(self.length)


class DerivedCache:
    """Files ``<magic><content-type>\\n<length>\\n<body>`` under ``directory``; written atomically (temp + rename).

    The header's length makes a torn file (a crash before the data reached the disk) a miss, not a bad answer.
    ``max_bytes`` bounds the total size; writers in several threads share one lock for the accounting.
    """

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._tmp = os.path.join(directory, "tmp")
        os.makedirs(self._tmp, exist_ok=True)
        for name in os.listdir(self._tmp):  # temp files of a crashed run
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._tmp, name))
        self._size: int | None = None  # measured on the first write
        self._lock = threading.Lock()

    @staticmethod
    def digest(bucket: str, key: str, etag: str, canonical: str, deps: tuple[str, ...] = ()) -> str:
        """The deterministic name of a result: source identity plus canonical operation string."""
        material = json.dumps([CACHE_VERSION, bucket, key, etag, canonical, list(deps)], ensure_ascii=False)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path(self, digest: str) -> str:
        return os.path.join(self.directory, digest[:2], digest)

    def lookup(self, digest: str) -> Derived | None:
        """The cached result, or None (absent or torn)."""
        path = self.path(digest)
        try:
            with open(path, "rb") as fh:
                head = fh.read(256)
                size = os.fstat(fh.fileno()).st_size
                mtime = os.fstat(fh.fileno()).st_mtime
        except OSError:
            return None
        derived = _parse_header(path, head, size)
        if derived is not None and time.time() - mtime > _TOUCH_AFTER:
            with contextlib.suppress(OSError):
                os.utime(path)
        return derived

    def store(self, digest: str, result: Processed) -> Derived:
        """Write ``result`` under ``digest`` (blocking; call from a worker thread)."""
        header = _MAGIC + f"{result.content_type}\n{len(result.body)}\n".encode()
        path = self.path(digest)
        tmp = os.path.join(self._tmp, secrets.token_hex(16))
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(result.body)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(tmp, path)
        self._account(len(header) + len(result.body))
        return Derived(path, len(header), len(result.body), result.content_type, result.body)

    def _account(self, added: int) -> None:
        with self._lock:
            if self._size is None:
                self._size = sum(size for _, _, size in self._entries())
            else:
                self._size += added
            if self._size > self.max_bytes:
                self._evict(int(self.max_bytes * _EVICT_TO))

    def _entries(self) -> list[tuple[float, str, int]]:
        found = []
        for entry in os.scandir(self.directory):
            if not entry.is_dir() or entry.name == "tmp":
                continue
            for item in os.scandir(entry.path):
                with contextlib.suppress(OSError):
                    stat = item.stat()
                    found.append((stat.st_mtime, item.path, stat.st_size))
        return found

    def evict(self, target: int) -> None:
        """Remove the oldest results until the cache holds at most ``target`` bytes."""
        with self._lock:
            self._evict(target)

    def _evict(self, target: int) -> None:
        entries = sorted(self._entries())
        total = sum(size for _, _, size in entries)
        for _, path, size in entries:
            if total <= target:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size
        self._size = total


def _parse_header(path: str, head: bytes, size: int) -> Derived | None:
    if not head.startswith(_MAGIC):
        return None
    lines = head[len(_MAGIC) :].split(b"\n", 2)
    if len(lines) < 3 or not lines[1].isdigit():
        return None
    offset = len(_MAGIC) + len(lines[0]) + len(lines[1]) + 2
    length = int(lines[1])
    if offset + length != size:
        return None
    return Derived(path, offset, length, lines[0].decode())


class ProcessingService:
    """Turns (source object, parsed spec) into a :class:`Derived`, running the pipeline only on a cache miss."""

    def __init__(
        self,
        storage: Storage,
        cache: DerivedCache,
        *,
        limits: Limits | None = None,
        workers: int | None = None,
        pipeline: Pipeline = run_pipeline,
    ) -> None:
        self.storage = storage
        self.cache = cache
        self.limits = limits or Limits()
        self.pipeline = pipeline
        self.runs = 0  # pipeline runs so far (tests and diagnostics)
        self._slots = asyncio.Semaphore(workers or os.cpu_count() or 1)
        self._pending: dict[str, asyncio.Future[Derived]] = {}

    async def render(self, record: ObjectRecord, spec: ProcessSpec) -> Derived:
        """The result of ``spec`` (already style-resolved) on ``record``: cached, shared with an identical
        request in flight, or computed in a worker thread. Raises the media layer's ``OSSError``."""
        deps = self._dependencies(record.bucket, spec)
        digest = DerivedCache.digest(record.bucket, record.key, record.etag, spec.canonical(), deps)
        found = self.cache.lookup(digest)
        if found is not None:
            return found
        pending = self._pending.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Derived] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            result = await self._compute(digest, record, spec)
            future.set_result(result)
            return result
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._pending[digest]

    async def _compute(self, digest: str, record: ObjectRecord, spec: ProcessSpec) -> Derived:
        async with self._slots:
            return await asyncio.to_thread(self._run, digest, record, spec)

    def _run(self, digest: str, record: ObjectRecord, spec: ProcessSpec) -> Derived:
        self.runs += 1
        path = self.storage.blob_path(record.blob_id)
        try:
            result = self.pipeline(path, spec, record, self.limits, self._loader(record.bucket))
        except FileNotFoundError:  # the source was overwritten or deleted while we worked
            raise OSSError("NoSuchKey", extra={"Key": record.key}) from None
        return self.cache.store(digest, result)

    def _loader(self, bucket: str) -> Loader:
        """Watermark images: another key of the same bucket, read from its blob file (§7.2 watermark)."""

        def load(key: str) -> str:
            return self.storage.blob_path(self.storage.head_object(bucket, key).blob_id)

        return load

    def _dependencies(self, bucket: str, spec: ProcessSpec) -> tuple[str, ...]:
        """ETags of the watermark objects a result depends on, so that changing one changes the digest."""
        keys = [op.image.key for op in spec.ops if isinstance(op, Watermark) and op.image is not None]
        return tuple(f"{key}:{self.storage.head_object(bucket, key).etag}" for key in keys)

    async def save_as(self, record: ObjectRecord, spec: ProcessSpec, *, bucket: str, key: str, now: float) -> int:
        """``sys/saveas`` (§7.2): store the result of ``spec`` as ``bucket``/``key``; returns its size."""
        self.storage.get_bucket(bucket)
        derived = await self.render(record, spec)
        data = derived.read()
        writer = self.storage.new_blob()
        try:
            writer.write(data)
            blob = await asyncio.to_thread(writer.finish)
        except BaseException:
            writer.discard()
            raise
        attrs = ObjectAttrs(content_type=derived.content_type)
        commit_put(self.storage, bucket, key, blob, attrs, now=now, promised_md5=None, forbid_overwrite=False)
        return blob.size
