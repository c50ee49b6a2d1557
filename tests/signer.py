"""An independent OSS V1 header signer for raw-HTTP tests (oss-protocol.md §3.1), kept minimal on purpose."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import time
from urllib.parse import quote


def v1_headers(
    method: str,
    resource: str,
    key_id: str,
    secret: str,
    headers: dict[str, str] | None = None,
    at: float | None = None,
) -> dict[str, str]:
    """Headers with Date and ``Authorization: OSS <id>:<sig>`` for ``resource`` (e.g. ``/bucket/key``, decoded)."""
    out = dict(headers or {})
    out["Date"] = email.utils.formatdate(time.time() if at is None else at, usegmt=True)
    oss = sorted((k.lower(), v.strip()) for k, v in out.items() if k.lower().startswith("x-oss-"))
    canonical = "".join(f"{k}:{v}\n" for k, v in oss)
    lower = {k.lower(): v for k, v in out.items()}
    to_sign = "\n".join([method, lower.get("content-md5", ""), lower.get("content-type", ""), out["Date"]])
    to_sign += "\n" + canonical + resource
    sig = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    out["Authorization"] = f"OSS {key_id}:{sig}"
    return out


def object_url(endpoint: str, bucket: str, key: str) -> str:
    return f"{endpoint}/{bucket}/{quote(key, safe='')}"
