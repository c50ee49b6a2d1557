"""Query-parameter values shared by several operations."""

from __future__ import annotations

from ossdrop.core.errors import OSSError


def int_param(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter (``max-keys``, ``max-parts``...); anything else is ``InvalidArgument``."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise OSSError("InvalidArgument", f"Argument {name} is invalid.", {"ArgumentName": name, "ArgumentValue": raw})
    return int(raw)
