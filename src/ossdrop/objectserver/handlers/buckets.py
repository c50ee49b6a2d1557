"""Service and bucket operations: ListBuckets, PutBucket, GetBucketInfo/Location/Stat, ACL, DeleteBucket (§5.3)."""

from __future__ import annotations

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import BUCKET_ACLS, require_owner
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.protocol import xml
from ossdrop.protocol.names import check_bucket_name
from ossdrop.protocol.params import int_param
from ossdrop.protocol.timefmt import iso8601
from ossdrop.services.objects import STORAGE_CLASSES
from ossdrop.storage.base import Bucket


def _owner(ctx: Context) -> xml.Children:
    return [("ID", ctx.config.owner_id), ("DisplayName", ctx.config.owner_id)]


def _bucket_summary(ctx: Context, b: Bucket) -> xml.Children:
    return [
        ("CreationDate", iso8601(b.created)),
        ("ExtranetEndpoint", ctx.config.endpoint),  # trap 10: SDK test teardowns connect back through it
        ("IntranetEndpoint", ctx.config.endpoint),
        ("Location", f"oss-{b.region}"),
        ("Name", b.name),
        ("Region", b.region),
        ("StorageClass", b.storage_class),
    ]


async def list_buckets(ctx: Context, req: OSSRequest) -> OSSResponse:
    """ListBuckets with prefix / marker / max-keys."""
    require_owner(req)
    prefix, marker = req.param("prefix", "") or "", req.param("marker", "") or ""
    max_keys = int_param(req.param("max-keys"), "max-keys", 100, 1, 1000)
    chosen = [b for b in ctx.storage.list_buckets() if b.name.startswith(prefix) and b.name > marker]
    page, truncated = chosen[:max_keys], len(chosen) > max_keys
    children: list[tuple[str, str | int | bool | None | xml.Children]] = [
        ("Prefix", prefix),
        ("Marker", marker),
        ("MaxKeys", max_keys),
        ("IsTruncated", truncated),
        ("NextMarker", page[-1].name if truncated else ""),
        ("Owner", _owner(ctx)),
        ("Buckets", [("Bucket", _bucket_summary(ctx, b)) for b in page]),
    ]
    return xml_response("ListAllMyBucketsResult", children)


def _acl_header(req: OSSRequest, default: str) -> str:
    acl = req.header("x-oss-acl", default)
    if acl not in BUCKET_ACLS:
        raise OSSError("InvalidArgument", "no such bucket access control exists", {"ArgumentName": "x-oss-acl"})
    return acl


async def put_bucket(ctx: Context, req: OSSRequest) -> OSSResponse:
    """PutBucket: name rules, ``x-oss-acl``, StorageClass and DataRedundancyType from the optional body."""
    require_owner(req)
    assert req.bucket is not None
    check_bucket_name(req.bucket)
    acl = _acl_header(req, "private")
    body = await req.read_body(64 * 1024)
    storage_class, redundancy = "Standard", "LRS"
    if body.strip():
        root = xml.parse(body)
        storage_class = xml.text(root, "StorageClass", "Standard")
        redundancy = xml.text(root, "DataRedundancyType", "LRS")
    if storage_class not in STORAGE_CLASSES or redundancy not in ("LRS", "ZRS"):
        raise OSSError("InvalidArgument", "Invalid storage class or redundancy type.")
    bucket = Bucket(req.bucket, ctx.clock.now(), ctx.config.region, acl, storage_class, redundancy)
    ctx.storage.create_bucket(bucket)
    return OSSResponse(200, [("Location", f"/{req.bucket}")])


async def delete_bucket(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    ctx.storage.delete_bucket(req.bucket)
    return OSSResponse(204)


async def get_bucket_info(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    b = ctx.storage.get_bucket(req.bucket)
    info = [
        *_bucket_summary(ctx, b),
        ("Owner", [("DisplayName", ctx.config.owner_id), ("ID", ctx.config.owner_id)]),
        ("AccessControlList", [("Grant", b.acl)]),
        ("DataRedundancyType", b.redundancy),
        ("Comment", ""),
    ]
    return xml_response("BucketInfo", [("Bucket", info)])


async def get_bucket_location(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    b = ctx.storage.get_bucket(req.bucket)
    return OSSResponse(
        200, [("Content-Type", "application/xml")], xml.build_text("LocationConstraint", f"oss-{b.region}")
    )


async def get_bucket_acl(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    b = ctx.storage.get_bucket(req.bucket)
    return xml_response("AccessControlPolicy", [("Owner", _owner(ctx)), ("AccessControlList", [("Grant", b.acl)])])


async def put_bucket_acl(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    ctx.storage.update_bucket(req.bucket, acl=_acl_header(req, ""))
    return OSSResponse(200)


async def get_bucket_stat(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    stat = ctx.storage.bucket_stat(req.bucket)
    children = [
        ("Storage", stat.size),
        ("ObjectCount", stat.objects),
        ("MultipartUploadCount", stat.uploads),
        ("LastModifiedTime", int(stat.last_modified)),
    ]
    return xml_response("BucketStat", children)


async def list_object_versions(ctx: Context, req: OSSRequest) -> OSSResponse:
    """Versioning is not supported; an empty, well-formed list keeps SDK test teardowns working (§5.3 extras)."""
    require_owner(req)
    assert req.bucket is not None
    ctx.storage.get_bucket(req.bucket)
    return xml_response("ListVersionsResult", [("Name", req.bucket), ("IsTruncated", False)])


async def list_live_channels(ctx: Context, req: OSSRequest) -> OSSResponse:
    """No live channels: oss2's teardown iterates this outside try/except (§5.3 extras)."""
    require_owner(req)
    assert req.bucket is not None
    ctx.storage.get_bucket(req.bucket)
    children = [
        ("Prefix", req.param("prefix", "")),
        ("Marker", req.param("marker", "")),
        ("MaxKeys", 100),
        ("IsTruncated", False),
    ]
    return xml_response("ListLiveChannelResult", children)
