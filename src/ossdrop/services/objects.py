"""Object use-cases of the store, free of HTTP: receive bytes into a blob, build attributes, bind to a key."""

from __future__ import annotations

import asyncio
import mimetypes
from collections import deque
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from ossdrop.core.checksums import content_md5_b64, etag_of, parse_content_md5
from ossdrop.core.errors import OSSError
from ossdrop.storage.base import BlobInfo, BlobWriter, ObjectAttrs, ObjectRecord, Storage

STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
OBJECT_ACLS = ("default", "private", "public-read", "public-read-write")
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
MAX_USER_META = 8 * 1024  # §1.2: user metadata totals at most 8 KB
_BATCH = 4 << 20  # bytes handed to the hashing/writing thread at a time (fewer wake-ups of the event loop)


async def receive_blob(storage: Storage, body: AsyncIterator[bytes], *, limit: int) -> BlobInfo:
    """Stream ``body`` into a new durable blob; nothing of it stays if anything fails (size, disconnect...).

    Hashing and writing run on a worker thread of the upload's own, up to a few batches behind the network (MD5
    releases the GIL), so a large upload is limited by the slower of the two, not by their sum; small bodies never
    leave the event loop."""
    writer = storage.new_blob()
    spool = _Spooler(writer)
    batch: list[bytes] = []
    batched = size = 0
    try:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise OSSError("EntityTooLarge")
            batch.append(chunk)
            batched += len(chunk)
            if batched >= _BATCH:
                await spool.submit(batch)
                batch, batched = [], 0
        await spool.drain()
        _write_all(writer, batch)
        return await asyncio.to_thread(writer.finish)
    except BaseException:
        await spool.drain(raise_errors=False)
        writer.discard()
        raise
    finally:
        spool.close()


class _Spooler:
    """Feeds one blob writer, in order, from a private worker thread with at most ``depth`` batches in flight
    (bounded memory: ``depth`` x 4 MiB per upload). The thread starts only when a body is large enough to need it."""

    def __init__(self, writer: BlobWriter, depth: int = 2) -> None:
        self._writer = writer
        self._depth = depth
        self._executor: ThreadPoolExecutor | None = None
        self._inflight: deque[asyncio.Future[None]] = deque()

    async def submit(self, chunks: list[bytes]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ossdrop-blob")
        while len(self._inflight) >= self._depth:
            await self._inflight.popleft()
        future = self._executor.submit(_write_all, self._writer, chunks)
        self._inflight.append(asyncio.wrap_future(future))

    async def drain(self, *, raise_errors: bool = True) -> None:
        while self._inflight:
            pending = self._inflight.popleft()
            if raise_errors:
                await pending
            else:
                await asyncio.gather(pending, return_exceptions=True)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)


def _write_all(writer: BlobWriter, chunks: list[bytes]) -> None:
    for chunk in chunks:
        writer.write(chunk)


def expected_md5(headers: Mapping[str, str]) -> bytes | None:
    """The ``Content-MD5`` a client promised, or None; a malformed value is ``InvalidDigest``."""
    value = headers.get("content-md5")
    if value is None or value == "":
        return None
    digest = parse_content_md5(value)
    if digest is None:
        raise OSSError("InvalidDigest")
    return digest


def attrs_from_headers(headers: Mapping[str, str], key: str, *, content_type: str | None = None) -> ObjectAttrs:
    """Object attributes from request headers (PutObject, Initiate, PostObject fields): type, stored headers,
    ``x-oss-meta-*``, ACL and storage class, validated."""
    ctype = content_type if content_type is not None else headers.get("content-type", "")
    if not ctype:
        ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
    acl = headers.get("x-oss-object-acl", "default")
    if acl not in OBJECT_ACLS:
        raise OSSError("InvalidArgument", "no such object access control exists", {"ArgumentName": "x-oss-object-acl"})
    storage_class = headers.get("x-oss-storage-class", "Standard")
    if storage_class not in STORAGE_CLASSES:
        raise OSSError("InvalidArgument", "Invalid storage class.", {"ArgumentName": "x-oss-storage-class"})
    meta = tuple(sorted((k[len("x-oss-meta-") :], v) for k, v in headers.items() if k.startswith("x-oss-meta-")))
    if sum(len(k) + len(v) for k, v in meta) > MAX_USER_META:
        raise OSSError("InvalidArgument", "Your metadata headers exceed the maximum allowed metadata size.")
    stored = tuple((k, headers[k]) for k in STORED_HEADERS if k in headers)
    return ObjectAttrs(ctype, stored, meta, acl, storage_class)


def commit_put(
    storage: Storage,
    bucket: str,
    key: str,
    blob: BlobInfo,
    attrs: ObjectAttrs,
    *,
    now: float,
    promised_md5: bytes | None,
    forbid_overwrite: bool,
) -> ObjectRecord:
    """Bind a received blob to ``key`` after checking the promised MD5; the blob is dropped on any failure."""
    try:
        if promised_md5 is not None and promised_md5 != blob.md5:
            raise OSSError("InvalidDigest", "The Content-MD5 you specified did not match what we received.")
        record = ObjectRecord(
            bucket, key, blob.blob_id, blob.size, etag_of(blob.md5), blob.crc64, content_md5_b64(blob.md5), now, attrs
        )
        storage.put_object(record, forbid_overwrite=forbid_overwrite)
    except BaseException:
        storage.remove_blob(blob.blob_id)
        raise
    return record
