"""The one place that knows the ``alibabacloud-oss-v2`` SDK: what the app server asks of the store.

Works the same against real Aliyun OSS and the embedded store. Local endpoints (an IP or ``localhost``) are
addressed path-style (the SDK treats only IPs that way by itself), everything else virtual-hosted. Every method
is synchronous and may block on the network: call it from a worker thread. Store failures surface as
:class:`StoreError` (``status`` and ``code`` of the store's answer, ``status`` 0 when it did not answer).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import alibabacloud_oss_v2 as oss


class StoreError(Exception):
    """The store refused a request or could not be reached (``status`` 0)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ObjectHead:
    """What HEAD tells about an object; ``etag`` without quotes."""

    key: str
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime.datetime | None


@dataclass(frozen=True)
class ListedObject:
    """One entry of a listing."""

    key: str
    size: int
    last_modified: datetime.datetime | None


def is_local_endpoint(endpoint: str) -> bool:
    """True for ``localhost`` and IP endpoints, which have no DNS per bucket and need path-style addressing."""
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class OssClient:
    """A thin, typed wrapper of one SDK client bound to one bucket."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        region: str,
        access_key_id: str,
        access_key_secret: str,
        *,
        timeout: float = 10,
    ) -> None:
        cfg = oss.config.load_default()
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(access_key_id, access_key_secret)
        cfg.region = region
        cfg.endpoint = endpoint
        cfg.connect_timeout = timeout
        cfg.readwrite_timeout = timeout
        cfg.retry_max_attempts = 2
        self.path_style = is_local_endpoint(endpoint)
        if self.path_style:
            cfg.use_path_style = True
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self._client = oss.Client(cfg)

    @property
    def post_url(self) -> str:
        """The URL a browser POSTs an upload form to (oss-protocol.md §1.1)."""
        if self.path_style:
            return f"{self.endpoint}/{self.bucket}"
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{self.bucket}.{parts.netloc}"

    def ensure_bucket(self) -> bool:
        """Create the bucket unless it exists; true when it was created."""
        if self._call(self._client.is_bucket_exist, self.bucket):
            return False
        self._call(self._client.put_bucket, oss.PutBucketRequest(bucket=self.bucket))
        return True

    def allow_browser_uploads(self, origins: Sequence[str]) -> None:
        """Bucket CORS so pages on ``origins`` can POST upload forms and read the reply (replaces all rules)."""
        rule = oss.CORSRule(
            allowed_origins=list(origins),
            allowed_methods=["POST", "GET", "HEAD"],
            allowed_headers=["*"],
            expose_headers=["ETag", "x-oss-request-id"],
            max_age_seconds=600,
        )
        config = oss.CORSConfiguration(cors_rules=[rule])
        self._call(
            self._client.put_bucket_cors, oss.PutBucketCorsRequest(bucket=self.bucket, cors_configuration=config)
        )

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers for the bucket."""
        self._call(self._client.get_bucket_info, oss.GetBucketInfoRequest(bucket=self.bucket))

    def head(self, key: str) -> ObjectHead | None:
        """The object's metadata, or ``None`` when it does not exist."""
        try:
            r = self._call(self._client.head_object, oss.HeadObjectRequest(bucket=self.bucket, key=key))
        except StoreError as exc:
            if exc.status == 404:
                return None
            raise
        etag = (r.etag or "").strip('"')
        return ObjectHead(key, int(r.content_length or 0), etag, r.content_type, r.last_modified)

    def get_range(self, key: str, first: int, last: int) -> bytes:
        """Bytes ``first..last`` (inclusive) of the object."""
        request = oss.GetObjectRequest(bucket=self.bucket, key=key, range_header=f"bytes={first}-{last}")
        result = self._call(self._client.get_object, request)
        return bytes(result.body.read())

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The whole object, streamed."""
        result = self._call(self._client.get_object, oss.GetObjectRequest(bucket=self.bucket, key=key))
        try:
            yield from result.body.iter_bytes(block_size=chunk_size)
        finally:
            result.body.close()

    def delete(self, key: str) -> None:
        """Delete the object (deleting a missing object is not an error)."""
        self._call(self._client.delete_object, oss.DeleteObjectRequest(bucket=self.bucket, key=key))

    def presign_get(self, key: str, ttl: int, *, process: str | None = None) -> str:
        """A GET URL valid for ``ttl`` seconds, optionally with an ``x-oss-process`` parameter."""
        request = oss.GetObjectRequest(bucket=self.bucket, key=key, process=process)
        result = self._call(self._client.presign, request, expires=datetime.timedelta(seconds=ttl))
        return str(result.url)

    def list(self, prefix: str) -> Iterator[ListedObject]:
        """Every object under ``prefix``, in key order."""
        paginator = self._client.list_objects_v2_paginator()
        pages = paginator.iter_page(oss.ListObjectsV2Request(bucket=self.bucket, prefix=prefix))
        try:
            for page in pages:
                for item in page.contents or []:
                    yield ListedObject(item.key, int(item.size or 0), item.last_modified)
        except oss.exceptions.BaseError as exc:
            raise _store_error(exc) from None

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except oss.exceptions.BaseError as exc:
            raise _store_error(exc) from None


def _store_error(exc: Exception) -> StoreError:
    inner = exc.unwrap() if isinstance(exc, oss.exceptions.OperationError) else exc
    if isinstance(inner, oss.exceptions.ServiceError):
        return StoreError(f"{inner.code}: {inner.message}", status=int(inner.status_code), code=str(inner.code))
    return StoreError(f"store unreachable: {type(inner).__name__}: {inner}")
