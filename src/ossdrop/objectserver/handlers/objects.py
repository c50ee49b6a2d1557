"""Object operations: PutObject, GetObject, HeadObject, GetObjectMeta, DeleteObject, object ACLs (§5.3)."""

from __future__ import annotations

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_owner, require_read, require_write
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.headers import apply_overrides, meta_headers, object_headers
from ossdrop.objectserver.http import FileBody, OSSRequest, OSSResponse, xml_response
from ossdrop.protocol.conditions import check_preconditions
from ossdrop.protocol.names import check_object_name
from ossdrop.protocol.ranges import resolve_range
from ossdrop.services import objects as svc
from ossdrop.storage.base import ObjectRecord


def _names(req: OSSRequest) -> tuple[str, str]:
    assert req.bucket is not None and req.key is not None
    return req.bucket, req.key


def forbid_overwrite(req: OSSRequest) -> bool:
    return req.header("x-oss-forbid-overwrite").lower() == "true"


async def put_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    """PutObject: stream the body to a blob, check Content-MD5, bind it to the key (then the callback, if any)."""
    bucket_name, key = _names(req)
    check_object_name(key)
    require_write(req, ctx.storage.get_bucket(bucket_name))
    attrs = svc.attrs_from_headers(req.headers, key)
    promised = svc.expected_md5(req.headers)
    forbid = forbid_overwrite(req)
    hook = ctx.callback_hook
    callback = hook.prepare(req) if hook is not None else None
    if forbid:
        refuse_existing(ctx, bucket_name, key)
    blob = await svc.receive_blob(ctx.storage, req.stream(), limit=ctx.config.max_object_size)
    record = svc.commit_put(
        ctx.storage, bucket_name, key, blob, attrs, now=ctx.clock.now(), promised_md5=promised, forbid_overwrite=forbid
    )
    response = OSSResponse(200, written_headers(record))
    if hook is not None and callback is not None:
        response = await hook.run(ctx, req, callback, record, "PutObject", response)
    return response


def refuse_existing(ctx: Context, bucket: str, key: str) -> None:
    """``x-oss-forbid-overwrite``: refuse before any byte is received (the commit checks again, atomically)."""
    try:
        ctx.storage.head_object(bucket, key)
    except OSSError as err:
        if err.code == "NoSuchKey":
            return
        raise
    raise OSSError("FileAlreadyExists", extra={"Key": key})


def written_headers(record: ObjectRecord) -> list[tuple[str, str]]:
    headers = [("ETag", f'"{record.etag}"'), ("x-oss-hash-crc64ecma", str(record.crc64))]
    if record.content_md5:
        headers.append(("Content-MD5", record.content_md5))
    return headers


def _readable(ctx: Context, req: OSSRequest) -> ObjectRecord:
    bucket_name, key = _names(req)
    bucket = ctx.storage.get_bucket(bucket_name)
    if req.access_key is None:
        require_read(req, bucket, _record_or_none(ctx, bucket_name, key))
    return ctx.storage.head_object(bucket_name, key)


def _record_or_none(ctx: Context, bucket: str, key: str) -> ObjectRecord | None:
    try:
        return ctx.storage.head_object(bucket, key)
    except OSSError:
        return None


async def get_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    """GetObject with conditions, one range, ``response-*`` overrides and ``x-oss-process``."""
    record = _readable(ctx, req)
    check_preconditions(req.headers, record.etag, record.last_modified)
    process = req.param("x-oss-process")
    if process is not None:
        if ctx.processor is None:
            raise OSSError("NotImplemented", "Processing is not available.")
        return await ctx.processor.get(ctx, req, record, process)
    standard = req.header("x-oss-range-behavior").lower() == "standard"
    byte_range = resolve_range(req.header("range"), record.size, standard=standard)
    path = ctx.storage.blob_path(record.blob_id)
    if byte_range is None:
        headers = apply_overrides(req, object_headers(record))
        return OSSResponse(200, headers, file=FileBody(path, 0, record.size))
    # §5.2 trap 7: no whole-object CRC on a 206, the V2 SDK would compare it with the part's.
    headers = apply_overrides(req, object_headers(record, with_crc=False))
    headers.append(("Content-Range", byte_range.content_range()))
    return OSSResponse(206, headers, file=FileBody(path, byte_range.start, byte_range.length))


async def head_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    record = _readable(ctx, req)
    check_preconditions(req.headers, record.etag, record.last_modified)
    return OSSResponse(200, object_headers(record), content_length=record.size)


async def get_object_meta(ctx: Context, req: OSSRequest) -> OSSResponse:
    record = _readable(ctx, req)
    return OSSResponse(200, meta_headers(record), content_length=0)


async def delete_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    """DeleteObject: 204 whether or not the key existed (§5.3)."""
    bucket_name, key = _names(req)
    require_write(req, ctx.storage.get_bucket(bucket_name))
    ctx.storage.delete_object(bucket_name, key)
    return OSSResponse(204)


async def get_object_acl(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    bucket_name, key = _names(req)
    record = ctx.storage.head_object(bucket_name, key)
    owner = [("ID", ctx.config.owner_id), ("DisplayName", ctx.config.owner_id)]
    return xml_response("AccessControlPolicy", [("Owner", owner), ("AccessControlList", [("Grant", record.attrs.acl)])])


async def put_object_acl(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    bucket_name, key = _names(req)
    acl = req.header("x-oss-object-acl")
    if acl not in svc.OBJECT_ACLS:
        raise OSSError("InvalidArgument", "no such object access control exists", {"ArgumentName": "x-oss-object-acl"})
    ctx.storage.update_object(bucket_name, key, acl=acl)
    return OSSResponse(200)
