"""x-oss-process grammar (oss-protocol.md §7.1, §7.2, §8)."""

from __future__ import annotations

import pytest

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import (
    AutoOrient,
    AverageHue,
    Blur,
    Bright,
    Circle,
    Contrast,
    Crop,
    Format,
    IndexCrop,
    Info,
    Interlace,
    Quality,
    Resize,
    Rotate,
    RoundedCorners,
    Sharpen,
    Snapshot,
    Watermark,
    WatermarkImage,
    urlsafe_b64encode,
)
from ossdrop.protocol.process_spec import SaveAs, parse_process


def test_parse_image_chain_in_order() -> None:
    spec = parse_process("image/resize,m_fill,w_100,h_100/quality,q_80/format,webp")
    assert spec.kind == "image"
    assert spec.ops == (Resize(mode="fill", w=100, h=100), Quality(relative=80), Format("webp"))


def test_parse_every_action() -> None:
    value = (
        "image/auto-orient,1/crop,w_10,h_20,x_3,y_4,g_se/rotate,90/interlace,1/blur,r_3,s_2/bright,-50"
        "/contrast,30/sharpen,100/circle,r_50/rounded-corners,r_8/indexcrop,x_30,i_2/average-hue/info"
        "/quality,Q_70/resize,l_300,limit_0,color_ff0000/resize,p_50"
    )
    assert parse_process(value).ops == (
        AutoOrient(True),
        Crop(w=10, h=20, x=3, y=4, gravity="se"),
        Rotate(90),
        Interlace(True),
        Blur(3, 2),
        Bright(-50),
        Contrast(30),
        Sharpen(100),
        Circle(50),
        RoundedCorners(8),
        IndexCrop("x", 30, 2),
        AverageHue(),
        Info(),
        Quality(absolute=70),
        Resize(longer=300, limit=False, color="FF0000"),
        Resize(p=50),
    )


def test_parse_indexcrop_y_wins_over_x() -> None:
    assert parse_process("image/indexcrop,x_10,y_20,i_1").ops == (IndexCrop("y", 20, 1),)


def test_parse_snapshot() -> None:
    spec = parse_process("video/snapshot,t_7000,f_jpg,w_800,h_600,m_fast,ar_auto")
    assert spec.kind == "video"
    assert spec.snapshot == Snapshot(t_ms=7000, w=800, h=600, fast=True, fmt="jpg", auto_rotate=True)
    assert parse_process("video/snapshot,t_0").snapshot == Snapshot()


def test_parse_style_reference() -> None:
    spec = parse_process("style/thumb-small")
    assert (spec.kind, spec.style, spec.ops) == ("style", "thumb-small", ())
    assert spec.canonical() == "style/thumb-small"


def test_parse_save_as_tail() -> None:
    o, b = urlsafe_b64encode("out/a b.jpg"), urlsafe_b64encode("bucket-x")
    assert "=" not in o
    spec = parse_process(f"image/resize,w_100|sys/saveas,o_{o},b_{b}")
    assert spec.ops == (Resize(w=100),)
    assert spec.save_as == SaveAs(key="out/a b.jpg", bucket="bucket-x")
    assert spec.canonical() == "image/resize,m_lfit,w_100,limit_1,color_FFFFFF"
    assert parse_process(f"image/info|sys/saveas,o_{o}").save_as == SaveAs("out/a b.jpg")


def test_canonical_is_stable_across_spellings() -> None:
    a = parse_process("image/resize,h_80,w_150,m_lfit/format,png")
    b = parse_process("image/resize,w_150,h_80/format,png/")
    assert a.canonical() == b.canonical() == "image/resize,m_lfit,w_150,h_80,limit_1,color_FFFFFF/format,png"
    assert parse_process(a.canonical()) == a
    snap = parse_process("video/snapshot,m_fast,t_1000,f_png")
    assert snap.canonical() == "video/snapshot,t_1000,f_png,w_0,h_0,m_fast"


