"""Multipart upload: Initiate, UploadPart, Complete, Abort, ListParts, ListMultipartUploads (§5.3)."""

from __future__ import annotations

import asyncio

from ossdrop.core.checksums import content_md5_b64
from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_owner, require_write
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.handlers.listing import enc, url_encoding
from ossdrop.objectserver.handlers.objects import forbid_overwrite
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.protocol import xml
from ossdrop.protocol.names import check_object_name
from ossdrop.protocol.params import int_param
from ossdrop.protocol.timefmt import iso8601
from ossdrop.services import multipart as svc
from ossdrop.services.objects import attrs_from_headers, expected_md5, receive_blob
from ossdrop.storage.base import Upload
from ossdrop.storage.filesystem import new_upload_id

MAX_PART_SIZE = 5 * 1024**3


def _upload(ctx: Context, req: OSSRequest) -> Upload:
    assert req.bucket is not None and req.key is not None
    require_write(req, ctx.storage.get_bucket(req.bucket))
    return ctx.storage.get_upload(req.bucket, req.key, req.param("uploadId") or "")


async def initiate_multipart_upload(ctx: Context, req: OSSRequest) -> OSSResponse:
    assert req.bucket is not None and req.key is not None
    check_object_name(req.key)
    require_write(req, ctx.storage.get_bucket(req.bucket))
    attrs = attrs_from_headers(req.headers, req.key)
    upload = Upload(new_upload_id(), req.bucket, req.key, ctx.clock.now(), attrs)
    ctx.storage.create_upload(upload)
    url = url_encoding(req)
    children: list[tuple[str, str | int | bool | None | xml.Children]] = [
        ("Bucket", req.bucket),
        ("Key", enc(req.key, url)),
        ("UploadId", upload.upload_id),
    ]
    if url:
        children.append(("EncodingType", "url"))
    return xml_response("InitiateMultipartUploadResult", children)


async def upload_part(ctx: Context, req: OSSRequest) -> OSSResponse:
    """UploadPart: a part is a blob; uploading the same number again replaces it."""
    number = svc.part_number(req.param("partNumber"))
    upload = _upload(ctx, req)
    promised = expected_md5(req.headers)
    blob = await receive_blob(ctx.storage, req.stream(), limit=MAX_PART_SIZE)
    if promised is not None and promised != blob.md5:
        ctx.storage.remove_blob(blob.blob_id)
        raise OSSError("InvalidDigest", "The Content-MD5 you specified did not match what we received.")
    try:
        part = ctx.storage.put_part(upload, number, blob)
    except BaseException:
        ctx.storage.remove_blob(blob.blob_id)
        raise
    headers = [("ETag", f'"{part.etag}"'), ("x-oss-hash-crc64ecma", str(part.crc64))]
    headers.append(("Content-MD5", content_md5_b64(blob.md5)))  # §12: UploadPart answers Content-MD5 too
    return OSSResponse(200, headers)


async def complete_multipart_upload(ctx: Context, req: OSSRequest) -> OSSResponse:
    upload = _upload(ctx, req)
    complete_all = req.header("x-oss-complete-all").lower() == "yes"
    body = await req.read_body(4 * 1024 * 1024)
    uploaded = ctx.storage.list_parts(upload)
    chosen = svc.choose_parts(uploaded, body, complete_all=complete_all)
    if req.header("x-oss-object-acl"):
        upload = svc.with_acl(upload, req.header("x-oss-object-acl"))
    hook = ctx.callback_hook
    callback = hook.prepare(req) if hook is not None else None
    etag = svc.multipart_etag_of(chosen)
    record = await asyncio.to_thread(
        ctx.storage.complete_upload, upload, chosen, etag=etag, forbid_overwrite=forbid_overwrite(req)
    )
    url = url_encoding(req)
    children: list[tuple[str, str | int | bool | None | xml.Children]] = []
    if url:
        children.append(("EncodingType", "url"))
    children += [
        ("Location", f"{ctx.config.endpoint}/{upload.bucket}/{enc(upload.key, True)}"),
        ("Bucket", upload.bucket),
        ("Key", enc(upload.key, url)),
        ("ETag", f'"{record.etag}"'),
    ]
    response = xml_response("CompleteMultipartUploadResult", children)
    response.headers += [("ETag", f'"{record.etag}"'), ("x-oss-hash-crc64ecma", str(record.crc64))]
    if hook is not None and callback is not None:
        response = await hook.run(ctx, req, callback, record, "CompleteMultipartUpload", response)
    return response


async def abort_multipart_upload(ctx: Context, req: OSSRequest) -> OSSResponse:
    upload = _upload(ctx, req)
    await asyncio.to_thread(ctx.storage.abort_upload, upload)
    return OSSResponse(204)


async def list_parts(ctx: Context, req: OSSRequest) -> OSSResponse:
    upload = _upload(ctx, req)
    marker = int_param(req.param("part-number-marker"), "part-number-marker", 0, 0, 10000)
    max_parts = int_param(req.param("max-parts"), "max-parts", 1000, 1, 1000)
    parts = [p for p in ctx.storage.list_parts(upload) if p.number > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    url = url_encoding(req)
    children: list[tuple[str, str | int | bool | None | xml.Children]] = [
        ("Bucket", upload.bucket),
        ("Key", enc(upload.key, url)),
        ("UploadId", upload.upload_id),
        ("StorageClass", upload.attrs.storage_class),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page[-1].number if page else marker),
        ("MaxParts", max_parts),
        ("IsTruncated", truncated),
    ]
    if url:
        children.append(("EncodingType", "url"))
    for p in page:
        children.append(
            (
                "Part",
                [
                    ("PartNumber", p.number),
                    ("LastModified", iso8601(p.last_modified)),
                    ("ETag", f'"{p.etag}"'),
                    ("HashCrc64ecma", str(p.crc64)),
                    ("Size", p.size),
                ],
            )
        )
    return xml_response("ListPartsResult", children)


async def list_multipart_uploads(ctx: Context, req: OSSRequest) -> OSSResponse:
    require_owner(req)
    assert req.bucket is not None
    page = svc.uploads_page(ctx.storage.list_uploads(req.bucket), req.param)
    url = url_encoding(req)
    children: list[tuple[str, str | int | bool | None | xml.Children]] = [
        ("Bucket", req.bucket),
        ("KeyMarker", enc(page.key_marker, url)),
        ("UploadIdMarker", page.upload_id_marker),
        ("NextKeyMarker", enc(page.next_key_marker, url)),
        ("NextUploadIdMarker", page.next_upload_id_marker),
        ("Delimiter", enc(page.delimiter, url)),
        ("Prefix", enc(page.prefix, url)),
        ("MaxUploads", page.max_uploads),
        ("IsTruncated", page.truncated),
    ]
    if url:
        children.append(("EncodingType", "url"))
    children += [
        (
            "Upload",
            [
                ("Key", enc(u.key, url)),
                ("UploadId", u.upload_id),
                ("StorageClass", u.attrs.storage_class),
                ("Initiated", iso8601(u.initiated)),
            ],
        )
        for u in page.uploads
    ]
    children += [("CommonPrefixes", [("Prefix", enc(p, url))]) for p in page.prefixes]
    return xml_response("ListMultipartUploadsResult", children)
