"""The time formats oss2 accepts (oss-protocol.md §5.1, §11 trap 1)."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime


def iso8601(ts: float) -> str:
    """XML times: ``2024-01-01T00:00:00.000Z``; oss2 requires the literal ``.000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def http_date(ts: float) -> str:
    """RFC 1123 with a two-digit day, e.g. ``Sun, 05 Dec 2015 11:10:29 GMT``."""
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Parse an RFC 1123 / RFC 850 / asctime date; None when unparseable."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_iso8601(value: str) -> float | None:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.fff]Z``; None when unparseable."""
    text = value.strip()
    if not text.endswith("Z"):
        return None
    text = text[:-1]
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def parse_amz_date(value: str) -> float | None:
    """Parse the V4 ``x-oss-date`` form ``20241203T121212Z``."""
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
