"""Parse ``x-oss-process`` values into typed operations (oss-protocol.md §7.1, §7.2, §8).

Pure: no pixels, no HTTP. ``image/resize,w_100/quality,q_80`` becomes a :class:`ProcessSpec` holding
:mod:`ossdrop.core.operations` values; ``style/<name>`` is returned as a reference for the caller to resolve;
a ``|sys/saveas,o_..,b_..`` tail becomes :class:`SaveAs`. Every malformed value raises ``OSSError``
(``InvalidArgument`` naming the parameter, ``MissingArgument`` for a required one).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from ossdrop.core.errors import OSSError
from ossdrop.core.operations import (
    GRAVITIES,
    IMAGE_FORMATS,
    RESIZE_MODES,
    AutoOrient,
    AverageHue,
    Blur,
    Bright,
    Circle,
    Contrast,
    Crop,
    Format,
    ImageOp,
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

_INT_RE = re.compile(r"^-?[0-9]+$")
_COLOR_RE = re.compile(r"^[0-9A-Fa-f]{6}$")
_STYLE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_SIDE = 16384  # §7.2 resize: w, h, l, s are 1..16384
_S = TypeVar("_S", bound=str)


@dataclass(frozen=True)
class SaveAs:
    """``sys/saveas`` target: ``key`` (``o``) and optional ``bucket`` (``b``, default the current one)."""

    key: str
    bucket: str | None = None

    def canonical(self) -> str:
        value = f"sys/saveas,o_{urlsafe_b64encode(self.key)}"
        return value + (f",b_{urlsafe_b64encode(self.bucket)}" if self.bucket is not None else "")


@dataclass(frozen=True)
class ProcessSpec:
    """A parsed ``x-oss-process`` value.

    ``kind`` is ``image`` (``ops`` set), ``video`` (``snapshot`` set) or ``style`` (``style`` names it; the
    caller resolves the style body with :func:`parse_process` again). ``save_as`` is the ``|sys/saveas`` tail.
    """

    kind: Literal["image", "video", "style"]
    ops: tuple[ImageOp, ...] = ()
    snapshot: Snapshot | None = None
    style: str | None = None
    save_as: SaveAs | None = None

    def canonical(self) -> str:
        """Stable processing string for cache keys; the ``save_as`` tail is not part of it."""
        if self.kind == "style":
            return f"style/{self.style}"
        if self.snapshot is not None:
            return "video/" + self.snapshot.canonical()
        return "image/" + "/".join(op.canonical() for op in self.ops)


def invalid(param: str, value: str, reason: str, ec: str = "") -> OSSError:
    """The §7.1 InvalidArgument wording: "The value: v of parameter: p is invalid.reason:..."."""
    return OSSError("InvalidArgument", f"The value: {value} of parameter: {param} is invalid.reason:{reason}", ec=ec)


class _Args:
    """The comma-separated parameters of one action: positional values and ``key_value`` pairs."""

    def __init__(self, action: str, tokens: Sequence[str]) -> None:
        self.action = action
        self.positional: list[str] = []
        self.named: dict[str, str] = {}
        for token in tokens:
            if not token:
                continue
            key, sep, value = token.partition("_")
            if sep:
                self.named[key] = value
            else:
                self.positional.append(token)
        self._used: set[str] = set()

    def raw(self, key: str) -> str | None:
        self._used.add(key)
        return self.named.get(key)

    def integer(self, key: str, lo: int, hi: int, ec: str = "") -> int | None:
        raw = self.raw(key)
        return None if raw is None else _to_int(key, raw, lo, hi, ec)

    def required_int(self, key: str, lo: int, hi: int) -> int:
        value = self.integer(key, lo, hi)
        if value is None:
            raise OSSError("MissingArgument", f"Parameter {key} of {self.action} is required.")
        return value

    def choice(self, key: str, options: Sequence[_S], default: _S, ec: str = "") -> _S:
        raw = self.raw(key)
        if raw is None:
            return default
        for option in options:
            if raw == option:
                return option
        raise invalid(key, raw, f"Value must be one of {','.join(options)}", ec)

    def flag(self, key: str, default: bool) -> bool:
        value = self.integer(key, 0, 1)
        return default if value is None else bool(value)

    def color(self, key: str, default: str) -> str:
        raw = self.raw(key)
        if raw is None:
            return default
        if not _COLOR_RE.match(raw):
            raise invalid(key, raw, "Value must be a hex color RRGGBB")
        return raw.upper()

    def b64(self, key: str) -> str | None:
        raw = self.raw(key)
        return None if raw is None else decode_urlsafe_b64(raw, key)

    def single(self, lo: int, hi: int) -> int:
        """The one bare positional value (``rotate,90``)."""
        if not self.positional:
            raise OSSError("MissingArgument", f"Operation {self.action} needs a value.")
        return _to_int(self.action, self.positional[0], lo, hi)

    def finish(self, allow_positional: int = 0) -> None:
        """Refuse parameters the action does not know (house style: fail loudly)."""
        unknown = [k for k in self.named if k not in self._used]
        if unknown:
            raise invalid(unknown[0], self.named[unknown[0]], f"Unknown parameter of {self.action}")
        if len(self.positional) > allow_positional:
            raise invalid(self.action, self.positional[-1], "Unexpected value")


def _to_int(param: str, raw: str, lo: int, hi: int, ec: str = "") -> int:
    if not _INT_RE.match(raw):
        raise invalid(param, raw, "Value must be digit", ec)
    value = int(raw)
    if not lo <= value <= hi:
        raise invalid(param, raw, f"Value must be in [{lo}, {hi}]", ec)
    return value


def decode_urlsafe_b64(raw: str, param: str = "b64") -> str:
    """Decode URL-safe base64 with or without padding; a bad value is ``BadRequest`` (§7.1)."""
    try:
        data = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        return data.decode("utf-8")
    except (binascii.Error, ValueError):
        raise OSSError("BadRequest", "Input is not base64 decoding.", {"ArgumentName": param}) from None


def _resize(args: _Args, nested: bool = False) -> Resize:
    op = Resize(
        mode=args.choice("m", RESIZE_MODES, "lfit", ec="0040-00000311"),
        w=args.integer("w", 1, _MAX_SIDE),
        h=args.integer("h", 1, _MAX_SIDE),
        longer=args.integer("l", 1, _MAX_SIDE),
        shorter=args.integer("s", 1, _MAX_SIDE, ec="0040-00000315"),
        limit=args.flag("limit", True),
        color=args.color("color", "FFFFFF"),
        p=args.integer("p", 1, 1000),
        base_percent=args.integer("P", 1, 100) if nested else None,
    )
    args.finish()
    if not any(v is not None for v in (op.w, op.h, op.longer, op.shorter, op.p, op.base_percent)):
        raise OSSError("MissingArgument", "Resize needs one of w, h, l, s or p.")
    return op


def _crop(args: _Args) -> Crop:
    op = Crop(
        w=args.integer("w", 0, 30000) or 0,
        h=args.integer("h", 0, 30000) or 0,
        x=args.integer("x", 0, 30000) or 0,
        y=args.integer("y", 0, 30000) or 0,
        gravity=args.choice("g", GRAVITIES, "nw", ec="0040-00000209"),
    )
    args.finish()
    return op


def _quality(args: _Args) -> Quality:
    op = Quality(relative=args.integer("q", 1, 100), absolute=args.integer("Q", 1, 100))
    args.finish()
    if op.relative is None and op.absolute is None:
        raise OSSError("MissingArgument", "Quality needs q or Q.")
    return op


def _format(args: _Args) -> Format:
    if not args.positional:
        raise OSSError("MissingArgument", "Operation format needs a value.")
    raw = args.positional[0].lower()
    for name in IMAGE_FORMATS:
        if raw == name:
            args.finish(1)
            return Format(name)
    raise invalid("format", args.positional[0], f"Value must be one of {','.join(IMAGE_FORMATS)}")


def _index_crop(args: _Args) -> IndexCrop:
    x, y = args.integer("x", 1, 30000), args.integer("y", 1, 30000)
    index = args.integer("i", 0, 30000) or 0
    args.finish()
    if y is not None:  # §7.2: if both x and y are given, y wins
        return IndexCrop("y", y, index)
    if x is not None:
        return IndexCrop("x", x, index)
    raise OSSError("MissingArgument", "Indexcrop needs x or y.")


def _watermark(args: _Args) -> Watermark:
    text, image_value = args.b64("text"), args.b64("image")
    if text is None and image_value is None:
        raise OSSError("MissingArgument", "Watermark needs text or image.")
    if text is not None and not 0 < len(text) <= 64:
        raise invalid("text", args.named["text"], "Text must be 1 to 64 characters")
    op = Watermark(
        text=text, image=_watermark_image(image_value) if image_value is not None else None,
        opacity=_opt(args.integer("t", 0, 100), 100), gravity=args.choice("g", GRAVITIES, "se"),
        x=_opt(args.integer("x", 0, 4096), 10), y=_opt(args.integer("y", 0, 4096), 10),
        voffset=_opt(args.integer("voffset", -1000, 1000), 0), font=args.b64("type") or "wqy-zenhei",
        color=args.color("color", "000000"), size=_opt(args.integer("size", 1, 1000), 40),
        shadow=_opt(args.integer("shadow", 0, 100), 0), rotate=_opt(args.integer("rotate", 0, 360), 0),
        fill=args.flag("fill", False), order=_opt(args.integer("order", 0, 1), 0),
        align=_opt(args.integer("align", 0, 2), 0), interval=_opt(args.integer("interval", 0, 1000), 0),
    )  # fmt: skip
    args.finish()
    return op


def _opt(value: int | None, default: int) -> int:
    return default if value is None else value


def _watermark_image(value: str) -> WatermarkImage:
    """``key[?x-oss-process=image/...]``; the nested chain may use ``resize,P_<1..100>`` (§7.2)."""
    key, _, process = value.partition("?x-oss-process=")
    if not key:
        raise invalid("image", value, "Watermark image key is empty")
    if not process:
        return WatermarkImage(key)
    kind, _, chain = process.partition("/")
    if kind != "image":
        raise invalid("image", value, "Watermark image process must be image/...")
    return WatermarkImage(key, _parse_chain(chain, nested=True))


def _no_params(op: ImageOp) -> Callable[[_Args], ImageOp]:
    def parse(args: _Args) -> ImageOp:
        args.finish()
        return op

    return parse


def _with(parse: Callable[[_Args], ImageOp], positional: int = 1) -> Callable[[_Args], ImageOp]:
    def run(args: _Args) -> ImageOp:
        op = parse(args)
        args.finish(positional)
        return op

    return run


_ACTIONS: dict[str, Callable[[_Args], ImageOp]] = {
    "resize": _resize,
    "crop": _crop,
    "rotate": _with(lambda a: Rotate(a.single(0, 360))),
    "auto-orient": _with(lambda a: AutoOrient(bool(a.single(0, 1)))),
    "format": _format,
    "quality": _quality,
    "interlace": _with(lambda a: Interlace(bool(a.single(0, 1)))),
    "info": _no_params(Info()),
    "average-hue": _no_params(AverageHue()),
    "blur": _with(lambda a: Blur(a.required_int("r", 1, 50), a.required_int("s", 1, 50)), 0),
    "bright": _with(lambda a: Bright(a.single(-100, 100))),
    "contrast": _with(lambda a: Contrast(a.single(-100, 100))),
    "sharpen": _with(lambda a: Sharpen(a.single(50, 399))),
    "circle": _with(lambda a: Circle(a.required_int("r", 1, 4096)), 0),
    "rounded-corners": _with(lambda a: RoundedCorners(a.required_int("r", 1, 4096)), 0),
    "indexcrop": _index_crop,
    "watermark": _watermark,
}


def _parse_chain(chain: str, nested: bool = False) -> tuple[ImageOp, ...]:
    ops: list[ImageOp] = []
    for segment in chain.split("/"):
        if not segment:
            continue  # tolerate "image/resize,w_1/" (UNSURE whether OSS does)
        name, *tokens = segment.split(",")
        args = _Args(name, tokens)
        if nested and name == "resize":
            ops.append(_resize(args, nested=True))
            continue
        parse = _ACTIONS.get(name)
        if parse is None:
            raise OSSError("InvalidArgument", f"The image operation: {name} is not supported.")
        ops.append(parse(args))
    if not ops:
        raise OSSError("InvalidArgument", "The image process needs at least one operation.")
    return tuple(ops)


def _parse_snapshot(chain: str) -> Snapshot:
    name, *tokens = chain.split(",")
    if name != "snapshot":
        raise OSSError("InvalidArgument", f"The video operation: {name} is not supported.")
    args = _Args(name, tokens)
    # §8: EC 0053-00000101 for t, 104 for w, 105 for h
    op = Snapshot(
        t_ms=_opt(args.integer("t", 0, 2**53, ec="0053-00000101"), 0),
        w=_opt(args.integer("w", 0, _MAX_SIDE, ec="0053-00000104"), 0),
        h=_opt(args.integer("h", 0, _MAX_SIDE, ec="0053-00000105"), 0),
        fast=args.choice("m", ("fast", "exact"), "exact") == "fast",
        fmt=args.choice("f", ("jpg", "png"), "jpg"),
        auto_rotate=args.choice("ar", ("auto", "none"), "none") == "auto",
    )
    args.finish()
    return op


def _parse_save_as(tail: str) -> SaveAs:
    name, *tokens = tail.split(",")
    if name != "sys/saveas":
        raise OSSError("InvalidArgument", f"The operation: {name} is not supported.")
    args = _Args("saveas", tokens)
    key, bucket = args.b64("o"), args.b64("b")
    args.finish()
    if not key:
        raise OSSError("MissingArgument", "sys/saveas needs o (the target object key).")
    return SaveAs(key=key, bucket=bucket or None)


def parse_process(value: str) -> ProcessSpec:
    """Parse a whole ``x-oss-process`` value (§7.1 grammar, §8 snapshot, §7.2 sys/saveas tail).

    Raises ``OSSError`` ``InvalidArgument`` for an unknown kind/action or a bad value, ``MissingArgument`` for a
    missing required one and ``BadRequest`` for undecodable base64.
    """
    head, pipe, tail = value.strip().partition("|")
    save_as = _parse_save_as(tail) if pipe else None
    kind, _, chain = head.partition("/")
    if kind == "image":
        return ProcessSpec("image", ops=_parse_chain(chain), save_as=save_as)
    if kind == "video":
        return ProcessSpec("video", snapshot=_parse_snapshot(chain), save_as=save_as)
    if kind == "style":
        if not _STYLE_RE.match(chain):
            raise invalid("style", chain, "Invalid style name")
        return ProcessSpec("style", style=chain, save_as=save_as)
    raise OSSError("InvalidArgument", f"The process kind: {kind} is not supported.")
