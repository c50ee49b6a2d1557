"""The non-resize image actions (oss-protocol.md §7.2)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import urlsafe_b64encode
from ossdrop.media.image.encode import estimate_jpeg_quality
from ossdrop.media.limits import Limits
from tests.media.test_image_pipeline import decode, halves, near, run


def solid(path: Path, colour: tuple[int, ...], size: tuple[int, int] = (60, 40), fmt: str = "PNG") -> Path:
    Image.new("RGBA" if len(colour) == 4 else "RGB", size, colour).save(path, fmt)
    return path


@pytest.mark.parametrize(
    ("name", "pil", "content_type"),
    [
        ("jpg", "JPEG", "image/jpeg"),
        ("png", "PNG", "image/png"),
        ("webp", "WEBP", "image/webp"),
        ("bmp", "BMP", "image/bmp"),
        ("tiff", "TIFF", "image/tiff"),
        ("avif", "AVIF", "image/avif"),
        ("heic", "HEIF", "image/heic"),
    ],
)
def test_format_outputs(tmp_path: Path, name: str, pil: str, content_type: str) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    result = run(halves(tmp_path / "a.jpg", (64, 32)), f"image/format,{name}")
    image = decode(result)
    assert (result.content_type, image.format, image.size) == (content_type, pil, (64, 32))


def test_format_gif_on_non_gif_keeps_source_format(tmp_path: Path) -> None:
    assert run(halves(tmp_path / "a.png", fmt="PNG"), "image/format,gif").content_type == "image/png"


def test_quality_relative_and_absolute(tmp_path: Path) -> None:
    path = tmp_path / "q80.jpg"
    Image.new("RGB", (64, 64), (10, 100, 200)).save(path, quality=80)
    assert estimate_jpeg_quality(decode(run(path, "image/quality,q_50"))) == 40
    assert estimate_jpeg_quality(decode(run(path, "image/quality,Q_95"))) == 80  # capped at the source
    assert estimate_jpeg_quality(decode(run(path, "image/quality,Q_30,q_90"))) == 30  # Q wins


def test_interlace_makes_progressive_jpeg(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.jpg")
    assert decode(run(source, "image/interlace,1")).info.get("progressive") == 1
    assert "progressive" not in decode(run(source, "image/interlace,0")).info


def test_info_json(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.jpg", (40, 20), orientation=6)
    result = process_info(source)
    assert result["FileSize"] == {"value": str(source.stat().st_size)}
    assert result["Format"] == {"value": "jpg"}
    assert (result["ImageWidth"], result["ImageHeight"]) == ({"value": "40"}, {"value": "20"})
    assert result["Orientation"] == {"value": "6"}
    assert result["DateTime"] == {"value": "2024:01:02 03:04:05"}
    assert list(result) == sorted(result)


def process_info(path: Path) -> dict[str, dict[str, str]]:
    result = run(path, "image/info")
    assert result.content_type == "application/json"
    body: dict[str, dict[str, str]] = json.loads(result.body)
    return body


def test_average_hue(tmp_path: Path) -> None:
    result = run(solid(tmp_path / "s.png", (10, 200, 30)), "image/average-hue")
    assert json.loads(result.body) == {"RGB": "0x0AC81E"}


def test_rotate(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.png", (40, 20), fmt="PNG")
    turned = decode(run(source, "image/rotate,90"))
    assert turned.size == (20, 40)
    assert turned.convert("RGB").getpixel((10, 5)) == (255, 0, 0)  # clockwise: the left half goes on top
    assert decode(run(source, "image/rotate,45")).size[0] > 40
    with pytest.raises(OSSError) as info:
        run(source, "image/rotate,90", Limits(max_rotate_side=30))
    assert info.value.code == "ImageTooLarge"


def test_crop_end_to_end(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.png", (200, 100), fmt="PNG")
    image = decode(run(source, "image/crop,w_50,h_40,g_se"))
    assert image.size == (50, 40)
    assert image.convert("RGB").getpixel((25, 20)) == (0, 0, 255)
    with pytest.raises(OSSError) as info:
        run(source, "image/crop,x_300")
    assert info.value.code == "BadRequest"


def test_index_crop_end_to_end(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.png", (200, 100), fmt="PNG")
    assert decode(run(source, "image/indexcrop,x_60,i_3")).size == (20, 100)
    assert decode(run(source, "image/indexcrop,x_60,i_9")).size == (200, 100)


def test_circle_png_and_jpg(tmp_path: Path) -> None:
    source = solid(tmp_path / "s.png", (255, 0, 0), (100, 60))
    png = decode(run(source, "image/circle,r_100"))
    assert png.size == (60, 60)
    assert png.getpixel((0, 0))[3] == 0 and png.getpixel((30, 30)) == (255, 0, 0, 255)  # type: ignore[index]
    jpg = decode(run(source, "image/circle,r_20/format,jpg"))
    assert jpg.size == (40, 40) and near(jpg.getpixel((0, 0)), (255, 255, 255), 10)


def test_rounded_corners(tmp_path: Path) -> None:
    image = decode(run(solid(tmp_path / "s.png", (0, 0, 255), (60, 40)), "image/rounded-corners,r_10"))
    assert image.size == (60, 40)
    assert image.getpixel((0, 0))[3] == 0 and image.getpixel((30, 20))[3] == 255  # type: ignore[index]


def test_bright_contrast_blur_sharpen(tmp_path: Path) -> None:
    source = solid(tmp_path / "s.png", (100, 100, 100))
    assert decode(run(source, "image/bright,100")).getpixel((5, 5)) == (255, 255, 255)
    assert decode(run(source, "image/bright,-100")).getpixel((5, 5)) == (0, 0, 0)
    edges = halves(tmp_path / "h.png", (40, 20), fmt="PNG")
    flat = decode(run(edges, "image/contrast,-100")).convert("RGB")
    assert flat.getpixel((0, 0)) == flat.getpixel((39, 0))
    blurred = decode(run(edges, "image/blur,r_5,s_3")).convert("RGB")
    assert blurred.getpixel((19, 10)) not in ((255, 0, 0), (0, 0, 255))
    assert decode(run(edges, "image/sharpen,100")).size == (40, 20)


def test_text_watermark(tmp_path: Path) -> None:
    source = solid(tmp_path / "s.png", (255, 255, 255), (200, 100))
    text = urlsafe_b64encode("OSS")
    image = decode(run(source, f"image/watermark,text_{text},color_FF0000,size_30,g_se,x_10,y_10")).convert("RGB")
    corner = image.crop((100, 50, 190, 90))
    assert any(near(p, (255, 0, 0), 60) for p in corner.getdata())
    assert all(p == (255, 255, 255) for p in image.crop((0, 0, 80, 40)).getdata())


def test_image_watermark_via_load_object(tmp_path: Path) -> None:
    base = solid(tmp_path / "base.png", (255, 255, 255), (200, 100))
    logo = solid(tmp_path / "logo.png", (255, 0, 0), (40, 40))
    loaded: list[str] = []

    def load(key: str) -> str:
        loaded.append(key)
        return str(logo)

    mark = urlsafe_b64encode("logos/logo.png?x-oss-process=image/resize,P_10")
    result = run(base, f"image/watermark,image_{mark},g_nw,x_0,y_0,t_50", load_object=load)
    image = decode(result).convert("RGB")
    assert loaded == ["logos/logo.png"]
    assert near(image.getpixel((3, 3)), (255, 128, 128), 3)  # 50% red over white
    assert image.getpixel((12, 12)) == (255, 255, 255)  # P_10 of 200x100 -> 10x10 mark


def test_animated_gif_with_watermark_uses_every_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (60, 30), c) for c in ((0, 0, 0), (0, 0, 255))]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    out = Image.open(io.BytesIO(run(path, f"image/watermark,text_{urlsafe_b64encode('x')},size_10").body))
    assert out.n_frames == 2
