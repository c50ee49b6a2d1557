"""The per-frame state the image pipeline steps share (one value, fields documented, no bag of strings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from ossdrop.media.image.geometry import Size
from ossdrop.media.limits import Limits


@dataclass
class Context:
    """State of one frame travelling through the pipeline.

    ``logical_size`` is the size the OSS geometry must be computed on when the pixels were shrunk on load
    (JPEG ``draft``); the first resize consumes it. ``orientation`` is the EXIF orientation still to be
    applied (1 once ``auto-orient`` ran). Encoding choices (``output_format``, quality, ``interlace``) are
    recorded by their steps and used by the encoder. ``cache`` is shared by all frames of an animation.
    """

    image: Image.Image
    source_format: str
    limits: Limits
    logical_size: Size | None = None
    orientation: int = 1
    source_quality: int | None = None
    output_format: str | None = None
    relative_quality: int | None = None
    absolute_quality: int | None = None
    interlace: bool = False
    animated: bool = False
    load_object: Callable[[str], str] | None = None
    cache: dict[str, Image.Image] = field(default_factory=dict)

    @property
    def size(self) -> Size:
        """Size the geometry sees: the logical size while shrink-on-load is pending, else the pixels'."""
        return self.logical_size or self.image.size

    def has_alpha(self) -> bool:
        """Whether the current image carries transparency."""
        image = self.image
        return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
