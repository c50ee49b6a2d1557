"""The route table: (method, level, sub-resource) -> operation, in the manner of minio's api-router.

``level`` is ``service`` (``/``), ``bucket`` (``/<bucket>/``) or ``object`` (``/<bucket>/<key>``). The
sub-resource is the first query parameter that names one (§3.1 lists them); plain parameters such as ``prefix``
never select a route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.handlers import buckets, copy, listing, multipart, objects
from ossdrop.objectserver.http import OSSRequest, OSSResponse

Handler = Callable[[Context, OSSRequest], Awaitable[OSSResponse]]

# Order matters: ?uploadId&partNumber is UploadPart, not a list of uploads.
SUBRESOURCES = (
    "uploadId",
    "uploads",
    "acl",
    "bucketInfo",
    "location",
    "stat",
    "delete",
    "cors",
    "style",
    "objectMeta",
    "versions",
    "live",
    "x-oss-process",
)


@dataclass(frozen=True)
class Operation:
    """A protocol operation. ``bucket_first``: a missing bucket answers NoSuchBucket before authentication
    (real OSS does this for read-style calls, §12 "Error order"). ``form_auth``: authenticated by form fields."""

    name: str
    handler: Handler
    bucket_first: bool = False
    form_auth: bool = False


def _op(name: str, handler: Handler, **flags: bool) -> Operation:
    return Operation(name, handler, **flags)


async def _put_or_copy(ctx: Context, req: OSSRequest) -> OSSResponse:
    """PUT on an object is CopyObject when it names a source (§5.3), else PutObject."""
    if req.header("x-oss-copy-source"):
        return await copy.copy_object(ctx, req)
    return await objects.put_object(ctx, req)


ROUTES: dict[tuple[str, str, str], Operation] = {
    ("GET", "service", ""): _op("ListBuckets", buckets.list_buckets),
    ("PUT", "bucket", ""): _op("PutBucket", buckets.put_bucket),
    ("DELETE", "bucket", ""): _op("DeleteBucket", buckets.delete_bucket),
    ("GET", "bucket", ""): _op("ListObjects", listing.list_objects, bucket_first=True),
    ("GET", "bucket", "bucketInfo"): _op("GetBucketInfo", buckets.get_bucket_info, bucket_first=True),
    ("GET", "bucket", "location"): _op("GetBucketLocation", buckets.get_bucket_location, bucket_first=True),
    ("GET", "bucket", "stat"): _op("GetBucketStat", buckets.get_bucket_stat, bucket_first=True),
    ("GET", "bucket", "acl"): _op("GetBucketAcl", buckets.get_bucket_acl, bucket_first=True),
    ("PUT", "bucket", "acl"): _op("PutBucketAcl", buckets.put_bucket_acl),
    ("GET", "bucket", "versions"): _op("ListObjectVersions", buckets.list_object_versions, bucket_first=True),
    ("GET", "bucket", "live"): _op("ListLiveChannel", buckets.list_live_channels, bucket_first=True),
    ("GET", "bucket", "uploads"): _op("ListMultipartUploads", multipart.list_multipart_uploads, bucket_first=True),
    ("POST", "bucket", "delete"): _op("DeleteMultipleObjects", copy.delete_multiple_objects),
    ("PUT", "object", ""): _op("PutObject", _put_or_copy),
    ("GET", "object", ""): _op("GetObject", objects.get_object, bucket_first=True),
    ("GET", "object", "x-oss-process"): _op("GetObject", objects.get_object, bucket_first=True),
    ("HEAD", "object", ""): _op("HeadObject", objects.head_object, bucket_first=True),
    ("HEAD", "object", "x-oss-process"): _op("HeadObject", objects.head_object, bucket_first=True),
    ("HEAD", "object", "objectMeta"): _op("GetObjectMeta", objects.get_object_meta, bucket_first=True),
    ("GET", "object", "objectMeta"): _op("GetObjectMeta", objects.get_object_meta, bucket_first=True),
    ("DELETE", "object", ""): _op("DeleteObject", objects.delete_object),
    ("GET", "object", "acl"): _op("GetObjectAcl", objects.get_object_acl, bucket_first=True),
    ("PUT", "object", "acl"): _op("PutObjectAcl", objects.put_object_acl),
    ("POST", "object", "uploads"): _op("InitiateMultipartUpload", multipart.initiate_multipart_upload),
    ("PUT", "object", "uploadId"): _op("UploadPart", multipart.upload_part),
    ("POST", "object", "uploadId"): _op("CompleteMultipartUpload", multipart.complete_multipart_upload),
    ("DELETE", "object", "uploadId"): _op("AbortMultipartUpload", multipart.abort_multipart_upload),
    ("GET", "object", "uploadId"): _op("ListParts", multipart.list_parts, bucket_first=True),
}


def register(method: str, level: str, subresource: str, operation: Operation) -> None:
    """Add an operation (used by feature modules such as PostObject, CORS and styles)."""
    ROUTES[(method, level, subresource)] = operation


def level_of(req: OSSRequest) -> str:
    if req.bucket is None:
        return "service"
    return "bucket" if req.key is None else "object"


def subresource_of(req: OSSRequest) -> str:
    names = {k for k, _ in req.query}
    return next((s for s in SUBRESOURCES if s in names), "")


def resolve(req: OSSRequest) -> Operation:
    """The operation for a request; an unknown combination is ``MethodNotAllowed``/``NotImplemented``."""
    level, sub = level_of(req), subresource_of(req)
    found = ROUTES.get((req.method, level, sub))
    if found is not None:
        return found
    if any(key[0] == req.method and key[1] == level for key in ROUTES):
        raise OSSError("NotImplemented", f"The sub-resource {sub!r} is not implemented for {req.method}.")
    raise OSSError("MethodNotAllowed", extra={"Method": req.method, "ResourceType": level.capitalize()})
