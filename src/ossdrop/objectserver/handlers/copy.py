"""CopyObject and DeleteMultipleObjects (§5.3)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import unquote

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_owner, require_write
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.handlers.listing import enc, url_encoding
from ossdrop.objectserver.handlers.objects import forbid_overwrite
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.protocol import xml
from ossdrop.protocol.conditions import check_preconditions
from ossdrop.protocol.names import check_object_name
from ossdrop.protocol.timefmt import iso8601
from ossdrop.services.objects import attrs_from_headers
from ossdrop.storage.base import ObjectAttrs, ObjectRecord


def _source(header: str) -> tuple[str, str]:
    path = header.split("?", 1)[0]
    path = path[1:] if path.startswith("/") else path
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise OSSError(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey",
            {"ArgumentName": "x-oss-copy-source"},
        )
    return unquote(bucket), unquote(key)


async def copy_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    """CopyObject: a hard link to the source blob (blobs are immutable), attributes per the metadata directive."""
    require_owner(req)
    assert req.bucket is not None and req.key is not None
    check_object_name(req.key)
    require_write(req, ctx.storage.get_bucket(req.bucket))
    src_bucket, src_key = _source(req.header("x-oss-copy-source"))
    source = ctx.storage.head_object(src_bucket, src_key)
    check_preconditions(req.headers, source.etag, source.last_modified, prefix="x-oss-copy-source-if-")
    attrs = _copied_attrs(req, source)
    blob_id = ctx.storage.clone_blob(source.blob_id)
    record = replace(
        source, bucket=req.bucket, key=req.key, blob_id=blob_id, last_modified=ctx.clock.now(), attrs=attrs
    )
    try:
        ctx.storage.put_object(record, forbid_overwrite=forbid_overwrite(req))
    except BaseException:
        ctx.storage.remove_blob(blob_id)
        raise
    body = [("ETag", f'"{record.etag}"'), ("LastModified", iso8601(record.last_modified))]
    response = xml_response("CopyObjectResult", body)
    response.headers += [("ETag", f'"{record.etag}"'), ("x-oss-hash-crc64ecma", str(record.crc64))]
    return response


def _copied_attrs(req: OSSRequest, source: ObjectRecord) -> ObjectAttrs:
    directive = req.header("x-oss-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise OSSError("InvalidArgument", "Invalid metadata directive.", {"ArgumentName": "x-oss-metadata-directive"})
    if directive == "REPLACE":
        return attrs_from_headers(req.headers, req.key or "")
    attrs = source.attrs
    acl = req.header("x-oss-object-acl")
    if acl:
        attrs = replace(attrs, acl=attrs_from_headers({"x-oss-object-acl": acl}, "").acl)
    else:
        attrs = replace(attrs, acl="default")
    return attrs


async def delete_multiple_objects(ctx: Context, req: OSSRequest) -> OSSResponse:
    """DeleteMultipleObjects, quiet or verbose; keys parsed leniently (§12 control characters)."""
    assert req.bucket is not None
    require_write(req, ctx.storage.get_bucket(req.bucket))
    request = xml.parse_delete(await req.read_body(2 * 1024 * 1024))
    for key in request.keys:
        ctx.storage.delete_object(req.bucket, key)
    url = url_encoding(req)
    children: list[tuple[str, str | int | bool | None | xml.Children]] = []
    if url:
        children.append(("EncodingType", "url"))
    if not request.quiet:
        children += [("Deleted", [("Key", enc(k, url))]) for k in request.keys]
    return xml_response("DeleteResult", children)
