"""Header-only image facts for callbacks (oss-protocol.md §2.2 imageInfo)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ossdrop.media.probe import ImageInfo, image_info


@pytest.mark.parametrize(
    ("pil", "name"),
    [
        ("JPEG", "jpg"),
        ("PNG", "png"),
        ("GIF", "gif"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
        ("AVIF", "avif"),
    ],
)
def test_image_info_formats(tmp_path: Path, pil: str, name: str) -> None:
    path = tmp_path / f"a.{name}"
    Image.new("RGB", (33, 21), (1, 2, 3)).save(path, pil)
    assert image_info(str(path)) == ImageInfo(33, 21, name)


def test_image_info_heic(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = tmp_path / "a.heic"
    Image.new("RGB", (64, 48)).save(path, "HEIF")
    assert image_info(str(path)) == ImageInfo(64, 48, "heic")


def test_image_info_reads_only_the_header(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (3000, 2000)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 4])  # pixels cut off: the header still answers
    assert image_info(str(path)) == ImageInfo(3000, 2000, "jpg")


def test_image_info_of_non_image_is_none(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello")
    assert image_info(str(path)) is None
