"""Column values of pending uploads and storage records, shared by the ORM use-cases of
:mod:`ossdrop.services.files` and the set-at-a-time ones of :mod:`ossdrop.services.group_commit`, so both write
exactly the same rows. Pure functions: nothing here touches a database.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from ossdrop.db.models import UploadState
from ossdrop.services.keys import (
    DedupScope,
    InvalidKeyError,
    ext_of,
    normalize_md5,
    parse_key,
    unhashed_key,
    upload_key,
)

MAX_NAME_LENGTH = 256
NO_MD5 = ""  # ``expected_md5`` of a pending upload whose client gave no MD5 (the column is not nullable)


@dataclass(frozen=True)
class UploadFacts:
    """What the store says about an uploaded object. ``md5`` is the *real* MD5 (hex) of the stored bytes; when
    it is ``None`` a plain ETag (the MD5 of a simple upload) stands in for it; a multipart ETag does not.
    """

    key: str
    size: int
    md5: str | None = None
    etag: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None


class _RandomPool:
    """``os.urandom`` bytes fetched 4 KiB at a time (one system call per 256 ids on the hot path); thread-safe,
    and emptied in a forked child so that no two processes hand out the same bytes."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buf, self._pos = b"", 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._pos + n > len(self._buf):
                self._buf, self._pos = os.urandom(max(n, self.SIZE)), 0
            chunk = self._buf[self._pos : self._pos + n]
            self._pos += n
            return chunk


_RANDOM = _RandomPool()


def new_upload_id() -> str:
    """A fresh random upload id: 32 lower-case hex digits of the OS's CSPRNG (also a valid key nonce)."""
    return _RANDOM.take(16).hex()


class PendingLike(Protocol):
    """What recording needs of a pending upload: an ORM :class:`PendingUpload` or a row of its table."""

    @property
    def upload_id(self) -> str: ...

    @property
    def object_key(self) -> str: ...

    @property
    def creator_id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def ext(self) -> str: ...

    @property
    def expected_size(self) -> int | None: ...


def pending_values(
    *,
    creator_id: int,
    name: str,
    md5: str | None,
    size: int | None,
    scope: DedupScope,
    now: int,
    ttl: int,
    upload_dir: str,
) -> dict[str, Any]:
    """The column values of a new pending upload (fresh ``upload_id``, its key); nothing is written.

    Without ``md5`` the key is :func:`~ossdrop.services.keys.unhashed_key` and ``expected_md5`` is :data:`NO_MD5`.
    """
    ext = ext_of(name)
    upload_id = new_upload_id()
    if md5 is None:
        digest = NO_MD5
        key = unhashed_key(ext, creator_id, upload_id, upload_dir=upload_dir)
    else:
        digest = normalize_md5(md5)
        nonce = upload_id if scope is DedupScope.OFF else None
        key = upload_key(digest, ext, creator_id, scope, upload_dir=upload_dir, nonce=nonce)
    return {
        "upload_id": upload_id,
        "object_key": key,
        "creator_id": creator_id,
        "name": name[:MAX_NAME_LENGTH],
        "ext": ext,
        "expected_size": size,
        "expected_md5": digest,
        "state": UploadState.PENDING.value,
        "created_at": now,
        "expires_at": now + ttl,
    }


def upload_record_values(pending: PendingLike, facts: UploadFacts, md5: str, now: int) -> dict[str, Any]:
    """The column values of the record a verified upload of ``pending`` gets (``md5``: the real MD5)."""
    return {
        "name": pending.name,
        "path": facts.key,
        "ext": pending.ext,
        "md5": md5,
        "creator_id": pending.creator_id,
        "created_at": now,
        "size": facts.size,
        "mime_type": facts.mime_type,
        "width": facts.width,
        "height": facts.height,
        "duration": facts.duration,
        "etag": facts.etag.strip('"') if facts.etag else None,
        "upload_id": pending.upload_id,
    }


def upload_matches(pending: PendingLike, facts: UploadFacts, md5: str, upload_dir: str) -> bool:
    """Whether the object of ``facts`` (real MD5 ``md5``) is what ``pending`` was issued for: its key, the MD5 its
    key claims (if any) and the size announced at policy time. False means :func:`record_upload` would refuse it."""
    if facts.key != pending.object_key:
        return False
    try:
        claimed = parse_key(facts.key, upload_dir=upload_dir).md5
    except InvalidKeyError:
        return False
    md5_ok = claimed is None or md5 == claimed
    return md5_ok and (pending.expected_size is None or pending.expected_size == facts.size)
