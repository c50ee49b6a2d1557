"""Step ``watermark`` (§7.2): text and/or image overlays placed by gravity, margins and opacity.

Fonts come from the machine (Debian's DejaVu) or Pillow's bundled default; nothing is downloaded. OSS font
names (``wqy-zenhei`` ...) all map to the first font found, so CJK glyphs may be missing (UNSURE/limitation).
"""

from __future__ import annotations

import functools
import os

from PIL import Image, ImageDraw, ImageFont

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import Resize, Watermark, WatermarkImage
from ossdrop.media.image.context import Context
from ossdrop.media.image.formats import open_image
from ossdrop.media.image.geometry import place, round_div

_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont | ImageFont.TransposedFont


@functools.lru_cache(maxsize=32)
def _font(size: int) -> FontType:
    for path in _FONT_FILES:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def text_mark(op: Watermark) -> Image.Image:
    """The text of ``op`` rendered on a transparent layer, with its shadow and rotation."""
    assert op.text is not None
    font = _font(op.size)
    left, top, right, bottom = (
        int(v) for v in ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), op.text, font=font)
    )
    shadow_offset = max(1, op.size // 20) if op.shadow else 0
    layer = Image.new("RGBA", (right - left + shadow_offset + 1, bottom - top + shadow_offset + 1))
    draw = ImageDraw.Draw(layer)
    if op.shadow:
        shade = (0, 0, 0, round(op.shadow * 2.55))
        draw.text((shadow_offset - left, shadow_offset - top), op.text, font=font, fill=shade)
    draw.text((-left, -top), op.text, font=font, fill=_rgb(op.color) + (255,))
    if op.rotate % 360:
        layer = layer.rotate(-op.rotate, Image.Resampling.BICUBIC, expand=True)
    return layer


def image_mark(ctx: Context, mark: WatermarkImage) -> Image.Image:
    """The watermark object loaded through ``ctx.load_object`` and run through its own ops (``P`` = % of base)."""
    if ctx.load_object is None:
        raise OSSError("NotImplemented", "Image watermarks need an object loader.")
    path = ctx.load_object(mark.key)
    with open_image(path) as source:
        ctx.limits.check_source(*source.size)
        image = source.convert("RGBA")
    from ossdrop.media.image.steps import run_steps

    sub = Context(image=image, source_format="png", limits=ctx.limits, load_object=None)
    for op in mark.ops:
        if isinstance(op, Resize) and op.base_percent is not None:
            box = (
                round_div(ctx.image.width * op.base_percent, 100),
                round_div(ctx.image.height * op.base_percent, 100),
            )
            sub.image.thumbnail(box, Image.Resampling.LANCZOS)
            if op.w is None and op.h is None and op.longer is None and op.shorter is None and op.p is None:
                continue
        run_steps(sub, (op,))
    return sub.image.convert("RGBA")


def _combine(op: Watermark, text: Image.Image | None, image: Image.Image | None) -> Image.Image:
    """Mixed watermark: ``order`` 0 puts the image first; ``align`` 0/1/2 = top/middle/bottom; ``interval`` gap."""
    if text is None or image is None:
        result = text or image
        assert result is not None
        return result
    first, second = (image, text) if op.order == 0 else (text, image)
    height = max(first.height, second.height)
    layer = Image.new("RGBA", (first.width + op.interval + second.width, height))
    for part, left in ((first, 0), (second, first.width + op.interval)):
        top = (height - part.height) * op.align // 2
        layer.alpha_composite(part, (left, top))
    return layer


def _mark(ctx: Context, op: Watermark) -> Image.Image:
    key = op.canonical()
    cached = ctx.cache.get(key)
    if cached is None:
        text = text_mark(op) if op.text is not None else None
        image = image_mark(ctx, op.image) if op.image is not None else None
        cached = _combine(op, text, image)
        if op.opacity < 100:
            alpha = cached.getchannel("A").point(lambda v: v * op.opacity // 100)
            cached.putalpha(alpha)
        ctx.cache[key] = cached
    return cached


def apply_watermark(ctx: Context, op: Watermark) -> None:
    """Overlay the mark at its gravity (or tiled with ``fill_1``) with opacity ``t``."""
    mark = _mark(ctx, op)
    had_alpha = ctx.has_alpha()
    base = ctx.image.convert("RGBA")
    layer = Image.new("RGBA", base.size)
    if op.fill:
        step_x, step_y = mark.width + max(op.x, 1) * 2, mark.height + max(op.y, 1) * 2
        for top in range(0, base.height, step_y):
            for left in range(0, base.width, step_x):
                layer.paste(mark, (left, top))
    else:
        layer.paste(mark, place(base.size, mark.size, op.gravity, (op.x, op.y), op.voffset))
    base.alpha_composite(layer)
    ctx.image = base if had_alpha else base.convert("RGB")
