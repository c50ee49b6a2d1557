"""``process_image``: source file + parsed operations -> encoded bytes (oss-protocol.md §7).

Order of work: size/limit checks on the header, the JSON-only ``info`` shortcut, shrink-on-load, the steps in
request order (:mod:`ossdrop.media.image.steps`), then the encoder. Animated GIFs run the same steps frame by
frame so only one source frame is decoded at a time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

from PIL import Image

from ossdrop.core.operations import AverageHue, Format, ImageOp, Info, Resize
from ossdrop.media.image.context import Context
from ossdrop.media.image.encode import encode
from ossdrop.media.image.formats import frame_count, open_image
from ossdrop.media.image.load import new_context, shrink_on_load
from ossdrop.media.image.report import average_hue_json, info_json
from ossdrop.media.image.steps import run_steps
from ossdrop.media.limits import Limits
from ossdrop.media.result import Processed

_DEFAULT_GIF_DELAY_MS = 100


def process_image(
    path: str,
    ops: Sequence[ImageOp],
    *,
    file_size: int,
    limits: Limits,
    load_object: Callable[[str], str] | None = None,
) -> Processed:
    """Run ``ops`` over the image at ``path`` and return the encoded result.

    ``file_size`` is the stored object's size (checked against the 20 MB limit and reported by ``info``);
    ``load_object(key)`` returns a local path for watermark images. Raises ``OSSError``: ``ImageTooLarge``
    for a source or result over :class:`Limits` (checked from the header, before decoding), ``BadRequest``
    for a non-image or a crop outside the image.
    """
    limits.check_file_size(file_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with open_image(path) as source:
            frames = frame_count(source)
            limits.check_source(source.width, source.height, frames)
            if any(isinstance(op, Info) for op in ops):
                return info_json(source, file_size)  # §7.2 info describes the stored image (UNSURE when chained)
            return _process(source, list(ops), frames, limits, load_object)


def _process(
    source: Image.Image, ops: list[ImageOp], frames: int, limits: Limits, load: Callable[[str], str] | None
) -> Processed:
    hue_at = next((i for i, op in enumerate(ops) if isinstance(op, AverageHue)), None)
    pixel_ops = ops if hue_at is None else ops[:hue_at]
    ctx = new_context(source, limits, load)
    if hue_at is None and frames > 1 and _stays_animated(ctx, ops):
        return _process_animation(source, ops, frames, limits, load)
    shrink_on_load(ctx, source, ops if hue_at is None else ops[: hue_at + 1])
    run_steps(ctx, pixel_ops)
    if hue_at is not None:
        return average_hue_json(ctx.image)
    return encode(ctx)


def _stays_animated(ctx: Context, ops: Sequence[ImageOp]) -> bool:
    """A GIF stays animated when the output is gif and no percent resize is asked (§7.2: p makes it static)."""
    if ctx.source_format != "gif":
        return False
    fmt = "gif"
    for op in ops:
        if isinstance(op, Resize) and op.p is not None and op.w is op.h is op.longer is op.shorter is None:
            return False
        if isinstance(op, Format):
            fmt = op.name
    return fmt == "gif"


def _process_animation(
    source: Image.Image, ops: Sequence[ImageOp], frames: int, limits: Limits, load: Callable[[str], str] | None
) -> Processed:
    """Decode, process and keep one frame at a time; at most ``limits.max_gif_frames`` frames."""
    cache: dict[str, Image.Image] = {}
    first: Context | None = None
    rest: list[Image.Image] = []
    durations: list[int] = []
    for index in range(min(frames, limits.max_gif_frames)):
        source.seek(index)
        ctx = Context(image=source.convert("RGBA"), source_format="gif", limits=limits, animated=True, load_object=load)
        ctx.cache = cache
        run_steps(ctx, ops)
        durations.append(int(source.info.get("duration", _DEFAULT_GIF_DELAY_MS)))
        if first is None:
            first = ctx
        else:
            rest.append(ctx.image)
    assert first is not None
    return encode(first, rest, durations)
