"""video/snapshot on a clip whose frames show their own number as 8 black/white bars (oss-protocol.md §8)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import Snapshot
from ossdrop.media.limits import Limits
from ossdrop.media.probe import video_info
from ossdrop.media.video import snapshot

FPS = 25
FRAMES = 125  # 5 s
GOP = 50  # a keyframe every 2 s
WIDTH, HEIGHT = 320, 240


def frame_image(number: int) -> Image.Image:
    """Bit i of ``number`` is column i (40 px wide): white for 1, black for 0."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 0))
    for bit in range(8):
        if number >> bit & 1:
            image.paste((255, 255, 255), (bit * 40, 0, bit * 40 + 40, HEIGHT))
    return image


def read_number(image: Image.Image) -> int:
    gray = image.convert("L")
    width, height = gray.size
    column = width / 8
    bits = [int(gray.getpixel((int(column * bit + column / 2), height // 2)) > 128) for bit in range(8)]  # type: ignore[operator]
    return sum(bit << i for i, bit in enumerate(bits))


def encode_clip(path: Path, frames: list[Image.Image], rotation: int | None = None) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"}
        )
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "numbers.mp4"
    return encode_clip(path, [frame_image(n) for n in range(FRAMES)])


def shot(path: Path, **kwargs: object) -> Image.Image:
    result = snapshot(str(path), Snapshot(**kwargs), limits=Limits())  # type: ignore[arg-type]
    image = Image.open(io.BytesIO(result.body))
    image.load()
    return image


def test_bars_survive_encoding(clip: Path) -> None:
    assert read_number(frame_image(173)) == 173
    assert read_number(shot(clip, t_ms=0)) == 0


@pytest.mark.parametrize(("t_ms", "frame"), [(40, 1), (1000, 25), (1999, 49), (2000, 50), (3030, 75), (4960, 124)])
def test_exact_frame(clip: Path, t_ms: int, frame: int) -> None:
    assert read_number(shot(clip, t_ms=t_ms)) == frame


@pytest.mark.parametrize(("t_ms", "keyframe"), [(1999, 0), (2000, 50), (3030, 50), (4500, 100)])
def test_fast_returns_keyframe_before(clip: Path, t_ms: int, keyframe: int) -> None:
    assert read_number(shot(clip, t_ms=t_ms, fast=True)) == keyframe


def test_past_the_end_returns_last_frame(clip: Path) -> None:
    assert read_number(shot(clip, t_ms=60_000)) == FRAMES - 1


def test_formats_and_scaling(clip: Path) -> None:
    result = snapshot(str(clip), Snapshot(t_ms=1000, fmt="png"), limits=Limits())
    assert result.content_type == "image/png"
    assert snapshot(str(clip), Snapshot(t_ms=1000), limits=Limits()).content_type == "image/jpeg"
    assert shot(clip, t_ms=1000, w=160).size == (160, 120)
    assert shot(clip, t_ms=1000, h=60).size == (80, 60)
    assert shot(clip, t_ms=1000, w=100, h=100).size == (100, 100)
    assert read_number(shot(clip, t_ms=1000, w=160)) == 25


def test_size_over_the_video_is_invalid(clip: Path) -> None:
    with pytest.raises(OSSError) as info:
        shot(clip, w=321)
    assert (info.value.code, info.value.ec) == ("InvalidArgument", "0053-00000104")


def test_auto_rotate_follows_display_matrix(tmp_path: Path) -> None:
    image = Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, WIDTH // 2, HEIGHT))  # left half white
    path = encode_clip(tmp_path / "portrait.mp4", [image] * 5, rotation=-90)  # shown turned 90° clockwise
    upright = shot(path, auto_rotate=True)
    assert upright.size == (HEIGHT, WIDTH)
    gray = upright.convert("L")
    assert gray.getpixel((120, 40)) > 200 and gray.getpixel((120, 280)) < 50  # type: ignore[operator]
    assert shot(path).size == (WIDTH, HEIGHT)
    assert shot(path, auto_rotate=True, w=120).size == (120, 160)
    info = video_info(str(path))
    assert info is not None and (info.width, info.height, info.rotation) == (WIDTH, HEIGHT, 90)


def test_video_info(clip: Path) -> None:
    info = video_info(str(clip))
    assert info is not None
    assert (info.width, info.height, info.rotation) == (WIDTH, HEIGHT, 0)
    assert info.duration == pytest.approx(5.0, abs=0.05)


@pytest.mark.parametrize("content", [b"", b"\x00" * 1000, b"not a video, just text" * 50])
def test_corrupt_input_is_invalid_argument(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(OSSError) as info:
        shot(path, t_ms=1000)
    assert info.value.code == "InvalidArgument" and "not a supported video" in info.value.message
    assert video_info(str(path)) is None


def test_truncated_and_non_h264_inputs(clip: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(OSSError) as info:
        shot(truncated, t_ms=1000)
    assert info.value.code == "InvalidArgument"
    png = tmp_path / "still.png"
    Image.new("RGB", (10, 10)).save(png)
    with pytest.raises(OSSError) as info:
        shot(png)
    assert info.value.code == "InvalidArgument"
