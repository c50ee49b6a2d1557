"""Steps ``crop`` and ``indexcrop`` (§7.2)."""

from __future__ import annotations

from ossdrop.core.operations import Crop, IndexCrop
from ossdrop.media.image.context import Context
from ossdrop.media.image.geometry import crop_box, index_box


def apply_crop(ctx: Context, op: Crop) -> None:
    """Cut the §7.2 region (gravity origin + offset, clamped); a start outside the image is BadRequest."""
    ctx.image = ctx.image.crop(crop_box(ctx.image.size, op))


def apply_index_crop(ctx: Context, op: IndexCrop) -> None:
    """Keep one slice; an index past the end leaves the image unchanged (§7.2)."""
    box = index_box(ctx.image.size, op)
    if box is not None:
        ctx.image = ctx.image.crop(box)
