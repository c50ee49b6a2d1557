"""Bucket CORS (oss-protocol.md §12 "CORS"): PutBucketCors, GetBucketCors, DeleteBucketCors, the OPTIONS preflight
and the CORS headers added to ordinary responses, so a page on another origin can post a form and read the reply.

Rules are kept as JSON in the bucket's ``cors`` config document. A rule applies to a request when its origin matches
one ``AllowedOrigin`` (one ``*`` wildcard allowed), its method is one of ``AllowedMethod`` and, for a preflight, every
requested header matches an ``AllowedHeader`` (case-insensitive, one ``*`` allowed). The first such rule wins.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from xml.etree.ElementTree import Element  # noqa: S405 - a type only; parsing goes through defusedxml

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.access import require_owner
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.http import OSSRequest, OSSResponse, xml_response
from ossdrop.protocol import xml

log = logging.getLogger("ossdrop.store")
CONFIG_KIND = "cors"
MAX_RULES = 10  # OSS: at most 10 CORS rules per bucket
METHODS = ("GET", "PUT", "DELETE", "POST", "HEAD")
_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


@dataclass(frozen=True)
class CorsRule:
    """One ``CORSRule``; ``allowed_headers`` are stored lower-cased (GetBucketCors returns them so, §12)."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None


@dataclass(frozen=True)
class CorsConfig:
    """A bucket's rules in document order and ``ResponseVary``."""

    rules: tuple[CorsRule, ...]
    response_vary: bool = False


def _invalid(message: str) -> OSSError:
    return OSSError("InvalidArgument", message)


def _wildcard(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value) is not None


def _parse_rule(node: Element) -> CorsRule:
    origins = tuple(e.text.strip() for e in node.findall("AllowedOrigin") if e.text and e.text.strip())
    methods = tuple(e.text.strip() for e in node.findall("AllowedMethod") if e.text and e.text.strip())
    headers = tuple(e.text.strip().lower() for e in node.findall("AllowedHeader") if e.text and e.text.strip())
    exposes = tuple(e.text.strip() for e in node.findall("ExposeHeader") if e.text and e.text.strip())
    if not origins or not methods:
        raise _invalid("A CORSRule needs at least one AllowedOrigin and one AllowedMethod.")
    if any(m not in METHODS for m in methods):
        raise _invalid(f"AllowedMethod must be one of {', '.join(METHODS)}.")
    if any(o.count("*") > 1 for o in origins) or any(h.count("*") > 1 for h in headers):
        raise _invalid("AllowedOrigin and AllowedHeader may contain at most one wildcard '*'.")
    max_age = xml.text(node, "MaxAgeSeconds").strip()
    if max_age and not (max_age.isascii() and max_age.isdigit()):
        raise _invalid("MaxAgeSeconds must be a non-negative integer.")
    return CorsRule(origins, methods, headers, exposes, int(max_age) if max_age else None)


def parse_cors_xml(body: bytes) -> CorsConfig:
    """A PutBucketCors body; ``MalformedXML`` when it is not a CORSConfiguration, ``InvalidArgument`` for bad rules."""
    root = xml.parse(body)
    if root.tag != "CORSConfiguration":
        raise OSSError("MalformedXML")
    rules = tuple(_parse_rule(n) for n in root.findall("CORSRule"))
    if not rules or len(rules) > MAX_RULES:
        raise _invalid(f"A CORS configuration holds between 1 and {MAX_RULES} rules.")
    return CorsConfig(rules, xml.text(root, "ResponseVary").strip().lower() == "true")


def load_config(ctx: Context, bucket: str) -> CorsConfig | None:
    """The stored rules of ``bucket``, or None when it has none."""
    raw = ctx.storage.get_config(bucket, CONFIG_KIND)
    if raw is None:
        return None
    doc = json.loads(raw)
    rules = tuple(
        CorsRule(
            tuple(r["allowed_origins"]),
            tuple(r["allowed_methods"]),
            tuple(r["allowed_headers"]),
            tuple(r["expose_headers"]),
            r["max_age_seconds"],
        )
        for r in doc["rules"]
    )
    return CorsConfig(rules, bool(doc["response_vary"]))


async def put_bucket_cors(ctx: Context, req: OSSRequest) -> OSSResponse:
    """PutBucketCors: replaces every rule of the bucket."""
    require_owner(req)
    assert req.bucket is not None
    config = parse_cors_xml(await req.read_body(64 * 1024))
    ctx.storage.put_config(req.bucket, CONFIG_KIND, json.dumps(asdict(config)))
    return OSSResponse(200)


