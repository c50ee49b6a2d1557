"""Image processing for ``x-oss-process=image/...`` (oss-protocol.md §7); see :func:`process_image`."""

from __future__ import annotations

from ossdrop.media.image.pipeline import process_image

__all__ = ["process_image"]
