"""Source and output size guards for media processing (oss-protocol.md §7.1 limits)."""

from __future__ import annotations

from dataclasses import dataclass

from ossdrop.core.errors import OSSError


@dataclass(frozen=True)
class Limits:
    """What the media layer accepts and produces; defaults are OSS's (§7.1).

    ``max_gif_frames`` caps how many frames of an animation are decoded, so that resizing a GIF never holds
    more than ``max_gif_frames`` frames in memory; ``max_rotate_side`` is the ``rotate`` source limit.
    """

    max_source_bytes: int = 20 * 1024 * 1024
    max_source_side: int = 30_000
    max_source_pixels: int = 250_000_000
    max_output_side: int = 16_384
    max_output_pixels: int = 16_777_216
    max_gif_frames: int = 300
    max_rotate_side: int = 4096

    def check_file_size(self, file_size: int) -> None:
        """Raise ``ImageTooLarge`` for a source file over ``max_source_bytes``."""
        if file_size > self.max_source_bytes:
            raise OSSError("ImageTooLarge", f"The source file is over {self.max_source_bytes} bytes.")

    def check_source(self, width: int, height: int, frames: int = 1) -> None:
        """Raise ``ImageTooLarge`` for a side over 30000 px or more than 250 MP (width x height x frames)."""
        if max(width, height) > self.max_source_side:
            raise OSSError("ImageTooLarge", f"The image side is over {self.max_source_side} px.")
        if width * height * max(frames, 1) > self.max_source_pixels:
            raise OSSError("ImageTooLarge", f"The image is over {self.max_source_pixels} pixels.")

    def check_output(self, width: int, height: int) -> None:
        """Raise ``ImageTooLarge`` for an output side over 16384 px or more than 16777216 pixels."""
        if max(width, height) > self.max_output_side or width * height > self.max_output_pixels:
            raise OSSError(
                "ImageTooLarge",
                f"The target image {width}x{height} is over {self.max_output_side} px a side "
                f"or {self.max_output_pixels} pixels.",
            )
