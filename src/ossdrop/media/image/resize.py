"""Steps ``resize`` (§7.2 modes lfit/mfit/fill/pad/fixed, limit, p)."""

from __future__ import annotations

from PIL import Image

from ossdrop.core.operations import Resize
from ossdrop.media.image.context import Context
from ossdrop.media.image.geometry import resize_plan

# reducing_gap lets Pillow box-reduce by an integer factor first: much faster, visually the same (§9 speed)
_REDUCING_GAP = 3.0


def apply_resize(ctx: Context, op: Resize) -> None:
    """Resize ``ctx.image`` per the §7.2 plan; checks the output limits before allocating anything."""
    plan = resize_plan(ctx.size, op, no_enlarge=ctx.animated)
    ctx.logical_size = None
    if plan is None:
        return
    ctx.limits.check_output(*plan.scaled)
    ctx.limits.check_output(*plan.canvas)
    image = ctx.image
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if ctx.has_alpha() else "RGB")
    if image.size != plan.scaled:
        image = image.resize(plan.scaled, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    if plan.canvas != plan.scaled:
        image = _place_on_canvas(image, plan.canvas, plan.offset, op.color)
    ctx.image = image


def _place_on_canvas(image: Image.Image, canvas: tuple[int, int], offset: tuple[int, int], color: str) -> Image.Image:
    """fill: a negative offset crops the centre; pad: a positive one centres on a ``color`` background."""
    left, top = offset
    if left <= 0 and top <= 0:
        return image.crop((-left, -top, -left + canvas[0], -top + canvas[1]))
    rgb = tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))
    mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
    background = Image.new(mode, canvas, rgb + ((255,) if mode == "RGBA" else ()))
    background.paste(image.convert(mode), (left, top))
    return background
