"""Typed processing operations: one frozen dataclass per ``x-oss-process`` action (oss-protocol.md §7.2, §8).

These are plain values with no pixel or HTTP knowledge. ``ossdrop.protocol.process_spec`` builds them from the
wire grammar and the media pipeline consumes them. Every operation has ``canonical()``, the stable wire form of
its segment (parameters in a fixed order, defaults spelled out) used to build cache keys.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal, TypeAlias

Gravity = Literal["nw", "north", "ne", "west", "center", "east", "sw", "south", "se"]
GRAVITIES: tuple[Gravity, ...] = ("nw", "north", "ne", "west", "center", "east", "sw", "south", "se")
ResizeMode = Literal["lfit", "mfit", "fill", "pad", "fixed"]
RESIZE_MODES: tuple[ResizeMode, ...] = ("lfit", "mfit", "fill", "pad", "fixed")
ImageFormat = Literal["jpg", "png", "webp", "bmp", "gif", "tiff", "avif", "heic"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = ("jpg", "png", "webp", "bmp", "gif", "tiff", "avif", "heic")


def urlsafe_b64encode(text: str) -> str:
    """URL-safe base64 of UTF-8 ``text`` with the trailing ``=`` removed (§7.2 watermark, sys/saveas)."""
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _segment(action: str, *params: tuple[str, object]) -> str:
    parts = [action]
    for key, value in params:
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        parts.append(f"{key}_{value}")
    return ",".join(parts)


@dataclass(frozen=True)
class Resize:
    """``resize``: w/h box, or longer/shorter side, or percent ``p``; ``base_percent`` is ``P`` (watermarks)."""

    mode: ResizeMode = "lfit"
    w: int | None = None
    h: int | None = None
    longer: int | None = None
    shorter: int | None = None
    limit: bool = True
    color: str = "FFFFFF"
    p: int | None = None
    base_percent: int | None = None

    def canonical(self) -> str:
        return _segment(
            "resize", ("m", self.mode), ("w", self.w), ("h", self.h), ("l", self.longer), ("s", self.shorter),
            ("limit", self.limit), ("color", self.color), ("p", self.p), ("P", self.base_percent),
        )  # fmt: skip


@dataclass(frozen=True)
class Crop:
    """``crop``: region ``w``x``h`` (0 = to the edge) at gravity origin plus offset ``x``, ``y``."""

    w: int = 0
    h: int = 0
    x: int = 0
    y: int = 0
    gravity: Gravity = "nw"

    def canonical(self) -> str:
        return _segment("crop", ("w", self.w), ("h", self.h), ("x", self.x), ("y", self.y), ("g", self.gravity))


@dataclass(frozen=True)
class Rotate:
    """``rotate,<0..360>``: clockwise degrees; non-right angles enlarge the canvas."""

    angle: int

    def canonical(self) -> str:
        return f"rotate,{self.angle}"


@dataclass(frozen=True)
class AutoOrient:
    """``auto-orient,<0/1>``: apply the EXIF orientation when ``enabled``."""

    enabled: bool

    def canonical(self) -> str:
        return f"auto-orient,{int(self.enabled)}"


@dataclass(frozen=True)
class Format:
    """``format,<name>``: output encoding."""

    name: ImageFormat

    def canonical(self) -> str:
        return f"format,{self.name}"


@dataclass(frozen=True)
class Quality:
    """``quality``: ``relative`` is ``q`` (scales the source quality), ``absolute`` is ``Q`` (wins)."""

    relative: int | None = None
    absolute: int | None = None

    def canonical(self) -> str:
        return _segment("quality", ("q", self.relative), ("Q", self.absolute))


@dataclass(frozen=True)
class Interlace:
    """``interlace,<0/1>``: progressive JPEG output."""

    enabled: bool

    def canonical(self) -> str:
        return f"interlace,{int(self.enabled)}"


@dataclass(frozen=True)
class Info:
    """``info``: JSON with size, format and EXIF of the source."""

    def canonical(self) -> str:
        return "info"


@dataclass(frozen=True)
class AverageHue:
    """``average-hue``: JSON ``{"RGB": "0xRRGGBB"}``."""

    def canonical(self) -> str:
        return "average-hue"


@dataclass(frozen=True)
class Blur:
    """``blur,r_<1..50>,s_<1..50>``: radius and standard deviation."""

    radius: int
    sigma: int

    def canonical(self) -> str:
        return _segment("blur", ("r", self.radius), ("s", self.sigma))


@dataclass(frozen=True)
class Bright:
    """``bright,<-100..100>``."""

    value: int

    def canonical(self) -> str:
        return f"bright,{self.value}"


@dataclass(frozen=True)
class Contrast:
    """``contrast,<-100..100>``."""

    value: int

    def canonical(self) -> str:
        return f"contrast,{self.value}"


@dataclass(frozen=True)
class Sharpen:
    """``sharpen,<50..399>``."""

    value: int

    def canonical(self) -> str:
        return f"sharpen,{self.value}"


@dataclass(frozen=True)
class Circle:
    """``circle,r_<1..4096>``: keep the inscribed circle of radius ``r`` (capped at half the shorter side)."""

    r: int

    def canonical(self) -> str:
        return f"circle,r_{self.r}"


@dataclass(frozen=True)
class RoundedCorners:
    """``rounded-corners,r_<1..4096>``."""

    r: int

    def canonical(self) -> str:
        return f"rounded-corners,r_{self.r}"


@dataclass(frozen=True)
class IndexCrop:
    """``indexcrop``: cut along ``axis`` into slices of ``length`` px and keep slice ``index``."""

    axis: Literal["x", "y"]
    length: int
    index: int = 0

    def canonical(self) -> str:
        return _segment("indexcrop", (self.axis, self.length), ("i", self.index))


@dataclass(frozen=True)
class WatermarkImage:
    """Image overlay of a watermark: object ``key`` in the same bucket, processed by ``ops`` first."""

    key: str
    ops: tuple[ImageOp, ...] = ()

    def encoded(self) -> str:
        value = self.key
        if self.ops:
            value += "?x-oss-process=image/" + "/".join(op.canonical() for op in self.ops)
        return urlsafe_b64encode(value)


@dataclass(frozen=True)
class Watermark:
    """``watermark``: text and/or image overlay placed by gravity and margins (§7.2 watermark)."""

    text: str | None = None
    image: WatermarkImage | None = None
    opacity: int = 100
    gravity: Gravity = "se"
    x: int = 10
    y: int = 10
    voffset: int = 0
    font: str = "wqy-zenhei"
    color: str = "000000"
    size: int = 40
    shadow: int = 0
    rotate: int = 0
    fill: bool = False
    order: int = 0
    align: int = 0
    interval: int = 0

    def canonical(self) -> str:
        text = urlsafe_b64encode(self.text) if self.text is not None else None
        image = self.image.encoded() if self.image is not None else None
        return _segment(
            "watermark", ("image", image), ("text", text), ("type", urlsafe_b64encode(self.font)),
            ("color", self.color), ("size", self.size), ("shadow", self.shadow), ("rotate", self.rotate),
            ("fill", self.fill), ("order", self.order), ("align", self.align), ("interval", self.interval),
            ("t", self.opacity), ("g", self.gravity), ("x", self.x), ("y", self.y), ("voffset", self.voffset),
        )  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """``video/snapshot`` (§8): frame at ``t_ms`` (keyframe at/before it when ``fast``), scaled to w x h."""

    t_ms: int = 0
    w: int = 0
    h: int = 0
    fast: bool = False
    fmt: Literal["jpg", "png"] = "jpg"
    auto_rotate: bool = False

    def canonical(self) -> str:
        return _segment(
            "snapshot", ("t", self.t_ms), ("f", self.fmt), ("w", self.w), ("h", self.h),
            ("m", "fast" if self.fast else None), ("ar", "auto" if self.auto_rotate else None),
        )  # fmt: skip


ImageOp: TypeAlias = (
    Resize | Crop | Rotate | AutoOrient | Format | Quality | Interlace | Info | AverageHue | Blur | Bright
    | Contrast | Sharpen | Circle | RoundedCorners | IndexCrop | Watermark
)  # fmt: skip
