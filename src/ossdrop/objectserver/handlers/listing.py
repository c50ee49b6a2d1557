"""ListObjects (V1) and ListObjectsV2 (§5.3), including ``encoding-type=url``."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_read
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.protocol import xml
from ossdrop.protocol.params import int_param
from ossdrop.protocol.timefmt import iso8601
from ossdrop.storage.base import ObjectPage, ObjectRecord

Item = tuple[str, "str | int | bool | None | xml.Children"]


def _max_keys(req: OSSRequest) -> int:
    return int_param(req.param("max-keys"), "max-keys", 100, 0, 1000)


def url_encoding(req: OSSRequest) -> bool:
    """Whether the client asked for ``encoding-type=url``."""
    encoding = req.param("encoding-type")
    if encoding not in (None, "", "url"):
        raise OSSError("InvalidArgument", "Argument encoding-type is invalid.", {"ArgumentName": "encoding-type"})
    return encoding == "url"


def enc(value: str, url: bool) -> str:
    # §5.3: with encoding-type=url every key-like element is percent-encoded (spaces as %20).
    return quote(value, safe="") if url else value


def _contents(ctx: Context, o: ObjectRecord, url: bool, owner: bool) -> Item:
    children: list[Item] = [
        ("Key", enc(o.key, url)),
        ("LastModified", iso8601(o.last_modified)),
        ("ETag", f'"{o.etag}"'),
        ("Type", o.object_type),
        ("Size", o.size),
        ("StorageClass", o.attrs.storage_class),
    ]
    if owner:
        children.append(("Owner", [("ID", ctx.config.owner_id), ("DisplayName", ctx.config.owner_id)]))
    return ("Contents", children)


def _entries(ctx: Context, page: ObjectPage, url: bool, owner: bool) -> list[Item]:
    items = [_contents(ctx, o, url, owner) for o in page.objects]
    items += [("CommonPrefixes", [("Prefix", enc(p, url))]) for p in page.prefixes]
    return items


def _page(ctx: Context, req: OSSRequest, marker: str) -> tuple[ObjectPage, str, str, int]:
    assert req.bucket is not None
    bucket = ctx.storage.get_bucket(req.bucket)
    require_read(req, bucket)
    prefix, delimiter = req.param("prefix") or "", req.param("delimiter") or ""
    max_keys = _max_keys(req)
    page = ctx.storage.list_objects(req.bucket, prefix=prefix, delimiter=delimiter, marker=marker, max_keys=max_keys)
    return page, prefix, delimiter, max_keys


async def list_objects(ctx: Context, req: OSSRequest) -> OSSResponse:
    """ListObjects; dispatches to V2 when ``list-type=2``."""
    if req.param("list-type") == "2":
        return await list_objects_v2(ctx, req)
    url = url_encoding(req)
    marker = req.param("marker") or ""
    page, prefix, delimiter, max_keys = _page(ctx, req, marker)
    children: list[Item] = [
        ("Name", req.bucket),
        ("Prefix", enc(prefix, url)),
        ("Marker", enc(marker, url)),
        ("MaxKeys", max_keys),
        ("Delimiter", enc(delimiter, url)),
    ]
    if url:
        children.append(("EncodingType", "url"))
    children += [("IsTruncated", page.truncated), ("NextMarker", enc(page.next_marker, url))]
    children += _entries(ctx, page, url, owner=True)
    return xml_response("ListBucketResult", children)


def encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8")
    except (binascii.Error, ValueError):
        raise OSSError(
            "InvalidArgument", "The continuation token provided is incorrect", {"ArgumentName": "continuation-token"}
        ) from None


async def list_objects_v2(ctx: Context, req: OSSRequest) -> OSSResponse:
    url = url_encoding(req)
    token = req.param("continuation-token") or ""
    start_after = req.param("start-after") or ""
    marker = decode_token(token) if token else start_after
    page, prefix, delimiter, max_keys = _page(ctx, req, marker)
    children: list[Item] = [("Name", req.bucket), ("Prefix", enc(prefix, url))]
    if start_after:
        children.append(("StartAfter", enc(start_after, url)))
    if token:
        children.append(("ContinuationToken", token))
    children += [("MaxKeys", max_keys), ("Delimiter", enc(delimiter, url))]
    if url:
        children.append(("EncodingType", "url"))
    children.append(("IsTruncated", page.truncated))
    if page.truncated:
        children.append(("NextContinuationToken", encode_token(page.next_marker)))
    children.append(("KeyCount", len(page.objects) + len(page.prefixes)))
    children += _entries(ctx, page, url, owner=req.param("fetch-owner") == "true")
    return xml_response("ListBucketResult", children)
