"""The value every media operation returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Processed:
    """Encoded output of a processing request: ``body`` bytes served with ``content_type``."""

    body: bytes
    content_type: str
