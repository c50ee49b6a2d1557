"""Resize and crop geometry against the OSS examples (oss-protocol.md §7.2)."""

from __future__ import annotations

import pytest

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import Crop, IndexCrop, Resize
from ossdrop.media.image.geometry import ResizePlan, crop_box, index_box, place, resize_plan, round_div


@pytest.mark.parametrize(
    ("mode", "scaled", "canvas", "offset"),
    [
        ("lfit", (150, 75), (150, 75), (0, 0)),
        ("mfit", (160, 80), (160, 80), (0, 0)),
        ("fill", (160, 80), (150, 80), (-5, 0)),
        ("pad", (150, 75), (150, 80), (0, 2)),
        ("fixed", (150, 80), (150, 80), (0, 0)),
    ],
)
def test_resize_worked_example(
    mode: str, scaled: tuple[int, int], canvas: tuple[int, int], offset: tuple[int, int]
) -> None:
    plan = resize_plan((200, 100), Resize(mode=mode, w=150, h=80))  # type: ignore[arg-type]
    assert plan == ResizePlan(scaled, canvas, offset)


def test_resize_one_side_is_proportional_for_lfit_and_mfit() -> None:
    assert resize_plan((200, 100), Resize(w=50)) == ResizePlan((50, 25), (50, 25))
    assert resize_plan((200, 100), Resize(mode="mfit", h=50)) == ResizePlan((100, 50), (100, 50))


def test_resize_one_side_is_a_square_for_fixed_fill_pad() -> None:
    assert resize_plan((200, 100), Resize(mode="fixed", h=50)) == ResizePlan((50, 50), (50, 50))
    assert resize_plan((200, 100), Resize(mode="fill", w=50)) == ResizePlan((100, 50), (50, 50), (-25, 0))
    assert resize_plan((200, 100), Resize(mode="pad", w=50)) == ResizePlan((50, 25), (50, 50), (0, 12))


def test_resize_rounds_half_up() -> None:
    assert round_div(5, 2) == 3 and round_div(7, 3) == 2 and round_div(1, 1000) == 1
    # 300x101 to w=150 -> 50.5 -> 51
    assert resize_plan((300, 101), Resize(w=150)) == ResizePlan((150, 51), (150, 51))
    assert resize_plan((3, 3), Resize(p=50)) == ResizePlan((2, 2), (2, 2))


def test_resize_limit_never_enlarges() -> None:
    assert resize_plan((200, 100), Resize(w=400)) is None
    assert resize_plan((200, 100), Resize(mode="fill", w=150, h=150)) is None
    assert resize_plan((200, 100), Resize(mode="fixed", w=250, h=50)) is None
    assert resize_plan((200, 100), Resize(w=400, limit=False)) == ResizePlan((400, 200), (400, 200))
    assert resize_plan((200, 100), Resize(w=400, limit=False), no_enlarge=True) is None


def test_resize_longer_and_shorter_sides() -> None:
    assert resize_plan((400, 200), Resize(longer=100)) == ResizePlan((100, 50), (100, 50))
    assert resize_plan((200, 400), Resize(longer=100)) == ResizePlan((50, 100), (50, 100))
    assert resize_plan((400, 200), Resize(shorter=100)) == ResizePlan((200, 100), (200, 100))
    # §7.2: 400x200 into l=800,s=100: ratios 0.5 and 2, the 200 px side limits -> 200x100
    assert resize_plan((400, 200), Resize(longer=800, shorter=100, limit=False)) == ResizePlan((200, 100), (200, 100))


def test_resize_w_h_make_l_s_ignored_and_win_over_p() -> None:
    assert resize_plan((400, 200), Resize(w=100, longer=10, p=10)) == ResizePlan((100, 50), (100, 50))


def test_resize_percent() -> None:
    assert resize_plan((200, 100), Resize(p=50)) == ResizePlan((100, 50), (100, 50))
    assert resize_plan((200, 100), Resize(p=150)) == ResizePlan((300, 150), (300, 150))


@pytest.mark.parametrize(
    ("gravity", "box"),
    [
        ("nw", (0, 0, 100, 50)),
        ("north", (50, 0, 150, 50)),
        ("ne", (100, 0, 200, 50)),
        ("west", (0, 25, 100, 75)),
        ("center", (50, 25, 150, 75)),
        ("east", (100, 25, 200, 75)),
        ("sw", (0, 50, 100, 100)),
        ("south", (50, 50, 150, 100)),
        ("se", (100, 50, 200, 100)),
    ],
)
def test_crop_gravity_cells(gravity: str, box: tuple[int, int, int, int]) -> None:
    assert crop_box((200, 100), Crop(w=100, h=50, gravity=gravity)) == box  # type: ignore[arg-type]


def test_crop_offset_and_clamp() -> None:
    assert crop_box((200, 100), Crop(x=150, y=50)) == (150, 50, 200, 100)
    assert crop_box((200, 100), Crop(w=300, h=300, x=10, y=10)) == (10, 10, 200, 100)
    assert crop_box((200, 100), Crop(w=100, h=50, x=10, y=10, gravity="se")) == (110, 60, 200, 100)


@pytest.mark.parametrize("op", [Crop(x=200), Crop(y=100), Crop(w=10, h=10, x=20, gravity="se")])
def test_crop_start_outside_is_bad_request(op: Crop) -> None:
    with pytest.raises(OSSError) as info:
        crop_box((200, 100), op)
    assert (info.value.code, info.value.message) == ("BadRequest", "Advance cut's position is out of image.")


def test_index_crop_slices() -> None:
    assert index_box((250, 100), IndexCrop("x", 100, 2)) == (200, 0, 250, 100)
    assert index_box((250, 100), IndexCrop("y", 30, 1)) == (0, 30, 250, 60)
    assert index_box((250, 100), IndexCrop("x", 100, 3)) is None


def test_watermark_placement() -> None:
    assert place((200, 100), (20, 10), "se", (10, 10)) == (170, 80)
    assert place((200, 100), (20, 10), "nw", (5, 6)) == (5, 6)
    assert place((200, 100), (20, 10), "east", (10, 10), voffset=5) == (170, 40)
