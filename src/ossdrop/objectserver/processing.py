"""The store side of ``x-oss-process`` (oss-protocol.md §7, §8): GetObject processing, ``sys/saveas`` through
``POST ?x-oss-process`` and the bucket style API; :func:`install_processing` wires it into an app.

Handlers here only sequence: parse the spec, resolve a style, ask :class:`ProcessingService` for the derived
result, answer. Processed answers carry the output's Content-Type and never the source's CRC header (§5.2 bad
case 3, §7.1): oss2 would compare it with the processed bytes.
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_read, require_write
from ossdrop.objectserver.app import ObjectServer
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.handlers import styles as style_handlers
from ossdrop.objectserver.headers import apply_overrides
from ossdrop.objectserver.http import FileBody, OSSRequest, OSSResponse
from ossdrop.objectserver.routing import Operation, register
from ossdrop.protocol.names import check_object_name
from ossdrop.protocol.process_spec import ProcessSpec, parse_process
from ossdrop.protocol.timefmt import http_date
from ossdrop.services import styles
from ossdrop.services.processing import Derived, DerivedCache, ProcessingService
from ossdrop.storage.base import ObjectRecord

CACHE_DIR = "derived"
CACHE_MAX_BYTES = 1 << 30  # derived results kept per store root; oldest go first past this
_IN_MEMORY = 4 << 20  # cached results up to this size are read whole, larger ones streamed from the file
_MAX_FORM = 64 * 1024


class StoreProcessor:
    """The :class:`~ossdrop.objectserver.context.Processor` of the embedded store."""

    def __init__(self, service: ProcessingService) -> None:
        self.service = service

    async def get(self, ctx: Context, req: OSSRequest, record: ObjectRecord, process: str) -> OSSResponse:
        """GetObject with ``x-oss-process``: access and preconditions were checked by the caller."""
        spec = resolve_spec(ctx, record.bucket, process)
        if spec.save_as is not None:
            raise OSSError("InvalidArgument", "sys/saveas is only allowed through POST ?x-oss-process.")
        derived = await self.service.render(record, spec)
        return processed_response(req, record, derived)


def resolve_spec(ctx: Context, bucket: str, process: str) -> ProcessSpec:
    """Parse an ``x-oss-process`` value and replace ``style/<name>`` by the bucket's style (§7.1)."""
    return styles.resolve(ctx.storage, bucket, parse_process(process))


def processed_response(req: OSSRequest, record: ObjectRecord, derived: Derived) -> OSSResponse:
    """200 with the result's type and the source's Last-Modified; no ETag/CRC of the source (§7.1)."""
    headers = [("Content-Type", derived.content_type), ("Last-Modified", http_date(record.last_modified))]
    headers = apply_overrides(req, headers)
    if derived.body is not None or derived.length <= _IN_MEMORY:
        return OSSResponse(200, headers, derived.read())
    return OSSResponse(200, headers, file=FileBody(derived.path, derived.offset, derived.length))


async def process_object(ctx: Context, req: OSSRequest) -> OSSResponse:
    """``POST /<bucket>/<key>?x-oss-process`` with body ``x-oss-process=<spec>|sys/saveas,o_..,b_..`` (§7.2)."""
    processor = ctx.processor
    if not isinstance(processor, StoreProcessor) or req.bucket is None or req.key is None:
        raise OSSError("NotImplemented", "Processing is not available.")
    record = _record_or_none(ctx, req.bucket, req.key)
    if req.access_key is None:
        require_read(req, ctx.storage.get_bucket(req.bucket), record)
    if record is None:
        record = ctx.storage.head_object(req.bucket, req.key)  # raises NoSuchBucket / NoSuchKey
    spec = resolve_spec(ctx, req.bucket, _form_value(await req.read_body(_MAX_FORM)))
    if spec.save_as is None:
        raise OSSError("InvalidArgument", "POST ?x-oss-process needs a |sys/saveas,o_<key> tail.")
    target_bucket, target_key = spec.save_as.bucket or req.bucket, spec.save_as.key
    check_object_name(target_key)
    require_write(req, ctx.storage.get_bucket(target_bucket))
    size = await processor.service.save_as(record, spec, bucket=target_bucket, key=target_key, now=ctx.clock.now())
    document = {"bucket": target_bucket, "fileSize": size, "object": target_key, "status": "OK"}
    return OSSResponse(200, [("Content-Type", "application/json")], json.dumps(document).encode())


def _record_or_none(ctx: Context, bucket: str, key: str) -> ObjectRecord | None:
    try:
        return ctx.storage.head_object(bucket, key)
    except OSSError:
        return None


def _form_value(body: bytes) -> str:
    """The ``x-oss-process`` field of the body; oss2 and the V2 SDK send it unencoded, a form may encode it."""
    text = body.decode("utf-8", "replace").strip()
    name, sep, value = text.partition("=")
    if not sep or name != "x-oss-process":
        raise OSSError(
            "InvalidArgument", "The body must be x-oss-process=<process>.", {"ArgumentName": "x-oss-process"}
        )
    return unquote(value) if "%" in value else value


def install_processing(app: ObjectServer) -> None:
    """Give ``app`` a processor with a derived cache under ``<root>/derived``, and route the style API and
    ``POST ?x-oss-process``."""
    cache = DerivedCache(os.path.join(app.ctx.config.root, CACHE_DIR), CACHE_MAX_BYTES)
    app.ctx.processor = StoreProcessor(ProcessingService(app.ctx.storage, cache))
    register("POST", "object", "x-oss-process", Operation("ProcessObject", process_object))
    register("PUT", "bucket", "style", Operation("PutStyle", style_handlers.put_style))
    register("GET", "bucket", "style", Operation("GetStyle", style_handlers.get_style, bucket_first=True))
    register("DELETE", "bucket", "style", Operation("DeleteStyle", style_handlers.delete_style))
