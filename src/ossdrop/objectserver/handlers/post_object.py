"""PostObject: browser form upload to ``POST /<bucket>`` (oss-protocol.md §1), with an optional callback (§2).

The form is parsed while it streams (:mod:`ossdrop.objectserver.post_form`). When the ``file`` part begins, the
fields before it are authenticated (§1.5/§1.6), the policy is checked against the values as sent (§1.4: before
``${filename}`` is expanded), the callback is validated and the object's attributes are built; only then do file
bytes flow, straight into a blob on disk, cut off at the policy's maximum. Any failure discards the blob, so a
rejected form stores nothing. Header and URL signatures are ignored (§1.1); an unsigned form is anonymous and allowed
only on a ``public-read-write`` bucket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.handlers.objects import refuse_existing, written_headers
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.objectserver.post_form import PostForm, field, parse_post_form
from ossdrop.protocol.callback import CallbackSpec, parse_callback
from ossdrop.protocol.names import check_object_name
from ossdrop.protocol.post_policy import Policy, check_policy, check_size, decode_policy, lower_fields
from ossdrop.protocol.post_policy import verify_post_signature as verify_signature
from ossdrop.services import objects as svc
from ossdrop.storage.base import BlobWriter, Bucket, ObjectAttrs, ObjectRecord


@dataclass
class _Accepted:
    """What the checks at the start of the file part decided; ``writer`` receives the file bytes."""

    key: str
    attrs: ObjectAttrs
    policy: Policy | None
    callback: CallbackSpec | None
    forbid_overwrite: bool
    writer: BlobWriter
    limit: int
    size: int = 0

    def write(self, data: bytes) -> None:
        """The parser's sink: stops the stream as soon as the file outgrows the policy or the 5 GB limit."""
        self.size += len(data)
        if self.size > self.limit:
            raise OSSError("EntityTooLarge", ec="0006-00000003")
        self.writer.write(data)


class _PostUpload:
    """One PostObject request's state: :meth:`open_file` is the parser hook, :meth:`commit` binds the blob."""

    def __init__(self, ctx: Context, req: OSSRequest, bucket: Bucket) -> None:
        self.ctx, self.req, self.bucket = ctx, req, bucket
        self.accepted: _Accepted | None = None

    def open_file(self, form: PostForm) -> _Accepted:
        """Authenticate, check the policy (without size), validate the callback and attributes, open the blob."""
        now = self.ctx.clock.now()
        access_key = verify_signature(form.fields, lookup_secret=self.ctx.config.credentials.get, now=now)
        policy: Policy | None = None
        if access_key is None:
            if self.bucket.acl != "public-read-write":
                raise OSSError("AccessDenied", "Anonymous access is forbidden for this operation.")
        else:
            policy = decode_policy(field(form, "policy") or "")
            check_policy(policy, bucket=self.bucket.name, fields=form.fields, size=None, now=now)
        callback = self._callback(form)
        key = (field(form, "key") or "").replace("${filename}", form.filename or "")
        check_object_name(key)
        attrs = svc.attrs_from_headers(lower_fields(form.fields), key, content_type=_content_type(form))
        forbid = (field(form, "x-oss-forbid-overwrite") or "").lower() == "true"
        if forbid:
            refuse_existing(self.ctx, self.bucket.name, key)
        limit = self.ctx.config.max_object_size
        if policy is not None and policy.max_size is not None:
            limit = min(limit, policy.max_size)
        writer = self.ctx.storage.new_blob()
        self.accepted = _Accepted(key, attrs, policy, callback, forbid, writer, limit)
        return self.accepted

    def _callback(self, form: PostForm) -> CallbackSpec | None:
        raw = field(form, "callback")
        if not raw:
            return None
        spec = parse_callback(raw, form_fields=form.fields)
        if spec is not None and self.ctx.callback_hook is None:
            raise OSSError("NotImplemented", "Upload callbacks are not available.")
        return spec

    async def commit(self, form: PostForm) -> ObjectRecord:
        """Check the final size against content-length-range, finish the blob and bind it to the key."""
        up = self.accepted
        assert up is not None  # parse_post_form fails unless the file part was opened
        if up.policy is not None:
            check_size(up.policy, form.file_size)
        blob = await asyncio.to_thread(up.writer.finish)
        return svc.commit_put(
            self.ctx.storage, self.bucket.name, up.key, blob, up.attrs,
            now=self.ctx.clock.now(), promised_md5=None, forbid_overwrite=up.forbid_overwrite,
        )  # fmt: skip

    def discard(self) -> None:
        if self.accepted is not None:
            self.accepted.writer.discard()


def _content_type(form: PostForm) -> str:
    """§1.2: ``x-oss-content-type`` field, then the ``Content-Type`` field, then the file part's Content-Type."""
    return field(form, "x-oss-content-type") or field(form, "content-type") or form.file_content_type or ""


async def post_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    """PostObject (§1): 204 by default, 200/201 per ``success_action_status``, 303 to ``success_action_redirect``;
    with a callback, the §2.4 outcome (200 relayed JSON or 203 ``CallbackFailed``) instead."""
    assert req.bucket is not None
    upload = _PostUpload(ctx, req, ctx.storage.get_bucket(req.bucket))
    try:
        form = await parse_post_form(req.header("content-type"), req.stream(), upload.open_file)
        record = await upload.commit(form)
    except BaseException:
        upload.discard()
        raise
    assert upload.accepted is not None
    ok = success_response(ctx, form, record)
    callback, hook = upload.accepted.callback, ctx.callback_hook
    if callback is not None and hook is not None:
        return await hook.run(ctx, req, callback, record, "PostObject", ok)
    return ok


def success_response(ctx: Context, form: PostForm, record: ObjectRecord) -> OSSResponse:
    """§1.7 success: redirect, 201 ``PostResponse`` XML, 200 empty, or 204 empty (the default for any other value)."""
    headers = written_headers(record)
    redirect = field(form, "success_action_redirect")
    if redirect:
        query = urlencode({"bucket": record.bucket, "key": record.key, "etag": f'"{record.etag}"'})
        headers.append(("Location", redirect + ("&" if "?" in redirect else "?") + query))
        return OSSResponse(303, headers)
    status = field(form, "success_action_status")
    if status == "201":
        location = f"{ctx.config.endpoint}/{record.bucket}/{quote(record.key, safe='/')}"
        children = [("Bucket", record.bucket), ("Location", location), ("Key", record.key)]
        response = xml_response("PostResponse", [*children, ("ETag", f'"{record.etag}"')], 201)
        response.headers += headers
        return response
    return OSSResponse(200 if status == "200" else 204, headers)
