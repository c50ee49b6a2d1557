"""OSS request signatures: V1 (HMAC-SHA1) and V4 (OSS4-HMAC-SHA256), oss-protocol.md §3.

Pure functions: strings in, signatures out. Verification lives in :mod:`ossdrop.protocol.auth`.
"""

from __future__ import annotations

import hashlib
import hmac


def hmac_sha1_b64(secret: str, message: str) -> str:
    """base64(HMAC-SHA1(secret, message)): the V1 signature primitive (§3.1, §1.5)."""
    import base64

    return base64.b64encode(hmac.new(secret.encode(), message.encode("utf-8"), hashlib.sha1).digest()).decode()


def v4_signing_key(secret: str, date: str, region: str, product: str = "oss") -> bytes:
    """The V4 key chain of §1.6/§3.2: ``aliyun_v4<secret>`` -> date -> region -> product -> ``aliyun_v4_request``."""
    key = hmac.new(("aliyun_v4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_sha256_hex(key: bytes, message: str) -> str:
    """Lower-case hex HMAC-SHA256: the V4 signature primitive."""
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    """Compare signatures without leaking timing."""
    return hmac.compare_digest(a.encode(), b.encode())
