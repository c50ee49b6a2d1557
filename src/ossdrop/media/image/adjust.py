"""Steps ``blur``, ``bright``, ``contrast`` and ``sharpen`` (§7.2)."""

from __future__ import annotations

from PIL import Image, ImageEnhance, ImageFilter

from ossdrop.core.operations import Blur, Bright, Contrast, Sharpen
from ossdrop.media.image.context import Context


def _rgb(ctx: Context) -> Image.Image:
    image = ctx.image
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if ctx.has_alpha() else "RGB")
    return image


def apply_blur(ctx: Context, op: Blur) -> None:
    """Gaussian blur with standard deviation ``s``; ``r`` bounds the kernel radius."""
    ctx.image = _rgb(ctx).filter(ImageFilter.GaussianBlur(radius=min(op.sigma, op.radius)))


def apply_bright(ctx: Context, op: Bright) -> None:
    """Shift every channel by ``value`` percent of full scale (-100 black .. 100 white)."""
    shift = round(op.value * 2.55)
    image = _rgb(ctx)
    bands = image.split()
    moved = [band.point(lambda v: min(255, max(0, v + shift))) for band in bands[:3]]
    ctx.image = Image.merge(image.mode, moved + list(bands[3:]))


def apply_contrast(ctx: Context, op: Contrast) -> None:
    """Scale contrast: -100 flattens to grey, 100 doubles it."""
    ctx.image = ImageEnhance.Contrast(_rgb(ctx)).enhance(1 + op.value / 100)


def apply_sharpen(ctx: Context, op: Sharpen) -> None:
    """Unsharp mask whose strength is ``value`` percent (100 recommended by OSS)."""
    ctx.image = _rgb(ctx).filter(ImageFilter.UnsharpMask(radius=1, percent=op.value, threshold=0))
