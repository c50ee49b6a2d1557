"""Single byte ranges for GetObject (oss-protocol.md §5.3 "Range handling").

OSS legacy behaviour: an invalid or unsatisfiable range is ignored (200, whole object) unless the client sends
``x-oss-range-behavior: standard``, which turns an unsatisfiable range into 416 ``InvalidRange``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ossdrop.core.errors import OSSError

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class ByteRange:
    """Inclusive ``start..end`` within an object of ``total`` bytes."""

    start: int
    end: int
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.total}"


def resolve_range(header: str, total: int, *, standard: bool) -> ByteRange | None:
    """The range to serve, or None for the whole object. Raises ``InvalidRange`` only in standard mode."""
    if not header:
        return None
    m = _RANGE.match(header)
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # malformed or multi-range: served whole, as OSS does
    first, last = m.group(1), m.group(2)
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or total == 0:
            _unsatisfiable(total, standard)
            return None
        return ByteRange(max(0, total - n), total - 1, total)
    start = int(first)
    end = int(last) if last else total - 1
    if last and end < start:
        return None
    if start >= total:
        _unsatisfiable(total, standard)
        return None
    return ByteRange(start, min(end, total - 1), total)


def _unsatisfiable(total: int, standard: bool) -> None:
    """Raise ``InvalidRange`` in standard mode; legacy mode serves the whole object instead."""
    if standard:
        raise OSSError("InvalidRange", extra={"ActualObjectSize": str(total)})
