"""FilesystemStorage: blobs as files under the root, metadata in SQLite (see :mod:`metadb`, :mod:`blobs`).

Atomicity: an object's bytes are fsynced and renamed into place before the metadata row that names them commits,
and the row is the only way to reach them. A kill at any point leaves the previous version or nothing.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Sequence

from ossdrop.core.checksums import crc64_combine
from ossdrop.core.errors import OSSError
from ossdrop.storage.base import BlobInfo, Bucket, BucketStat, ObjectPage, ObjectRecord, Part, Upload
from ossdrop.storage.blobs import BlobDir, FileBlobWriter, concatenate
from ossdrop.storage.listing import list_page
from ossdrop.storage.metadb import (
    OBJECT_COLUMNS,
    MetaDB,
    dump_attrs,
    object_from_row,
    object_row,
    part_from_row,
    upload_from_row,
)


class FilesystemStorage:
    """The embedded store's backend. Thread-safe; all methods are blocking."""

    def __init__(self, root: str) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = os.path.abspath(root)
        self._blobs = BlobDir(self.root)
        self._blobs.clear_tmp()
        self._db = MetaDB(os.path.join(self.root, "meta.db"))

    def close(self) -> None:
        self._db.close()

    # -- buckets ---------------------------------------------------------------------------------------------
    def create_bucket(self, bucket: Bucket) -> None:
        with self._db.write() as db:
            if db.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket.name,)).fetchone():
                raise OSSError("BucketAlreadyExists", extra={"BucketName": bucket.name})
            db.execute(
                "INSERT INTO buckets VALUES (?, ?, ?, ?, ?, ?)",
                (
                    bucket.name,
                    bucket.created,
                    bucket.region,
                    bucket.acl,
                    bucket.storage_class,
                    bucket.redundancy,
                ),
            )

    def get_bucket(self, name: str) -> Bucket:
        with self._db.read() as db:
            row = db.execute("SELECT * FROM buckets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise OSSError("NoSuchBucket", extra={"BucketName": name})
        return Bucket(*row)

    def list_buckets(self) -> list[Bucket]:
        with self._db.read() as db:
            return [Bucket(*row) for row in db.execute("SELECT * FROM buckets ORDER BY name")]

    def update_bucket(self, name: str, *, acl: str) -> None:
        with self._db.write() as db:
            if not db.execute("UPDATE buckets SET acl = ? WHERE name = ?", (acl, name)).rowcount:
                raise OSSError("NoSuchBucket", extra={"BucketName": name})

    def delete_bucket(self, name: str) -> None:
        with self._db.write() as db:
            self._require_bucket(db, name)
            if (
                db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)).fetchone()
                or db.execute("SELECT 1 FROM uploads WHERE bucket = ? LIMIT 1", (name,)).fetchone()
            ):
                raise OSSError("BucketNotEmpty", extra={"BucketName": name})
            db.execute("DELETE FROM bucket_config WHERE bucket = ?", (name,))
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))

    def bucket_stat(self, name: str) -> BucketStat:
        with self._db.read() as db:
            self._require_bucket(db, name)
            size, count, modified = db.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*), COALESCE(MAX(last_modified), 0) "
                "FROM objects WHERE bucket = ?",
                (name,),
            ).fetchone()
            uploads = db.execute("SELECT COUNT(*) FROM uploads WHERE bucket = ?", (name,)).fetchone()[0]
        return BucketStat(int(size), int(count), int(uploads), float(modified))

    def get_config(self, name: str, kind: str) -> str | None:
        with self._db.read() as db:
            row = db.execute("SELECT value FROM bucket_config WHERE bucket = ? AND kind = ?", (name, kind)).fetchone()
        return None if row is None else str(row[0])

    def put_config(self, name: str, kind: str, value: str | None) -> None:
        with self._db.write() as db:
            self._require_bucket(db, name)
            if value is None:
                db.execute("DELETE FROM bucket_config WHERE bucket = ? AND kind = ?", (name, kind))
            else:
                db.execute("INSERT OR REPLACE INTO bucket_config VALUES (?, ?, ?)", (name, kind, value))

    @staticmethod
    def _require_bucket(db: sqlite3.Connection, name: str) -> None:
        if not db.execute("SELECT 1 FROM buckets WHERE name = ?", (name,)).fetchone():
            raise OSSError("NoSuchBucket", extra={"BucketName": name})

    # -- objects ---------------------------------------------------------------------------------------------
    def new_blob(self) -> FileBlobWriter:
        return self._blobs.writer()

    def blob_path(self, blob_id: str) -> str:
        return self._blobs.path(blob_id)

    def remove_blob(self, blob_id: str) -> None:
        self._blobs.remove(blob_id)

    def clone_blob(self, blob_id: str) -> str:
        return self._blobs.link(blob_id)

    def put_object(self, record: ObjectRecord, *, forbid_overwrite: bool = False) -> ObjectRecord | None:
        with self._db.write() as db:
            self._require_bucket(db, record.bucket)
            old = self._bind(db, record, forbid_overwrite)
        if old is not None and old.blob_id != record.blob_id:
            self._blobs.remove(old.blob_id)
        return old

    def head_object(self, bucket: str, key: str) -> ObjectRecord:
        with self._db.read() as db:
            found = self._get(db, bucket, key)
            if found is None:
                self._require_bucket(db, bucket)
                raise OSSError("NoSuchKey", extra={"Key": key})
        return found

    def delete_object(self, bucket: str, key: str) -> bool:
        with self._db.write() as db:
            self._require_bucket(db, bucket)
            old = self._get(db, bucket, key)
            if old is not None:
                db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key.encode()))
        if old is None:
            return False
        self._blobs.remove(old.blob_id)
        return True

    def update_object(self, bucket: str, key: str, *, acl: str) -> None:
        with self._db.write() as db:
            old = self._get(db, bucket, key)
            if old is None:
                self._require_bucket(db, bucket)
                raise OSSError("NoSuchKey", extra={"Key": key})
            attrs = dump_attrs(type(old.attrs)(**{**old.attrs.__dict__, "acl": acl}))
            db.execute("UPDATE objects SET attrs = ? WHERE bucket = ? AND key = ?", (attrs, bucket, key.encode()))

    def list_objects(
        self, bucket: str, *, prefix: str = "", delimiter: str = "", marker: str = "", max_keys: int = 100
    ) -> ObjectPage:
        with self._db.read() as db:
            self._require_bucket(db, bucket)
            return list_page(db, bucket, prefix, delimiter, marker, max_keys)

    def _bind(self, db: sqlite3.Connection, record: ObjectRecord, forbid_overwrite: bool) -> ObjectRecord | None:
        """Point the key at the record's blob inside the caller's transaction; returns what it replaced."""
        old = self._get(db, record.bucket, record.key)
        if old is not None and forbid_overwrite:
            raise OSSError("FileAlreadyExists", extra={"Key": record.key})
        db.execute(
            f"INSERT OR REPLACE INTO objects ({OBJECT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            object_row(record),
        )
        return old

    @staticmethod
    def _get(db: sqlite3.Connection, bucket: str, key: str) -> ObjectRecord | None:
        row = db.execute(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?",  # noqa: S608
            (bucket, key.encode("utf-8")),
        ).fetchone()
        return None if row is None else object_from_row(row)

    # -- multipart -------------------------------------------------------------------------------------------
    def create_upload(self, upload: Upload) -> None:
        with self._db.write() as db:
            self._require_bucket(db, upload.bucket)
            db.execute(
                "INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    upload.bucket,
                    upload.key.encode(),
                    upload.initiated,
                    dump_attrs(upload.attrs),
                ),
            )

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self._db.read() as db:
            row = db.execute(
                "SELECT * FROM uploads WHERE upload_id = ? AND bucket = ? AND key = ?",
                (upload_id, bucket, key.encode()),
            ).fetchone()
            if row is None:
                self._require_bucket(db, bucket)
                raise OSSError("NoSuchUpload", extra={"UploadId": upload_id})
        return upload_from_row(row)

    def put_part(self, upload: Upload, number: int, blob: BlobInfo) -> Part:
        part = Part(number, blob.blob_id, blob.size, blob.md5.hex().upper(), blob.crc64, time.time())
        with self._db.write() as db:
            if not db.execute("SELECT 1 FROM uploads WHERE upload_id = ?", (upload.upload_id,)).fetchone():
                raise OSSError("NoSuchUpload", extra={"UploadId": upload.upload_id})
            old = db.execute(
                "SELECT blob_id FROM parts WHERE upload_id = ? AND number = ?", (upload.upload_id, number)
            ).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    number,
                    part.blob_id,
                    part.size,
                    part.etag,
                    str(part.crc64),
                    part.last_modified,
                ),
            )
        if old is not None:
            self._blobs.remove(str(old[0]))
        return part

    def list_parts(self, upload: Upload) -> list[Part]:
        with self._db.read() as db:
            rows = db.execute(
                "SELECT number, blob_id, size, etag, crc64, last_modified FROM parts WHERE upload_id = ? "
                "ORDER BY number",
                (upload.upload_id,),
            ).fetchall()
        return [part_from_row(r) for r in rows]

    def complete_upload(
        self, upload: Upload, parts: Sequence[Part], *, etag: str, forbid_overwrite: bool = False
    ) -> ObjectRecord:
        blob_id, size = concatenate(self._blobs, [p.blob_id for p in parts])
        crc = 0
        for p in parts:
            crc = crc64_combine(crc, p.crc64, p.size)
        record = ObjectRecord(
            upload.bucket, upload.key, blob_id, size, etag, crc, "", time.time(), upload.attrs, "Multipart"
        )
        try:
            with self._db.write() as db:
                stale = self._finish_upload_rows(db, upload)
                old = self._bind(db, record, forbid_overwrite)
        except BaseException:
            self._blobs.remove(blob_id)
            raise
        for b in stale + ([old.blob_id] if old is not None else []):
            self._blobs.remove(b)
        return record

    def abort_upload(self, upload: Upload) -> None:
        with self._db.write() as db:
            stale = self._finish_upload_rows(db, upload)
        for b in stale:
            self._blobs.remove(b)

    def _finish_upload_rows(self, db: sqlite3.Connection, upload: Upload) -> list[str]:
        if not db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload.upload_id,)).rowcount:
            raise OSSError("NoSuchUpload", extra={"UploadId": upload.upload_id})
        blobs = [str(r[0]) for r in db.execute("SELECT blob_id FROM parts WHERE upload_id = ?", (upload.upload_id,))]
        db.execute("DELETE FROM parts WHERE upload_id = ?", (upload.upload_id,))
        return blobs

    def list_uploads(self, bucket: str) -> list[Upload]:
        with self._db.read() as db:
            self._require_bucket(db, bucket)
            rows = db.execute("SELECT * FROM uploads WHERE bucket = ? ORDER BY key, upload_id", (bucket,)).fetchall()
        return [upload_from_row(r) for r in rows]


def new_upload_id() -> str:
    """32 hex characters, like OSS upload ids."""
    return secrets.token_hex(16).upper()
