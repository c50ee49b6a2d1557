"""Image format names as OSS spells them, content types, and the one guarded way to open an image file.

Opening reads only the header. Pillow's own decompression-bomb check runs there too; it is turned into
``ImageTooLarge`` so a file whose header declares 100000x100000 px is refused before any pixel is decoded.
"""

from __future__ import annotations

import functools
import warnings

from PIL import Image, UnidentifiedImageError

from ossdrop.core.errors import OSSError

# Pillow format id -> OSS format name (§7.2 info "Format", §7.1 supported sources)
OSS_FORMAT_NAMES: dict[str, str] = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tiff",
    "HEIF": "heic",
    "AVIF": "avif",
}

CONTENT_TYPES: dict[str, str] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "avif": "image/avif",
}


@functools.cache
def register_openers() -> None:
    """Teach Pillow to read HEIC through pillow-heif (idempotent; AVIF is built into Pillow)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def open_image(path: str) -> Image.Image:
    """Open ``path`` lazily (header only).

    Raises ``ImageTooLarge`` when Pillow's bomb guard trips and ``BadRequest`` for a file that is not a
    supported image.
    """
    register_openers()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:
        raise OSSError("ImageTooLarge", "The image has too many pixels to be processed.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise OSSError("BadRequest", "The source is not a supported image.") from None
    if image.format not in OSS_FORMAT_NAMES:
        image.close()
        raise OSSError("BadRequest", f"The image format {image.format} is not supported.")
    return image


def oss_format(image: Image.Image) -> str:
    """OSS name of an opened image's format (``jpg``, ``png``, ...)."""
    return OSS_FORMAT_NAMES.get(image.format or "", "jpg")


def frame_count(image: Image.Image) -> int:
    """Number of frames; walks GIF/WebP headers without decoding pixels."""
    return int(getattr(image, "n_frames", 1))
