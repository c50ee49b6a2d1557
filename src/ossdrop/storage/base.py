"""The storage seam: where buckets, objects and multipart parts live.

The object server talks to storage only through these protocols, so every backend passes the same contract
suite (``tests/storage/test_contract.py``). Keys never become filesystem paths: a backend maps ``(bucket, key)``
to an opaque blob id, which is why no key, however crafted, can reach outside the store root.

Errors are :class:`ossdrop.core.errors.OSSError` with the OSS codes (``NoSuchBucket``, ``NoSuchKey``,
``BucketAlreadyExists``, ``BucketNotEmpty``, ``FileAlreadyExists``, ``NoSuchUpload``, ``InvalidPart``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Bucket:
    """A bucket's stored attributes."""

    name: str
    created: float
    region: str
    acl: str = "private"
    storage_class: str = "Standard"
    redundancy: str = "LRS"


@dataclass(frozen=True)
class BucketStat:
    """Totals for GetBucketStat."""

    size: int
    objects: int
    uploads: int
    last_modified: float


@dataclass(frozen=True)
class BlobInfo:
    """A finished, durable blob not yet bound to a key: its id and the digests computed while writing."""

    blob_id: str
    size: int
    md5: bytes
    crc64: int


@dataclass(frozen=True)
class ObjectAttrs:
    """What the writer of an object decides: type, headers, user metadata, ACL and storage class."""

    content_type: str = "application/octet-stream"
    headers: tuple[tuple[str, str], ...] = ()  # Cache-Control, Content-Disposition, Content-Encoding, Expires...
    user_meta: tuple[tuple[str, str], ...] = ()  # x-oss-meta-* names in lower case, without the prefix
    acl: str = "default"
    storage_class: str = "Standard"


@dataclass(frozen=True)
class ObjectRecord:
    """An object as stored: its attributes plus what the store computed."""

    bucket: str
    key: str
    blob_id: str
    size: int
    etag: str  # upper-case hex without quotes; "<HEX>-<n>" for multipart objects
    crc64: int
    content_md5: str  # base64 MD5, empty for multipart objects
    last_modified: float
    attrs: ObjectAttrs = field(default_factory=ObjectAttrs)
    object_type: str = "Normal"


@dataclass(frozen=True)
class ObjectPage:
    """One page of a listing: objects and rolled-up common prefixes, in key order."""

    objects: list[ObjectRecord]
    prefixes: list[str]
    truncated: bool
    next_marker: str  # the last key or prefix returned; "" when not truncated


@dataclass(frozen=True)
class Upload:
    """An unfinished multipart upload and the attributes the completed object will get."""

    upload_id: str
    bucket: str
    key: str
    initiated: float
    attrs: ObjectAttrs


@dataclass(frozen=True)
class Part:
    """One uploaded part."""

    number: int
    blob_id: str
    size: int
    etag: str
    crc64: int
    last_modified: float


class BlobWriter(Protocol):
    """Receives an object's bytes as they arrive; nothing is visible until the blob is committed."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes (buffered; digests are updated as data passes)."""

    def finish(self) -> BlobInfo:
        """Flush and fsync; the returned blob may now be committed to a key or a part."""

    def discard(self) -> None:
        """Drop the partial blob (idempotent; also safe after finish when the commit failed)."""


class BucketStore(Protocol):
    """Buckets and their configuration documents (ACL, CORS rules, styles...)."""

    def create_bucket(self, bucket: Bucket) -> None: ...
    def get_bucket(self, name: str) -> Bucket: ...
    def list_buckets(self) -> list[Bucket]: ...
    def update_bucket(self, name: str, *, acl: str) -> None: ...
    def delete_bucket(self, name: str) -> None: ...
    def bucket_stat(self, name: str) -> BucketStat: ...
    def get_config(self, name: str, kind: str) -> str | None: ...
    def put_config(self, name: str, kind: str, value: str | None) -> None: ...


class ObjectStore(Protocol):
    """Objects keyed by (bucket, key), backed by blobs."""

    def new_blob(self) -> BlobWriter: ...
    def blob_path(self, blob_id: str) -> str: ...
    def clone_blob(self, blob_id: str) -> str:
        """A new blob id with the same bytes (cheap: blobs are immutable)."""

    def remove_blob(self, blob_id: str) -> None:
        """Drop a finished blob that no key references (a failed commit)."""

    def put_object(self, record: ObjectRecord, *, forbid_overwrite: bool = False) -> ObjectRecord | None:
        """Bind ``record.blob_id`` to the key atomically; returns the replaced record, if any.

        Raises ``FileAlreadyExists`` (and leaves the old object) when ``forbid_overwrite`` and the key exists."""

    def head_object(self, bucket: str, key: str) -> ObjectRecord: ...
    def delete_object(self, bucket: str, key: str) -> bool: ...
    def update_object(self, bucket: str, key: str, *, acl: str) -> None: ...
    def list_objects(
        self, bucket: str, *, prefix: str = "", delimiter: str = "", marker: str = "", max_keys: int = 100
    ) -> ObjectPage: ...


class MultipartStore(Protocol):
    """Multipart uploads: parts are blobs until Complete concatenates them into one object."""

    def create_upload(self, upload: Upload) -> None: ...
    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload: ...
    def put_part(self, upload: Upload, number: int, blob: BlobInfo) -> Part: ...
    def list_parts(self, upload: Upload) -> list[Part]: ...
    def complete_upload(
        self, upload: Upload, parts: Sequence[Part], *, etag: str, forbid_overwrite: bool = False
    ) -> ObjectRecord: ...
    def abort_upload(self, upload: Upload) -> None: ...
    def list_uploads(self, bucket: str) -> list[Upload]: ...


class Storage(BucketStore, ObjectStore, MultipartStore, Protocol):
    """Everything the object server needs from a backend."""
