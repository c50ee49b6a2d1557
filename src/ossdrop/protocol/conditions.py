"""Conditional GET/HEAD headers (oss-protocol.md §5.3, §12 "Conditional GET").

ETags are compared without quotes because oss2's resumable download sends them bare.
"""

from __future__ import annotations

from collections.abc import Mapping

from ossdrop.core.errors import OSSError
from ossdrop.protocol.timefmt import parse_http_date


def _etags(value: str) -> set[str]:
    return {v.strip().strip('"').upper() for v in value.split(",") if v.strip()}


def check_preconditions(headers: Mapping[str, str], etag: str, last_modified: float, prefix: str = "if-") -> None:
    """Raise 412 ``PreconditionFailed`` or 304 ``NotModified`` as the ``If-*`` headers demand.

    ``prefix`` is ``x-oss-copy-source-if-`` for CopyObject, whose failures are all 412."""
    tag = etag.upper()
    modified = int(last_modified)
    match = headers.get(prefix + "match")
    if match is not None and "*" not in match and tag not in _etags(match):
        raise OSSError("PreconditionFailed", extra={"Condition": "If-Match"})
    since = _date(headers.get(prefix + "unmodified-since"))
    if since is not None and modified > since:
        raise OSSError("PreconditionFailed", extra={"Condition": "If-Unmodified-Since"})
    not_modified = "PreconditionFailed" if prefix != "if-" else "NotModified"
    none_match = headers.get(prefix + "none-match")
    if none_match is not None and ("*" in none_match or tag in _etags(none_match)):
        raise OSSError(not_modified, extra={"Condition": "If-None-Match"})
    since = _date(headers.get(prefix + "modified-since"))
    if none_match is None and since is not None and modified <= since:
        raise OSSError(not_modified, extra={"Condition": "If-Modified-Since"})


def _date(value: str | None) -> int | None:
    if value is None:
        return None
    parsed = parse_http_date(value)
    return None if parsed is None else int(parsed)
