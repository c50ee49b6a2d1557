"""Steps ``circle`` and ``rounded-corners`` (§7.2): the outside becomes transparent (white once in jpg)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from ossdrop.core.operations import Circle, RoundedCorners
from ossdrop.media.image.context import Context

# Masks are drawn this many times larger and reduced, for smooth edges
_SUPERSAMPLE = 4


def _mask(size: tuple[int, int], radius: int) -> Image.Image:
    big = Image.new("L", (size[0] * _SUPERSAMPLE, size[1] * _SUPERSAMPLE), 0)
    box = (0, 0, big.width - 1, big.height - 1)
    ImageDraw.Draw(big).rounded_rectangle(box, radius=radius * _SUPERSAMPLE, fill=255)
    return big.resize(size, Image.Resampling.LANCZOS)


def _apply_mask(ctx: Context, image: Image.Image, radius: int) -> None:
    image = image.convert("RGBA")
    alpha = image.getchannel("A")
    mask = _mask(image.size, radius)
    image.putalpha(Image.composite(alpha, Image.new("L", image.size, 0), mask))
    ctx.image = image


def apply_circle(ctx: Context, op: Circle) -> None:
    """Keep the inscribed circle of radius ``r`` (capped at half the shorter side), cropped to its square."""
    width, height = ctx.image.size
    radius = min(op.r, min(width, height) // 2)
    left, top = width // 2 - radius, height // 2 - radius
    square = ctx.image.crop((left, top, left + 2 * radius, top + 2 * radius))
    _apply_mask(ctx, square, radius)


def apply_rounded_corners(ctx: Context, op: RoundedCorners) -> None:
    """Round the four corners with radius ``r`` (capped at half the shorter side)."""
    radius = min(op.r, min(ctx.image.size) // 2)
    _apply_mask(ctx, ctx.image, radius)
