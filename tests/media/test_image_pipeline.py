"""process_image end to end on fixtures the tests make themselves (oss-protocol.md §7)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from ossdrop.core.errors import OSSError
from ossdrop.media.image import process_image
from ossdrop.media.image.formats import open_image
from ossdrop.media.image.load import new_context, shrink_on_load
from ossdrop.media.limits import Limits
from ossdrop.media.result import Processed
from ossdrop.protocol.process_spec import parse_process

LIMITS = Limits()


def run(path: Path, process: str, limits: Limits = LIMITS, **kwargs: object) -> Processed:
    ops = parse_process(process).ops
    return process_image(str(path), ops, file_size=path.stat().st_size, limits=limits, **kwargs)  # type: ignore[arg-type]


def decode(result: Processed) -> Image.Image:
    image = Image.open(io.BytesIO(result.body))
    image.load()
    return image


def halves(path: Path, size: tuple[int, int] = (40, 20), orientation: int = 1, fmt: str = "JPEG") -> Path:
    """Left half red, right half blue; optional EXIF orientation."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    exif[0x0132] = "2024:01:02 03:04:05"
    image.save(path, fmt, exif=exif.tobytes(), quality=90)
    return path


def near(pixel: object, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


@pytest.mark.parametrize(
    ("mode", "size"),
    [("lfit", (150, 75)), ("mfit", (160, 80)), ("fill", (150, 80)), ("pad", (150, 80)), ("fixed", (150, 80))],
)
def test_resize_modes_worked_example(tmp_path: Path, mode: str, size: tuple[int, int]) -> None:
    source = halves(tmp_path / "a.jpg", (200, 100))
    result = run(source, f"image/resize,m_{mode},w_150,h_80")
    assert result.content_type == "image/jpeg"
    assert decode(result).size == size


def test_resize_limit_returns_source_size(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.png", (200, 100), fmt="PNG")
    assert decode(run(source, "image/resize,w_400")).size == (200, 100)
    assert decode(run(source, "image/resize,w_400,limit_0")).size == (400, 200)


def test_pad_uses_color(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.png", (200, 100), fmt="PNG")
    image = decode(run(source, "image/resize,m_pad,w_100,h_100,color_00FF00"))
    assert image.size == (100, 100)
    assert image.convert("RGB").getpixel((50, 2)) == (0, 255, 0)


def test_shrink_on_load_decodes_a_12mp_jpeg_at_reduced_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (90, 120, 150)).save(path, quality=85)
    ops = parse_process("image/resize,w_256").ops
    with open_image(str(path)) as source:
        ctx = new_context(source, LIMITS, None)
        shrink_on_load(ctx, source, ops)
        assert source.size == (500, 375)  # libjpeg 1/8 scale: full pixels never exist
        assert ctx.logical_size == (4000, 3000)
    assert decode(run(path, "image/resize,w_256")).size == (256, 192)


def test_shrink_on_load_keeps_exact_oss_geometry_on_odd_sizes(tmp_path: Path) -> None:
    path = tmp_path / "odd.jpg"
    Image.new("RGB", (4001, 2999), (90, 120, 150)).save(path, quality=85)
    assert decode(run(path, "image/resize,w_300")).size == (300, 225)  # 2999*300/4001 = 224.87 -> 225
    assert decode(run(path, "image/resize,m_fill,w_100,h_100")).size == (100, 100)


def test_auto_orient_applies_exif_and_resets_orientation(tmp_path: Path) -> None:
    source = halves(tmp_path / "o.jpg", (40, 20), orientation=6)
    image = decode(run(source, "image/auto-orient,1"))
    assert image.size == (20, 40)
    assert near(image.getpixel((10, 5)), (255, 0, 0)) and near(image.getpixel((10, 35)), (0, 0, 255))
    assert image.getexif().get(0x0112, 1) == 1


def test_auto_orient_then_resize_uses_displayed_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    image = Image.new("RGB", (4000, 3000), (90, 120, 150))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, exif=exif.tobytes())
    assert decode(run(path, "image/auto-orient,1/resize,w_300")).size == (300, 400)


def test_without_auto_orient_the_orientation_is_kept(tmp_path: Path) -> None:
    source = halves(tmp_path / "o.jpg", (40, 20), orientation=6)
    image = decode(run(source, "image/resize,w_20"))
    assert image.size == (20, 10)
    assert image.getexif().get(0x0112) == 6


def test_heic_input(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = tmp_path / "a.heic"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(path, format="HEIF", quality=90)
    image = decode(run(path, "image/resize,w_32/format,png"))
    assert (image.format, image.size) == ("PNG", (32, 24))
    assert near(image.getpixel((16, 12)), (200, 10, 10))
    info = json.loads(run(path, "image/info").body)
    assert info["Format"] == {"value": "heic"}


def test_png_alpha_to_jpg_becomes_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    image = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (30, 30, 50, 50))
    image.save(path)
    result = run(path, "image/format,jpg")
    out = decode(result)
    assert (result.content_type, out.mode) == ("image/jpeg", "RGB")
    assert near(out.getpixel((0, 0)), (255, 255, 255), 8) and near(out.getpixel((40, 40)), (255, 0, 0))


def _gif(path: Path, frames: int, size: tuple[int, int] = (100, 50)) -> Path:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    images = [Image.new("RGB", size, colours[i % 5]) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)
    return path


def test_animated_gif_resizes_every_frame(tmp_path: Path) -> None:
    result = run(_gif(tmp_path / "a.gif", 5), "image/resize,w_50")
    out = Image.open(io.BytesIO(result.body))
    assert (result.content_type, out.size, out.n_frames) == ("image/gif", (50, 25), 5)
    out.seek(2)
    assert near(out.convert("RGB").getpixel((25, 12)), (0, 0, 255))


def test_animated_gif_frame_cap_and_percent_makes_static(tmp_path: Path) -> None:
    path = _gif(tmp_path / "a.gif", 5)
    capped = Image.open(io.BytesIO(run(path, "image/resize,w_50", Limits(max_gif_frames=3)).body))
    assert capped.n_frames == 3
    static = Image.open(io.BytesIO(run(path, "image/resize,p_50").body))
    assert (static.size, static.n_frames) == ((50, 25), 1)


def test_gif_is_never_enlarged(tmp_path: Path) -> None:
    out = Image.open(io.BytesIO(run(_gif(tmp_path / "a.gif", 3), "image/resize,w_200,limit_0").body))
    assert (out.size, out.n_frames) == ((100, 50), 3)


def test_frames_count_toward_pixel_limit(tmp_path: Path) -> None:
    path = _gif(tmp_path / "a.gif", 3, (10, 10))
    with pytest.raises(OSSError) as info:
        run(path, "image/resize,w_5", Limits(max_source_pixels=250))
    assert info.value.code == "ImageTooLarge"
    run(path, "image/resize,w_5", Limits(max_source_pixels=300))


def _png_header_only(path: Path, width: int, height: int) -> Path:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.mark.parametrize("size", [(100_000, 100_000), (40_000, 10), (16_000, 16_000)])
def test_bomb_is_refused_from_the_header(tmp_path: Path, size: tuple[int, int]) -> None:
    import resource
    import tracemalloc

    path = _png_header_only(tmp_path / "bomb.png", *size)
    assert path.stat().st_size < 200
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    with pytest.raises(OSSError) as info:
        run(path, "image/resize,w_100")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.code == "ImageTooLarge"
    assert peak < 5 * 1024 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB on Linux


def test_source_file_size_limit(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.jpg")
    with pytest.raises(OSSError) as info:
        process_image(str(source), parse_process("image/resize,w_10").ops, file_size=21 * 1024 * 1024, limits=LIMITS)
    assert info.value.code == "ImageTooLarge"


def test_output_limit(tmp_path: Path) -> None:
    source = halves(tmp_path / "a.png", (200, 100), fmt="PNG")
    with pytest.raises(OSSError) as info:
        run(source, "image/resize,m_fixed,w_16384,h_16384,limit_0")
    assert info.value.code == "ImageTooLarge"


def test_not_an_image_is_bad_request(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(b"this is not an image at all")
    with pytest.raises(OSSError) as info:
        run(path, "image/resize,w_10")
    assert info.value.code == "BadRequest"
