"""Steps ``format``, ``quality`` and ``interlace`` (they only record choices) and the final encoder (§7.2)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image

from ossdrop.core.operations import Format, Interlace, Quality
from ossdrop.media.image.context import Context
from ossdrop.media.image.formats import CONTENT_TYPES
from ossdrop.media.result import Processed

# IJG base luminance table (JPEG Annex K.1); the source quality is estimated against it
_STD_LUMINANCE_SUM = 3688
_DEFAULT_QUALITY = 90
_PIL_NAMES = {"jpg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}
_PIL_NAMES |= {"avif": "AVIF", "heic": "HEIF"}


def apply_format(ctx: Context, op: Format) -> None:
    """Record the output format; ``gif`` on a non-GIF source keeps the source format (§7.2)."""
    if op.name == "gif" and ctx.source_format != "gif":
        ctx.output_format = ctx.source_format
    else:
        ctx.output_format = op.name


def apply_quality(ctx: Context, op: Quality) -> None:
    """Record ``q`` (relative) and ``Q`` (absolute); Q wins when both are given."""
    ctx.relative_quality, ctx.absolute_quality = op.relative, op.absolute


def apply_interlace(ctx: Context, op: Interlace) -> None:
    """Record progressive output (honoured for jpg only)."""
    ctx.interlace = op.enabled


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """IJG quality (1..100) that would produce the image's luminance quantisation table, if it is a JPEG."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    luminance: list[int] = list(tables[0])
    scale = sum(luminance) * 100 / _STD_LUMINANCE_SUM
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return max(1, min(100, round(quality)))


def output_quality(ctx: Context, fmt: str) -> int:
    """§7.2: ``Q`` is absolute but capped at the source quality; ``q`` scales it (like Q for webp)."""
    source = ctx.source_quality or 100
    if ctx.absolute_quality is not None:
        return min(ctx.absolute_quality, source)
    if ctx.relative_quality is not None:
        if fmt == "jpg":
            return max(1, round(source * ctx.relative_quality / 100))
        return ctx.relative_quality
    return min(source, _DEFAULT_QUALITY) if ctx.source_quality else _DEFAULT_QUALITY


def output_format(ctx: Context) -> str:
    """The format the result is encoded in: the requested one, else the source's."""
    return ctx.output_format or ctx.source_format


def _flatten(image: Image.Image, keep_alpha: bool) -> Image.Image:
    """Convert to RGB(A); transparency goes onto white when the format cannot keep it (§7.2 format)."""
    if image.mode in ("RGB", "L") or (keep_alpha and image.mode == "RGBA"):
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if keep_alpha:
        return rgba
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white


def _save_options(ctx: Context, fmt: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if fmt in ("jpg", "webp", "avif", "heic"):
        options["quality"] = output_quality(ctx, fmt)
    if fmt == "jpg":
        options["progressive"] = ctx.interlace
        options["optimize"] = False
    if fmt in ("jpg", "webp", "png") and ctx.orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = ctx.orientation  # keep the still-unapplied orientation so viewers show it upright
        options["exif"] = exif.tobytes()
    return options


def encode(ctx: Context, frames: Sequence[Image.Image] = (), durations: Sequence[int] = ()) -> Processed:
    """Encode ``ctx.image`` (plus extra animation ``frames`` for gif) in the output format."""
    fmt = output_format(ctx)
    if fmt == "heic":
        from ossdrop.media.image.formats import register_openers

        register_openers()
    keep_alpha = fmt not in ("jpg",)
    first = _flatten(ctx.image, keep_alpha)
    options = _save_options(ctx, fmt)
    if fmt == "gif" and frames:
        options |= {"save_all": True, "append_images": list(frames), "duration": list(durations)}
        options |= {"loop": 0, "disposal": 2}
    buffer = io.BytesIO()
    first.save(buffer, _PIL_NAMES[fmt], **options)
    return Processed(buffer.getvalue(), CONTENT_TYPES[fmt])
