"""Bucket and object naming rules (oss-protocol.md §6)."""

from __future__ import annotations

import re

from ossdrop.core.errors import OSSError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1023


def is_valid_bucket_name(name: str) -> bool:
    """3-63 characters of ``a-z0-9-``, starting and ending with a letter or digit."""
    return bool(_BUCKET_RE.fullmatch(name))


def check_bucket_name(name: str) -> None:
    """Raise ``InvalidBucketName`` unless ``name`` follows the rules."""
    if not is_valid_bucket_name(name):
        raise OSSError("InvalidBucketName", extra={"BucketName": name})


def check_object_name(key: str) -> None:
    """Raise ``InvalidObjectName`` for an empty key, one over 1023 UTF-8 bytes, or one starting with / or \\."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise OSSError("InvalidObjectName", "The object name is not valid UTF-8.") from None
    if size == 0 or size > MAX_KEY_BYTES or key[0] in "/\\" or "\x00" in key:
        raise OSSError("InvalidObjectName", extra={"Key": key[:1024]})
