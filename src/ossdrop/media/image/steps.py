"""The ordered step table: one function per operation type, run in request order (imgproxy-style pipeline)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ossdrop.core.operations import (
    AutoOrient,
    Blur,
    Bright,
    Circle,
    Contrast,
    Crop,
    Format,
    ImageOp,
    IndexCrop,
    Interlace,
    Quality,
    Resize,
    Rotate,
    RoundedCorners,
    Sharpen,
    Watermark,
)
from ossdrop.media.image import adjust, crop, encode, orient, resize, shape, watermark
from ossdrop.media.image.context import Context

Step = Callable[[Context, Any], None]

STEPS: dict[type, Step] = {
    Resize: resize.apply_resize,
    Crop: crop.apply_crop,
    IndexCrop: crop.apply_index_crop,
    AutoOrient: orient.apply_auto_orient,
    Rotate: orient.apply_rotate,
    Format: encode.apply_format,
    Quality: encode.apply_quality,
    Interlace: encode.apply_interlace,
    Blur: adjust.apply_blur,
    Bright: adjust.apply_bright,
    Contrast: adjust.apply_contrast,
    Sharpen: adjust.apply_sharpen,
    Circle: shape.apply_circle,
    RoundedCorners: shape.apply_rounded_corners,
    Watermark: watermark.apply_watermark,
}


def run_steps(ctx: Context, ops: Sequence[ImageOp]) -> None:
    """Apply each pixel/encoding op to ``ctx`` in order; ops without a step (info, average-hue) are skipped."""
    for op in ops:
        step = STEPS.get(type(op))
        if step is not None:
            step(ctx, op)
