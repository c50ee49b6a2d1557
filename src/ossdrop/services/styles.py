"""Bucket image styles (oss-protocol.md §7.1 "Styles"): named ``image/...`` strings used as ``style/<name>``.

All styles of a bucket live in one JSON configuration document (``kind = "styles"``), so a listing is one read.
Read-modify-write is safe without a lock: handlers run on one event loop and nothing here awaits between the
read and the write.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ossdrop.core.errors import OSSError
from ossdrop.protocol.process_spec import ProcessSpec, parse_process
from ossdrop.storage.base import Storage

CONFIG_KIND = "styles"
MAX_STYLES = 50  # §7.1: up to 50 styles per bucket
MAX_CONTENT = 4096  # UNSURE: OSS documents no length; a bound keeps the config document small


@dataclass(frozen=True)
class Style:
    """One stored style: its name, its processing string and when it was created / last changed."""

    name: str
    content: str
    created: float
    modified: float


def _load(storage: Storage, bucket: str) -> dict[str, Style]:
    raw = storage.get_config(bucket, CONFIG_KIND)
    if not raw:
        return {}
    return {name: Style(**fields) for name, fields in json.loads(raw).items()}


def _save(storage: Storage, bucket: str, styles: dict[str, Style]) -> None:
    value = json.dumps({name: asdict(style) for name, style in styles.items()}) if styles else None
    storage.put_config(bucket, CONFIG_KIND, value)


def check_name(name: str | None) -> str:
    """A style name as ``style/<name>`` accepts it (letters, digits, ``-_.``, 1 to 64); else ``InvalidArgument``."""
    if not name:
        raise OSSError("InvalidArgument", "The style name is missing.", {"ArgumentName": "styleName"})
    parse_process(f"style/{name}")
    return name


def check_content(content: str) -> ProcessSpec:
    """A style body must be a plain ``image/...`` (or ``video/...``) chain: no style reference, no saveas."""
    if not content or len(content) > MAX_CONTENT:
        raise OSSError("InvalidArgument", "The style content is empty or too long.", {"ArgumentName": "Content"})
    spec = parse_process(content)
    if spec.kind == "style" or spec.save_as is not None:
        raise OSSError(
            "InvalidArgument", "A style must be an image/... or video/... chain.", {"ArgumentName": "Content"}
        )
    return spec


def put_style(storage: Storage, bucket: str, name: str, content: str, *, now: float) -> Style:
    """Create or replace a style (PutStyle); more than :data:`MAX_STYLES` is refused."""
    check_name(name)
    check_content(content)
    styles = _load(storage, bucket)
    old = styles.get(name)
    if old is None and len(styles) >= MAX_STYLES:
        # UNSURE of the exact OSS code for the 51st style; InvalidArgument is a 400 the SDKs surface as-is
        raise OSSError("InvalidArgument", f"A bucket holds at most {MAX_STYLES} styles.", {"ArgumentName": "styleName"})
    styles[name] = Style(name, content, old.created if old else now, now)
    _save(storage, bucket, styles)
    return styles[name]


def get_style(storage: Storage, bucket: str, name: str) -> Style:
    """The named style, or ``NoSuchStyle`` (404)."""
    found = _load(storage, bucket).get(name)
    if found is None:
        raise OSSError("NoSuchStyle", extra={"BucketName": bucket, "StyleName": name})
    return found


def list_styles(storage: Storage, bucket: str) -> list[Style]:
    """Every style of the bucket, by name."""
    return sorted(_load(storage, bucket).values(), key=lambda s: s.name)


def delete_style(storage: Storage, bucket: str, name: str) -> None:
    """Remove a style; deleting one that does not exist succeeds (UNSURE: OSS may answer NoSuchStyle)."""
    styles = _load(storage, bucket)
    if styles.pop(name, None) is not None:
        _save(storage, bucket, styles)


def resolve(storage: Storage, bucket: str, spec: ProcessSpec) -> ProcessSpec:
    """Replace a ``style/<name>`` reference by the parsed style body, keeping the request's saveas tail."""
    if spec.kind != "style" or spec.style is None:
        return spec
    body = check_content(get_style(storage, bucket, spec.style).content)
    return ProcessSpec(body.kind, body.ops, body.snapshot, None, spec.save_as)
