"""Object use-cases of the store, free of HTTP: receive bytes into a blob, build attributes, bind to a key."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import AsyncIterator, Mapping

from ossdrop.core.errors import OSSError
from ossdrop.protocol.checksums import content_md5_b64, etag_of, parse_content_md5
from ossdrop.storage.base import BlobInfo, BlobWriter, ObjectAttrs, ObjectRecord, Storage

STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
OBJECT_ACLS = ("default", "private", "public-read", "public-read-write")
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
MAX_USER_META = 8 * 1024  # §1.2: user metadata totals at most 8 KB
_BATCH = 1 << 20  # bytes handed to the hashing/writing thread at a time


async def receive_blob(storage: Storage, body: AsyncIterator[bytes], *, limit: int) -> BlobInfo:
    """Stream ``body`` into a new durable blob; nothing of it stays if anything fails (size, disconnect...).

    Hashing and writing run in a worker thread one batch behind the network (MD5 releases the GIL), so a large
    upload is limited by the slower of the two, not by their sum; small bodies never leave the event loop."""
    writer = storage.new_blob()
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
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
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, _write_all, writer, batch)
                batch, batched = [], 0
        if pending is not None:
            await pending
        _write_all(writer, batch)
        return await asyncio.to_thread(writer.finish)
    except BaseException:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        writer.discard()
        raise


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
