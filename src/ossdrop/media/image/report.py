"""Actions whose body is JSON instead of an image: ``info`` and ``average-hue`` (§7.2)."""

from __future__ import annotations

import json

from PIL import ExifTags, Image, ImageStat, TiffImagePlugin

from ossdrop.media.image.formats import oss_format
from ossdrop.media.result import Processed

_JSON = "application/json"
_SKIPPED_TAGS = {"MakerNote", "UserComment", "PrintImageMatching", "ExifOffset", "GPSInfo", "InteropOffset"}
_SUB_IFDS = (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)


def _text(value: object) -> str | None:
    """EXIF value as OSS prints it: rationals as "96/1", sequences comma-joined; binary blobs skipped."""
    if isinstance(value, TiffImagePlugin.IFDRational):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00").decode("ascii", "replace")
        return text if text.isprintable() else None
    if isinstance(value, tuple):
        parts = [_text(item) for item in value]
        return None if None in parts else ", ".join(p for p in parts if p is not None)
    if isinstance(value, str):
        return value.rstrip("\x00")
    if isinstance(value, int | float):
        return str(value)
    return None


def exif_fields(image: Image.Image) -> dict[str, str]:
    """Named EXIF tags of the base, Exif and GPS IFDs as strings (read from the header, no decoding)."""
    exif = image.getexif()
    found: dict[str, str] = {}
    ifds: list[tuple[dict[int, str], dict[int, object]]] = [(ExifTags.TAGS, dict(exif))]
    for ifd in _SUB_IFDS:
        names = ExifTags.GPSTAGS if ifd == ExifTags.IFD.GPSInfo else ExifTags.TAGS
        ifds.append((names, dict(exif.get_ifd(ifd))))
    for names, tags in ifds:
        for tag, value in tags.items():
            name = names.get(tag)
            text = _text(value) if name and name not in _SKIPPED_TAGS else None
            if name and text is not None:
                found[name] = text
    return found


def info_json(image: Image.Image, file_size: int) -> Processed:
    """``info``: FileSize, Format, ImageHeight, ImageWidth and EXIF, each ``{"value": "<string>"}``."""
    fields = exif_fields(image)
    fields |= {
        "FileSize": str(file_size),
        "Format": oss_format(image),
        "ImageHeight": str(image.height),
        "ImageWidth": str(image.width),
    }
    body = {name: {"value": fields[name]} for name in sorted(fields)}
    return Processed(json.dumps(body, separators=(",", ":")).encode("utf-8"), _JSON)


def average_hue_json(image: Image.Image) -> Processed:
    """``average-hue``: mean colour of the (already shrunk) image as ``{"RGB": "0xRRGGBB"}``."""
    rgb = image.convert("RGB")
    if max(rgb.size) > 256:
        rgb = rgb.reduce(max(1, max(rgb.size) // 256))
    red, green, blue = (round(v) for v in ImageStat.Stat(rgb).mean)
    body = {"RGB": f"0x{red:02X}{green:02X}{blue:02X}"}
    return Processed(json.dumps(body).encode("utf-8"), _JSON)
