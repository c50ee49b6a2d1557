"""Cheap analyzers for uploaded files: image header facts and video stream facts.

Used for the upload callback's ``${imageInfo.height}``, ``${imageInfo.width}`` and ``${imageInfo.format}``
(oss-protocol.md §2.2) and for file records. Neither function decodes a whole image or video.
"""

from __future__ import annotations

from dataclasses import dataclass

from ossdrop.core.errors import OSSError
from ossdrop.media.image.formats import open_image, oss_format


@dataclass(frozen=True)
class ImageInfo:
    """Stored (not EXIF-rotated) size and the OSS format name: jpg, png, gif, webp, bmp, tiff, heic, avif."""

    width: int
    height: int
    format: str


@dataclass(frozen=True)
class VideoInfo:
    """Duration in seconds, coded frame size, and ``rotation``: clockwise degrees (0/90/180/270) to display it.

    ``rotation`` matches the classic MP4 ``rotate`` tag (a portrait phone video says 90).
    """

    duration: float
    width: int
    height: int
    rotation: int


def image_info(path: str) -> ImageInfo | None:
    """Header facts of the image at ``path``, or ``None`` when it is not a supported image."""
    try:
        image = open_image(path)
    except OSSError:
        return None
    with image:
        return ImageInfo(width=image.width, height=image.height, format=oss_format(image))


def video_info(path: str) -> VideoInfo | None:
    """Facts of the first video stream at ``path`` via PyAV, or ``None`` when there is none or it is unreadable.

    The rotation comes from the first decoded frame's display matrix (FFmpeg attaches the stream's matrix to
    frames), so at most a few packets are read.
    """
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            duration = 0.0
            if container.duration is not None:
                duration = container.duration / 1_000_000  # AV_TIME_BASE
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            rotation = 0
            for frame in container.decode(stream):
                rotation = round(-frame.rotation) % 360  # FFmpeg's display matrix angle is counter-clockwise
                break
            return VideoInfo(duration, stream.codec_context.width, stream.codec_context.height, rotation)
    except (av.FFmpegError, OSError, ValueError):
        return None
