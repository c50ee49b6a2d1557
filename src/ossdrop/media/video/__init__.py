"""Video snapshots for ``x-oss-process=video/snapshot`` (oss-protocol.md §8); see :func:`snapshot`."""

from __future__ import annotations

from ossdrop.media.video.snapshot import snapshot

__all__ = ["snapshot"]
