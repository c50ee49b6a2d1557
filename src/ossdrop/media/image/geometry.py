"""Pure size arithmetic for resize, crop, indexcrop and gravity placement (oss-protocol.md §7.2).

No pixels here: every function maps sizes and operations to sizes and boxes, so the OSS geometry can be tested
exactly and reused to plan shrink-on-load before anything is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import Crop, Gravity, IndexCrop, Resize

Size = tuple[int, int]
Box = tuple[int, int, int, int]


def round_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, at least 1 (§7.2: fractional sizes are rounded)."""
    return max(1, (2 * numerator + denominator) // (2 * denominator))


@dataclass(frozen=True)
class ResizePlan:
    """``scaled`` is the size the pixels are resampled to; ``canvas`` the final size.

    ``offset`` is where the scaled image sits on the canvas: negative for the ``fill`` centre crop, positive for
    the ``pad`` border, zero otherwise.
    """

    scaled: Size
    canvas: Size
    offset: tuple[int, int] = (0, 0)


def _box(src: Size, op: Resize) -> tuple[int | None, int | None]:
    """Target box from w/h, or from l/s mapped onto the source's longer/shorter side (w/h win, §7.2)."""
    if op.w is not None or op.h is not None:
        return op.w, op.h
    width, height = src
    if width >= height:
        return op.longer, op.shorter
    return op.shorter, op.longer


def _fit(src: Size, box: tuple[int | None, int | None], cover: bool) -> Size:
    """Proportional size inside (lfit) or covering (mfit) the box; one missing side is proportional."""
    (width, height), (bw, bh) = src, box
    if bw is None and bh is None:
        return src
    if bh is None or (bw is not None and (bw * height <= bh * width) != cover):
        assert bw is not None
        return bw, round_div(height * bw, width)
    return round_div(width * bh, height), bh


def resize_plan(src: Size, op: Resize, *, no_enlarge: bool = False) -> ResizePlan | None:
    """The §7.2 resize of an image of size ``src``; ``None`` means "leave the image as it is".

    With ``limit_1`` (or ``no_enlarge``, used for GIFs) a resize that would enlarge returns ``None``: OSS then
    serves the source-size image. ``p`` applies only when no w/h/l/s is given.
    """
    width, height = src
    bw, bh = _box(src, op)
    if bw is None and bh is None:
        if op.p is None:
            return None
        scaled = (round_div(width * op.p, 100), round_div(height * op.p, 100))
        return None if no_enlarge and op.p > 100 else ResizePlan(scaled, scaled)
    if op.mode in ("fill", "pad", "fixed"):
        # one side only: a square of that side (OSS resize docs)
        box: Size = (bw or bh or 1, bh or bw or 1)
        scaled = box if op.mode == "fixed" else _fit(src, box, cover=op.mode == "fill")
        canvas = box
    else:
        scaled = canvas = _fit(src, (bw, bh), cover=op.mode == "mfit")
    if (op.limit or no_enlarge) and (scaled[0] > width or scaled[1] > height):
        return None
    offset = ((canvas[0] - scaled[0]) // 2, (canvas[1] - scaled[1]) // 2)
    return ResizePlan(scaled, canvas, offset)


def gravity_origin(src: Size, size: Size, gravity: Gravity) -> tuple[int, int]:
    """Top-left of a ``size`` region anchored at ``gravity`` (§7.2 crop table: srcW/2 - w/2 ...)."""
    (width, height), (w, h) = src, size
    column = {"w": 0, "c": width // 2 - w // 2, "e": width - w}
    row = {"n": 0, "c": height // 2 - h // 2, "s": height - h}
    horizontal = "w" if gravity in ("nw", "west", "sw") else "e" if gravity in ("ne", "east", "se") else "c"
    vertical = "n" if gravity in ("nw", "north", "ne") else "s" if gravity in ("sw", "south", "se") else "c"
    return column[horizontal], row[vertical]


def crop_box(src: Size, op: Crop) -> Box:
    """The §7.2 crop region: gravity origin plus (x, y); clamped to the image; a start outside is BadRequest."""
    width, height = src
    w, h = op.w or width, op.h or height
    ox, oy = gravity_origin(src, (w, h), op.gravity)
    left, top = max(0, ox + op.x), max(0, oy + op.y)
    if left >= width or top >= height:
        raise OSSError("BadRequest", "Advance cut's position is out of image.")
    return left, top, min(left + w, width), min(top + h, height)


def index_box(src: Size, op: IndexCrop) -> Box | None:
    """Slice ``index`` of ``length``-px slices along the axis; ``None`` when out of range (source returned)."""
    width, height = src
    extent = width if op.axis == "x" else height
    start = op.index * op.length
    if start >= extent:
        return None
    end = min(start + op.length, extent)
    return (start, 0, end, height) if op.axis == "x" else (0, start, width, end)


def place(canvas: Size, size: Size, gravity: Gravity, margin: tuple[int, int], voffset: int = 0) -> tuple[int, int]:
    """Top-left of a watermark of ``size`` at ``gravity`` with edge margins; ``voffset`` moves the middle row up."""
    (width, height), (w, h), (mx, my) = canvas, size, margin
    left, top = gravity_origin(canvas, size, gravity)
    if gravity in ("nw", "west", "sw"):
        left = mx
    elif gravity in ("ne", "east", "se"):
        left = width - w - mx
    if gravity in ("nw", "north", "ne"):
        top = my
    elif gravity in ("sw", "south", "se"):
        top = height - h - my
    else:
        top -= voffset
    return left, top
