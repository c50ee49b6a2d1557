"""Steps ``auto-orient`` and ``rotate`` (§7.2)."""

from __future__ import annotations

from PIL import Image

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import AutoOrient, Rotate
from ossdrop.media.image.context import Context

_T = Image.Transpose
# EXIF orientation -> transposition that displays the image upright (EXIF 2.32 tag 0x0112)
ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: _T.FLIP_LEFT_RIGHT,
    3: _T.ROTATE_180,
    4: _T.FLIP_TOP_BOTTOM,
    5: _T.TRANSPOSE,
    6: _T.ROTATE_270,
    7: _T.TRANSVERSE,
    8: _T.ROTATE_90,
}
_RIGHT_ANGLES = {90: _T.ROTATE_270, 180: _T.ROTATE_180, 270: _T.ROTATE_90}


def apply_auto_orient(ctx: Context, op: AutoOrient) -> None:
    """Apply the pending EXIF orientation; afterwards the output carries orientation 1."""
    method = ORIENTATION_TRANSPOSE.get(ctx.orientation)
    if not op.enabled or method is None:
        return
    ctx.image = ctx.image.transpose(method)
    if ctx.logical_size is not None and ctx.orientation >= 5:
        ctx.logical_size = (ctx.logical_size[1], ctx.logical_size[0])
    ctx.orientation = 1


def apply_rotate(ctx: Context, op: Rotate) -> None:
    """Rotate clockwise; other than right angles the canvas grows and the corners are white or transparent."""
    side = ctx.limits.max_rotate_side
    if max(ctx.image.size) > side:
        raise OSSError("ImageTooLarge", f"Rotate needs an image of at most {side}x{side} px.")
    angle = op.angle % 360
    if angle == 0:
        return
    if angle in _RIGHT_ANGLES:
        ctx.image = ctx.image.transpose(_RIGHT_ANGLES[angle])
        return
    image = ctx.image.convert("RGBA" if ctx.has_alpha() else "RGB")
    fill = (255, 255, 255, 0) if image.mode == "RGBA" else (255, 255, 255)
    # Pillow turns counter-clockwise; OSS turns clockwise
    ctx.image = image.rotate(-angle, Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
