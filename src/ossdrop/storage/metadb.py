"""The metadata database: SQLite in WAL mode with ``synchronous=FULL``.

Keys are stored as UTF-8 BLOBs so that ``ORDER BY key`` is plain byte order (the order OSS lists in) and a prefix
is an index range ``[prefix, successor(prefix))``: listing is a seek, not a scan, however many objects there are.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ossdrop.storage.base import ObjectAttrs, ObjectRecord, Part, Upload

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, created REAL NOT NULL, region TEXT NOT NULL, acl TEXT NOT NULL,
    storage_class TEXT NOT NULL, redundancy TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bucket_config (
    bucket TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (bucket, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key BLOB NOT NULL, blob_id TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    crc64 TEXT NOT NULL, content_md5 TEXT NOT NULL, last_modified REAL NOT NULL, object_type TEXT NOT NULL,
    attrs TEXT NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key BLOB NOT NULL, initiated REAL NOT NULL,
    attrs TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, blob_id TEXT NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, crc64 TEXT NOT NULL, last_modified REAL NOT NULL,
    PRIMARY KEY (upload_id, number)) WITHOUT ROWID;
"""

OBJECT_COLUMNS = "bucket, key, blob_id, size, etag, crc64, content_md5, last_modified, object_type, attrs"


class MetaDB:
    """One SQLite connection shared by the loop and worker threads, serialised by a lock."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged write survives a power cut, not only a process kill (issue 2, storage engine).
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; rolled back if the block raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")


def dump_attrs(attrs: ObjectAttrs) -> str:
    return json.dumps(
        {
            "ct": attrs.content_type,
            "h": [list(p) for p in attrs.headers],
            "m": [list(p) for p in attrs.user_meta],
            "acl": attrs.acl,
            "sc": attrs.storage_class,
        },
        ensure_ascii=False,
    )


def load_attrs(text: str) -> ObjectAttrs:
    raw = json.loads(text)
    return ObjectAttrs(
        content_type=raw["ct"],
        headers=tuple((str(k), str(v)) for k, v in raw["h"]),
        user_meta=tuple((str(k), str(v)) for k, v in raw["m"]),
        acl=raw["acl"],
        storage_class=raw["sc"],
    )


def object_row(r: ObjectRecord) -> tuple[object, ...]:
    return (
        r.bucket,
        r.key.encode("utf-8"),
        r.blob_id,
        r.size,
        r.etag,
        str(r.crc64),
        r.content_md5,
        r.last_modified,
        r.object_type,
        dump_attrs(r.attrs),
    )


def object_from_row(row: tuple[object, ...]) -> ObjectRecord:
    bucket, key, blob_id, size, etag, crc, md5, modified, otype, attrs = row
    assert isinstance(key, bytes)
    return ObjectRecord(
        bucket=str(bucket),
        key=key.decode("utf-8"),
        blob_id=str(blob_id),
        size=int(str(size)),
        etag=str(etag),
        crc64=int(str(crc)),
        content_md5=str(md5),
        last_modified=float(str(modified)),
        object_type=str(otype),
        attrs=load_attrs(str(attrs)),
    )


def upload_from_row(row: tuple[object, ...]) -> Upload:
    upload_id, bucket, key, initiated, attrs = row
    assert isinstance(key, bytes)
    return Upload(str(upload_id), str(bucket), key.decode("utf-8"), float(str(initiated)), load_attrs(str(attrs)))


def part_from_row(row: tuple[object, ...]) -> Part:
    number, blob_id, size, etag, crc, modified = row
    return Part(int(str(number)), str(blob_id), int(str(size)), str(etag), int(str(crc)), float(str(modified)))


def successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: unbounded)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