async def get_bucket_cors(ctx: Context, req: OSSRequest) -> OSSResponse:
    """GetBucketCors: the rules (AllowedHeader lower-cased) and ResponseVary; 404 ``NoSuchCORSConfiguration``."""
    require_owner(req)
    assert req.bucket is not None
    config = load_config(ctx, req.bucket)
    if config is None:
        raise OSSError("NoSuchCORSConfiguration", extra={"BucketName": req.bucket})
    children: list[tuple[str, str | int | bool | None | xml.Children]] = []
    for rule in config.rules:
        items: list[tuple[str, str | int | bool | None | xml.Children]] = []
        items += [("AllowedOrigin", o) for o in rule.allowed_origins]
        items += [("AllowedMethod", m) for m in rule.allowed_methods]
        items += [("AllowedHeader", h) for h in rule.allowed_headers]
        items += [("ExposeHeader", h) for h in rule.expose_headers]
        if rule.max_age_seconds is not None:
            items.append(("MaxAgeSeconds", rule.max_age_seconds))
        children.append(("CORSRule", items))
    children.append(("ResponseVary", config.response_vary))
    return xml_response("CORSConfiguration", children)


async def delete_bucket_cors(ctx: Context, req: OSSRequest) -> OSSResponse:
    """DeleteBucketCors: 204 whether or not rules existed (§12)."""
    require_owner(req)
    assert req.bucket is not None
    ctx.storage.get_bucket(req.bucket)
    ctx.storage.put_config(req.bucket, CONFIG_KIND, None)
    return OSSResponse(204)


def match_rule(config: CorsConfig, origin: str, method: str, headers: tuple[str, ...] = ()) -> CorsRule | None:
    """The first rule allowing ``origin`` + ``method`` and every one of ``headers`` (lower-case), or None."""
    low_origin = origin.lower()
    for rule in config.rules:
        if method not in rule.allowed_methods:
            continue
        if not any(_wildcard(o.lower(), low_origin) for o in rule.allowed_origins):
            continue
        if all(any(_wildcard(a, h) for a in rule.allowed_headers) for h in headers):
            return rule
    return None


def _allow_headers(rule: CorsRule, origin: str, vary: bool) -> list[tuple[str, str]]:
    headers = [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Methods", ", ".join(rule.allowed_methods)),
    ]
    if rule.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ", ".join(rule.expose_headers)))
    if rule.max_age_seconds is not None:
        headers.append(("Access-Control-Max-Age", str(rule.max_age_seconds)))
    if vary:
        headers.append(("Vary", _VARY))
    return headers


async def preflight(ctx: Context, req: OSSRequest) -> OSSResponse:
    """OPTIONS (not authenticated, §12): 200 with the Allow-* headers of the matching rule, else 403
    ``AccessForbidden`` without ``Access-Control-Allow-Origin``."""
    origin, method = req.header("origin"), req.header("access-control-request-method")
    if req.bucket is None:
        raise OSSError("AccessForbidden", "CORSResponse: Bucket not found.")
    ctx.storage.get_bucket(req.bucket)
    if not origin or not method:
        raise OSSError("AccessForbidden", "CORSResponse: Insufficient information. Origin and method are needed.")
    config = load_config(ctx, req.bucket)
    if config is None:
        raise OSSError("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.")
    raw = req.header("access-control-request-headers")
    requested = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    rule = match_rule(config, origin, method, requested)
    if rule is None:
        raise OSSError("AccessForbidden", "CORSResponse: This CORS request is not allowed.")
    response = OSSResponse(200, _allow_headers(rule, origin, config.response_vary))
    if raw:
        response.set("Access-Control-Allow-Headers", raw)
    return response


def add_cors_headers(ctx: Context, req: OSSRequest, response: OSSResponse) -> None:
    """Response hook: a cross-origin request to a bucket whose rules allow it gets the Allow-* headers (success
    and error alike, so a page can read an upload's error or callback JSON). Never raises."""
    origin = req.header("origin")
    if not origin or req.bucket is None or req.method == "OPTIONS":
        return
    try:
        config = load_config(ctx, req.bucket)
    except OSSError:
        return
    except Exception:
        log.exception("reading the CORS rules of %s", req.bucket)
        return
    if config is None:
        return
    rule = match_rule(config, origin, req.method)
    if rule is not None:
        response.headers += _allow_headers(rule, origin, config.response_vary)
