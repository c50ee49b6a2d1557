"""Open-time decisions: the initial pipeline context and shrink-on-load (§7.2, dependencies.md Images).

JPEG ``draft()`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale, so a 12 MP photo resized to 256 px never
materialises at full size. The OSS geometry is still computed on the original size (``logical_size``), so the
result is pixel-for-pixel the size real OSS produces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image

from ossdrop.core.operations import AutoOrient, AverageHue, Format, ImageOp, Interlace, Quality, Resize
from ossdrop.media.image.context import Context
from ossdrop.media.image.encode import estimate_jpeg_quality
from ossdrop.media.image.formats import oss_format
from ossdrop.media.image.geometry import Size, resize_plan
from ossdrop.media.limits import Limits

_NEUTRAL = (Format, Quality, Interlace)
_HUE_SAMPLE = (256, 256)


def new_context(
    source: Image.Image, limits: Limits, load_object: Callable[[str], str] | None, animated: bool = False
) -> Context:
    """Context for the first frame of ``source``: format, EXIF orientation and JPEG quality from the header."""
    orientation = source.getexif().get(0x0112, 1) if source.format != "GIF" else 1
    return Context(
        image=source,
        source_format=oss_format(source),
        limits=limits,
        orientation=orientation if orientation in range(1, 9) else 1,
        source_quality=estimate_jpeg_quality(source),
        animated=animated,
        load_object=load_object,
    )


def draft_target(size: Size, orientation: int, ops: Sequence[ImageOp]) -> Size | None:
    """The smallest stored-orientation size the leading ops need, when they start with a shrinking resize."""
    swapped = False
    for op in ops:
        if isinstance(op, _NEUTRAL):
            continue
        if isinstance(op, AutoOrient):
            swapped ^= op.enabled and orientation >= 5
            continue
        if isinstance(op, AverageHue):
            return _HUE_SAMPLE
        if not isinstance(op, Resize):
            return None
        oriented = (size[1], size[0]) if swapped else size
        plan = resize_plan(oriented, op)
        if plan is None:
            return None
        return (plan.scaled[1], plan.scaled[0]) if swapped else plan.scaled
    return None


def shrink_on_load(ctx: Context, source: Image.Image, ops: Sequence[ImageOp]) -> None:
    """Ask the JPEG decoder for a reduced scale that is still at least the first resize's size."""
    if source.format not in ("JPEG", "MPO"):
        return
    target = draft_target(source.size, ctx.orientation, ops)
    if target is None or target[0] >= source.width or target[1] >= source.height:
        return
    original = source.size
    source.draft(source.mode, target)
    if source.size != original:
        ctx.logical_size = original