def test_parse_text_and_image_watermark() -> None:
    text = urlsafe_b64encode("Hello 世界")
    image = urlsafe_b64encode("logo.png?x-oss-process=image/resize,P_20")
    spec = parse_process(f"image/watermark,text_{text},color_FF0000,size_30,g_nw,x_5,y_6,t_50/watermark,image_{image}")
    assert spec.ops == (
        Watermark(text="Hello 世界", color="FF0000", size=30, gravity="nw", x=5, y=6, opacity=50),
        Watermark(image=WatermarkImage("logo.png", (Resize(base_percent=20),))),
    )
    assert parse_process(spec.canonical()) == spec


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ("image/resize,w_0", "w"),
        ("image/resize,w_16385", "w"),
        ("image/resize,h_abc", "h"),
        ("image/resize,l_-1", "l"),
        ("image/resize,s_20000", "s"),
        ("image/resize,m_stretch,w_10", "m"),
        ("image/resize,p_1001", "p"),
        ("image/resize,w_10,limit_2", "limit"),
        ("image/resize,w_10,color_GGGGGG", "color"),
        ("image/resize,P_10", "P"),
        ("image/crop,g_middle", "g"),
        ("image/crop,x_-5", "x"),
        ("image/rotate,361", "rotate"),
        ("image/rotate,abc", "rotate"),
        ("image/auto-orient,2", "auto-orient"),
        ("image/format,jpeg2000", "format"),
        ("image/quality,q_0", "q"),
        ("image/quality,Q_101", "Q"),
        ("image/quality,q_image", "q"),
        ("image/interlace,5", "interlace"),
        ("image/blur,r_51,s_2", "r"),
        ("image/blur,r_5,s_0", "s"),
        ("image/bright,101", "bright"),
        ("image/contrast,-101", "contrast"),
        ("image/sharpen,49", "sharpen"),
        ("image/sharpen,400", "sharpen"),
        ("image/circle,r_4097", "r"),
        ("image/rounded-corners,r_0", "r"),
        ("image/indexcrop,x_0", "x"),
        ("image/watermark,text_SGk,t_101", "t"),
        ("image/watermark,text_SGk,size_0", "size"),
        ("image/watermark,text_SGk,voffset_1001", "voffset"),
        ("image/watermark,text_SGk,g_top", "g"),
        ("video/snapshot,t_-1", "t"),
        ("video/snapshot,w_x", "w"),
        ("video/snapshot,f_gif", "f"),
        ("video/snapshot,m_slow", "m"),
        ("image/resize,w_10,zz_1", "zz"),
    ],
)
def test_bad_values_are_invalid_argument_naming_the_parameter(value: str, param: str) -> None:
    with pytest.raises(OSSError) as info:
        parse_process(value)
    assert info.value.code == "InvalidArgument"
    assert f"of parameter: {param} is invalid.reason:" in info.value.message


def test_non_digit_message_matches_oss_wording() -> None:
    with pytest.raises(OSSError) as info:
        parse_process("image/quality,q_image")
    assert info.value.message == "The value: image of parameter: q is invalid.reason:Value must be digit"


def test_error_codes_carry_ec() -> None:
    with pytest.raises(OSSError) as info:
        parse_process("image/resize,m_bad,w_1")
    assert info.value.ec == "0040-00000311"
    with pytest.raises(OSSError) as info:
        parse_process("video/snapshot,h_-3")
    assert info.value.ec == "0053-00000105"


@pytest.mark.parametrize(
    "value", ["image/frobnicate,1", "audio/convert", "video/info", "image/", "image/resize,w_1|sys/copy,o_YQ"]
)
def test_unknown_actions_are_invalid_argument(value: str) -> None:
    with pytest.raises(OSSError) as info:
        parse_process(value)
    assert info.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    "value", ["image/resize", "image/resize,m_fill", "image/blur,r_3", "image/circle", "image/rotate", "image/quality"]
)
def test_missing_required_values(value: str) -> None:
    with pytest.raises(OSSError) as info:
        parse_process(value)
    assert info.value.code == "MissingArgument"


def test_bad_base64_is_bad_request() -> None:
    with pytest.raises(OSSError) as info:
        parse_process("image/watermark,text_@@@")
    assert (info.value.code, info.value.message) == ("BadRequest", "Input is not base64 decoding.")
