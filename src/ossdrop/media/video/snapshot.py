"""``video/snapshot`` (oss-protocol.md §8) in-process with PyAV, reading the object file directly.

Seek to the keyframe at or before ``t`` and decode forward to the frame shown at ``t`` (the last frame whose
timestamp is <= t); ``m_fast`` stops at that keyframe. ``t`` past the end yields the last frame. The cost is
set by the keyframe interval, not the video length (dependencies.md Video).
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import TYPE_CHECKING

from PIL import Image

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import Snapshot
from ossdrop.media.image.geometry import Size, round_div
from ossdrop.media.limits import Limits
from ossdrop.media.result import Processed

if TYPE_CHECKING:
    import av

_TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
_JPEG_QUALITY = 90
_CODECS = ("h264", "hevc")  # §8: only H.264 and H.265 are supported


def _bad_video(detail: str) -> OSSError:
    return OSSError("InvalidArgument", f"The source is not a supported video: {detail}.")


def snapshot(path: str, op: Snapshot, *, limits: Limits) -> Processed:
    """The §8 snapshot of the video at ``path`` as jpg or png bytes.

    Raises ``OSSError`` ``InvalidArgument`` for a file with no decodable video stream, and for ``w``/``h``
    beyond the (displayed) video size (EC 0053-00000104/105); ``ImageTooLarge`` past the output limits.
    """
    import av  # imported on first use: it adds ~20 MB to every store process that never sees a video

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise _bad_video("no video stream")
            stream = container.streams.video[0]
            if stream.codec_context.name not in _CODECS:
                raise _bad_video(f"codec {stream.codec_context.name} (only H.264 and H.265)")
            frame = _find_frame(container, stream, op)
            rotation = round(frame.rotation) % 360 if op.auto_rotate else 0
            size = _output_size(_displayed(frame.width, frame.height, rotation), op)
            limits.check_output(*size)
            image = _render(frame, size, rotation)
    except (av.FFmpegError, OSError, ValueError) as error:  # PyAV's errors subclass these
        raise _bad_video(type(error).__name__) from None
    return _encode(image, op.fmt)


def _find_frame(container: av.container.InputContainer, stream: av.VideoStream, op: Snapshot) -> av.VideoFrame:
    """Keyframe-before seek plus forward decode; the last frame decoded wins when ``t`` is past the end."""
    time_base = stream.time_base or Fraction(1, 1000)
    start = stream.start_time or 0
    target = start + int(Fraction(op.t_ms, 1000) / time_base)
    if op.t_ms > 0:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    chosen: av.VideoFrame | None = None
    for frame in container.decode(stream):
        if chosen is None or (frame.pts is not None and frame.pts <= target):
            chosen = frame
        if op.fast or frame.pts is None or frame.pts >= target:
            break
    if chosen is None:
        raise _bad_video("no decodable frame")
    return chosen


def _displayed(width: int, height: int, rotation: int) -> Size:
    return (height, width) if rotation in (90, 270) else (width, height)


def _output_size(video: Size, op: Snapshot) -> Size:
    """§8: 0 = proportional to the other side; both 0 = the video's size; more than the video is refused."""
    width, height = video
    if op.w > width:
        raise OSSError("InvalidArgument", f"The snapshot width {op.w} is over the video width.", ec="0053-00000104")
    if op.h > height:
        raise OSSError("InvalidArgument", f"The snapshot height {op.h} is over the video height.", ec="0053-00000105")
    if op.w and op.h:
        return op.w, op.h
    if op.w:
        return op.w, round_div(height * op.w, width)
    if op.h:
        return round_div(width * op.h, height), op.h
    return width, height


def _render(frame: av.VideoFrame, size: Size, rotation: int) -> Image.Image:
    """Scale in swscale (cheaper than after conversion), then turn to the display orientation."""
    coded = (size[1], size[0]) if rotation in (90, 270) else size
    rgb = frame.reformat(width=coded[0], height=coded[1], format="rgb24", interpolation="BICUBIC")
    image: Image.Image = rgb.to_image()  # type: ignore[no-untyped-call]
    transpose = _TRANSPOSE.get(rotation)
    return image.transpose(transpose) if transpose is not None else image


def _encode(image: Image.Image, fmt: str) -> Processed:
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    return Processed(buffer.getvalue(), _CONTENT_TYPES[fmt])
