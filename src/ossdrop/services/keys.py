"""Object keys for uploads: content-addressed by MD5, so equal content maps to one object.

Key scheme (``dir`` is the upload directory, ``user-dirs`` by default, no trailing slash)::

    creator scope:  <dir>/c<creator_id>/<md5[:2]>/<md5>.<ext>
    global scope:   <dir>/g/<md5[:2]>/<md5>.<ext>
    off:            <dir>/c<creator_id>/<md5[:2]>/<md5>-<nonce>.<ext>
    no MD5 given:   <dir>/c<creator_id>/u/<upload_id>.<ext>      (any scope)

* ``md5`` is the lower-case hex MD5 the client *claims*; the key only records the claim. The app server checks the
  real MD5 of the stored object against :func:`parse_key`'s ``md5`` before recording it.
* ``<md5[:2]>`` shards the keys into 256 prefixes so that no listing "directory" grows without bound.
* In ``creator`` scope the creator id is part of the key, so two creators with identical content get two objects
  (no creator can learn that another one holds some content). ``global`` shares one object between everybody
  (the app server asks for a proof of possession first). ``off`` makes every upload its own object via a nonce.
* ``.<ext>`` is the lower-cased extension of the uploaded file name (omitted when there is none), so objects are
  served with a meaningful name. Dedup *lookups* go by MD5, not by key, so later uploads of the same content reuse
  the first object whatever their extension.
* A client that cannot hash first asks without an MD5: its key (:func:`unhashed_key`) claims no content, only the
  upload id. The real MD5 of the stored object is recorded, so later uploads of that content dedup against it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_UPLOAD_DIR = "user-dirs"
MAX_EXT_LENGTH = 16

_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,16}$")
_NONCE_RE = re.compile(r"^[a-z0-9]{8,64}$")
_DIR_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# The part of a key below the upload directory; the groups are scope marker, shard, md5, nonce, ext.
_TAIL_RE = re.compile(
    r"^(?P<owner>c(?P<creator>[1-9][0-9]{0,18}|0)|g)/(?P<shard>[0-9a-f]{2})/"
    r"(?P<md5>[0-9a-f]{32})(?:-(?P<nonce>[a-z0-9]{8,64}))?(?:\.(?P<ext>[a-z0-9]{1,16}))?$"
)
# A key without a claimed MD5: creator, upload id, ext.
_UNHASHED_RE = re.compile(
    r"^c(?P<creator>[1-9][0-9]{0,18}|0)/u/(?P<upload_id>[a-z0-9]{8,64})(?:\.(?P<ext>[a-z0-9]{1,16}))?$"
)


class DedupScope(StrEnum):
    """Who shares content: ``creator`` (default) within one creator, ``global`` everybody, ``off`` nobody."""

    CREATOR = "creator"
    GLOBAL = "global"
    OFF = "off"


class InvalidKeyError(ValueError):
    """A key, MD5, extension, nonce or upload directory that the key scheme does not accept."""


@dataclass(frozen=True)
class ParsedKey:
    """What a key claims: ``creator_id`` is ``None`` for a global key; ``nonce`` is set only for scope ``off``.

    ``md5`` is ``None`` for a key of :func:`unhashed_key` (it claims no content); its scope is then ``off`` (the
    key is never shared by construction) and its ``nonce`` the upload id.
    """

    md5: str | None
    ext: str
    scope: DedupScope
    creator_id: int | None
    nonce: str | None


def normalize_md5(md5: str) -> str:
    """Lower-case hex MD5; raises :class:`InvalidKeyError` unless ``md5`` is 32 hex digits (any case)."""
    value = md5.strip().lower()
    if not _MD5_RE.fullmatch(value):
        raise InvalidKeyError(f"not an MD5 hex digest: {md5!r}")
    return value


def ext_of(filename: str) -> str:
    """The extension used in keys and the ``ext`` column: lower-case ``[a-z0-9]{1,16}`` after the last dot.

    Anything else (no dot, a trailing dot, unusual characters, over 16 characters) gives ``""``: an odd extension
    must never be able to smuggle characters into an object key.
    """
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    if "." not in base.strip("."):
        return ""
    ext = base.rsplit(".", 1)[1].lower()
    return ext if _EXT_RE.fullmatch(ext) else ""


def upload_key(
    md5: str,
    ext: str,
    creator_id: int,
    scope: DedupScope,
    *,
    upload_dir: str = DEFAULT_UPLOAD_DIR,
    nonce: str | None = None,
) -> str:
    """The object key an upload of content ``md5`` by ``creator_id`` goes to (see the module docstring).

    ``nonce`` is required for scope ``off`` (8-64 of ``[a-z0-9]``, e.g. the upload id) and refused otherwise.
    Raises :class:`InvalidKeyError` for a bad MD5, extension, nonce, creator id or directory.
    """
    digest = normalize_md5(md5)
    if ext and not _EXT_RE.fullmatch(ext):
        raise InvalidKeyError(f"bad extension: {ext!r}")
    if creator_id < 0:
        raise InvalidKeyError(f"bad creator id: {creator_id}")
    base = _check_dir(upload_dir)
    owner = "g" if scope is DedupScope.GLOBAL else f"c{creator_id}"
    if scope is DedupScope.OFF:
        if nonce is None or not _NONCE_RE.fullmatch(nonce):
            raise InvalidKeyError(f"scope off needs a nonce of 8-64 [a-z0-9], got {nonce!r}")
        stem = f"{digest}-{nonce}"
    elif nonce is not None:
        raise InvalidKeyError("a nonce is only used with scope off")
    else:
        stem = digest
    suffix = f".{ext}" if ext else ""
    return f"{base}/{owner}/{digest[:2]}/{stem}{suffix}"


def unhashed_key(ext: str, creator_id: int, upload_id: str, *, upload_dir: str = DEFAULT_UPLOAD_DIR) -> str:
    """The key of an upload whose MD5 the client did not give: ``<dir>/c<creator_id>/u/<upload_id>.<ext>``.

    Not content-addressed, so never shared at issue time. ``upload_id`` must be 8-64 of ``[a-z0-9]``.
    Raises :class:`InvalidKeyError` for a bad extension, upload id, creator id or directory.
    """
    if ext and not _EXT_RE.fullmatch(ext):
        raise InvalidKeyError(f"bad extension: {ext!r}")
    if creator_id < 0:
        raise InvalidKeyError(f"bad creator id: {creator_id}")
    if not _NONCE_RE.fullmatch(upload_id):
        raise InvalidKeyError(f"bad upload id: {upload_id!r}")
    suffix = f".{ext}" if ext else ""
    return f"{_check_dir(upload_dir)}/c{creator_id}/u/{upload_id}{suffix}"


def parse_key(key: str, *, upload_dir: str = DEFAULT_UPLOAD_DIR) -> ParsedKey:
    """Read back what a key made by :func:`upload_key` or :func:`unhashed_key` claims; :class:`InvalidKeyError`
    for any other key.

    The shard must match the MD5, so a key is accepted only in its one canonical spelling.
    """
    prefix = _check_dir(upload_dir) + "/"
    if not key.startswith(prefix):
        raise InvalidKeyError(f"key outside the upload directory {prefix!r}: {key!r}")
    unhashed = _UNHASHED_RE.fullmatch(key[len(prefix) :])
    if unhashed is not None:
        creator_id = int(unhashed["creator"])
        return ParsedKey(None, unhashed["ext"] or "", DedupScope.OFF, creator_id, unhashed["upload_id"])
    match = _TAIL_RE.fullmatch(key[len(prefix) :])
    if match is None or match["shard"] != match["md5"][:2]:
        raise InvalidKeyError(f"not an upload key: {key!r}")
    creator = match["creator"]
    nonce = match["nonce"]
    if creator is None:
        if nonce is not None:
            raise InvalidKeyError(f"a global key has no nonce: {key!r}")
        scope = DedupScope.GLOBAL
    else:
        scope = DedupScope.OFF if nonce is not None else DedupScope.CREATOR
    return ParsedKey(
        md5=match["md5"],
        ext=match["ext"] or "",
        scope=scope,
        creator_id=None if creator is None else int(creator),
        nonce=nonce,
    )


@functools.lru_cache(maxsize=64)
def _check_dir(upload_dir: str) -> str:
    base = upload_dir.strip("/")
    if not _DIR_RE.fullmatch(base) or any(part in (".", "..") for part in base.split("/")):
        raise InvalidKeyError(f"bad upload directory: {upload_dir!r}")
    return base
