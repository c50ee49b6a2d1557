"""Response headers describing an object (GetObject/HeadObject/GetObjectMeta, §5.3)."""

from __future__ import annotations

from ossdrop.objectserver.http import OSSRequest
from ossdrop.protocol.timefmt import http_date
from ossdrop.storage.base import ObjectRecord

RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
_CANONICAL = {
    "cache-control": "Cache-Control",
    "content-disposition": "Content-Disposition",
    "content-encoding": "Content-Encoding",
    "content-language": "Content-Language",
    "expires": "Expires",
}


def object_headers(record: ObjectRecord, *, with_crc: bool = True) -> list[tuple[str, str]]:
    """Content-Type exactly as stored (no charset appended), ETag quoted, strict Last-Modified, metadata."""
    attrs = record.attrs
    headers = [
        ("Content-Type", attrs.content_type),
        ("ETag", f'"{record.etag}"'),
        ("Last-Modified", http_date(record.last_modified)),
        ("Accept-Ranges", "bytes"),
        ("x-oss-object-type", record.object_type),
        ("x-oss-storage-class", attrs.storage_class),
    ]
    if with_crc:
        headers.append(("x-oss-hash-crc64ecma", str(record.crc64)))
    if record.content_md5:
        headers.append(("Content-MD5", record.content_md5))
    headers += [(_CANONICAL.get(k, k), v) for k, v in attrs.headers]
    headers += [(f"x-oss-meta-{k}", v) for k, v in attrs.user_meta]
    return headers


def apply_overrides(req: OSSRequest, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``response-*`` query parameters replace the matching stored headers (signed requests only, as OSS)."""
    overrides = {RESPONSE_OVERRIDES[k]: v for k, v in req.query if k in RESPONSE_OVERRIDES}
    if not overrides:
        return headers
    kept = [(k, v) for k, v in headers if k not in overrides]
    return kept + list(overrides.items())


def meta_headers(record: ObjectRecord) -> list[tuple[str, str]]:
    """The reduced set GetObjectMeta returns."""
    return [
        ("ETag", f'"{record.etag}"'),
        ("Last-Modified", http_date(record.last_modified)),
        ("x-oss-hash-crc64ecma", str(record.crc64)),
        ("x-oss-last-access-time", http_date(record.last_modified)),
    ]
