"""Bucket style API (oss-protocol.md §7.1 "Styles"): PutStyle, GetStyle, ListStyle, DeleteStyle.

Wire format as oss2 (``put_bucket_style`` ... ``xml_utils.parse_get_bucket_style_result``) and the V2 SDK
(``operations/bucket_style.py``) send and parse it: ``?style&styleName=<name>`` with a ``<Style><Content>``
body; answers ``<Style>`` (Name, Content, Category, CreateTime, LastModifyTime) and ``<StyleList><Style>...``.
"""

from __future__ import annotations

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_owner
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.protocol import xml
from ossdrop.protocol.timefmt import http_date
from ossdrop.services import styles
from ossdrop.services.styles import Style

_MAX_BODY = 64 * 1024


def _bucket(ctx: Context, req: OSSRequest) -> str:
    require_owner(req)
    assert req.bucket is not None
    ctx.storage.get_bucket(req.bucket)
    return req.bucket


def _children(style: Style) -> xml.Children:
    return [
        ("Name", style.name),
        ("Content", style.content),
        ("Category", "image"),  # the V2 SDK reads it; every style here is an image style
        ("CreateTime", http_date(style.created)),
        ("LastModifyTime", http_date(style.modified)),
    ]


async def put_style(ctx: Context, req: OSSRequest) -> OSSResponse:
    """PutStyle: ``PUT /<bucket>/?style&styleName=<name>`` with ``<Style><Content>image/...</Content></Style>``."""
    bucket = _bucket(ctx, req)
    name = styles.check_name(req.param("styleName"))
    root = xml.parse(await req.read_body(_MAX_BODY))
    if root.tag != "Style":
        raise OSSError("MalformedXML")
    styles.put_style(ctx.storage, bucket, name, xml.text(root, "Content").strip(), now=ctx.clock.now())
    return OSSResponse(200)


async def get_style(ctx: Context, req: OSSRequest) -> OSSResponse:
    """GetStyle with ``styleName`` (404 ``NoSuchStyle`` when unknown), else ListStyle."""
    bucket = _bucket(ctx, req)
    name = req.param("styleName")
    if name is None:
        found = styles.list_styles(ctx.storage, bucket)
        return xml_response("StyleList", [("Style", _children(style)) for style in found])
    return xml_response("Style", _children(styles.get_style(ctx.storage, bucket, name)))


async def delete_style(ctx: Context, req: OSSRequest) -> OSSResponse:
    """DeleteStyle: 204."""
    bucket = _bucket(ctx, req)
    styles.delete_style(ctx.storage, bucket, styles.check_name(req.param("styleName")))
    return OSSResponse(204)
