"""OSS request signatures: V1 (HMAC-SHA1) and V4 (OSS4-HMAC-SHA256), oss-protocol.md §3.

Pure functions: strings in, signatures out. Verification lives in :mod:`ossdrop.protocol.auth`.

Conventions shared by every builder here:

* ``bucket`` and ``key`` are the *decoded* names (``None`` for service-level / bucket-level requests).
* ``query`` is the sequence of decoded ``(name, value)`` pairs in wire order (§4: plus-decoded, blanks kept).
* ``headers`` maps lower-case header names to their values as received (UTF-8 text, §12).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# §3.1: the sub-resource keys of the official doc list; oss2's set below is built from it.
_DOC_SUBRESOURCES = _names(
    "acl uploads location cors logging website referer lifecycle delete append tagging objectMeta "
    "uploadId partNumber security-token position img style styleName replication replicationProgress "
    "replicationLocation cname bucketInfo comp qos live status vod startTime endTime symlink "
    "x-oss-process response-content-type response-content-language response-expires "
    "response-cache-control response-content-disposition response-content-encoding"
)

# §3.1: oss2 (``ProviderAuth``) signs a superset of the doc list, except that it lacks ``img``.
OSS2_SUBRESOURCES: frozenset[str] = (_DOC_SUBRESOURCES - {"img"}) | _names(
    "group link objectInfo restore stat callback callback-var encryption versions versioning "
    "versionId policy requestPayment x-oss-traffic-limit qosInfo asyncFetch x-oss-request-payer "
    "sequential inventory inventoryId continuation-token worm wormId wormExtend transferAcceleration "
    "metaQuery x-oss-ac-source-ip x-oss-ac-subnet-mask x-oss-ac-vpc-id x-oss-ac-forward-allow "
    "resourceGroup x-oss-async-process regionList x-oss-write-get-object-response "
    "bucketArchiveDirectRead httpsConfig redundancyTransition x-oss-target-redundancy-type "
    "x-oss-redundancy-transition-taskid accessPoint accessPointPolicy publicAccessBlock "
    "x-oss-access-point-name requesterQosInfo qosRequester resourcePoolInfo resourcePool "
    "resourcePoolBuckets"
)

# §3.1: the V2 SDK's v1 signer signs a smaller fixed set (no ``x-oss-process``) ...
_V2SDK_BASE_SUBRESOURCES = _names(
    "acl bucketInfo location stat delete append tagging objectMeta uploads uploadId partNumber "
    "security-token position response-content-type response-content-language response-expires "
    "response-cache-control response-content-disposition response-content-encoding restore callback "
    "callback-var versions versioning versionId sequential continuation-token regionList cloudboxes "
    "symlink resourceGroup"
)

# ... plus the per-operation extras its operations declare (``op_metadata['sub-resource']``). A key only
# appears in the query of the operation that declares it, so the union is safe to apply to every request.
V2SDK_SUBRESOURCES: frozenset[str] = _V2SDK_BASE_SUBRESOURCES | _names(
    "MetaQuery accessPoint accessPointPolicy action bucketArchiveDirectRead cleanRestoredObject cname "
    "comp cors dataPipeline encryption httpsConfig inventory inventoryId legalHold lifecycle logging "
    "metaQuery metadataConfiguration metadataInventoryTable metadataJournalTable objectWorm "
    "overwriteConfig policy policyStatus publicAccessBlock quota redundancyTransition referer "
    "replication replicationLocation replicationProgress requestPayment retention rtc seal style "
    "styleName transferAcceleration userDefinedLogFieldsConfig website worm wormExtend wormId "
    "x-oss-access-point-name x-oss-redundancy-transition-taskid x-oss-target-redundancy-type"
)

# §3.2: headers V4 always signs besides x-oss-*; AdditionalHeaders may add more.
_V4_DEFAULT_SIGNED = frozenset({"content-type", "content-md5"})
_RFC3986_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def hmac_sha1_b64(secret: str, message: str) -> str:
    """base64(HMAC-SHA1(secret, message)): the V1 signature primitive (§3.1, §1.5)."""
    digest = hmac.new(secret.encode(), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@functools.lru_cache(maxsize=256)
def v4_signing_key(secret: str, date: str, region: str, product: str = "oss") -> bytes:
    """The V4 key chain of §1.6/§3.2: ``aliyun_v4<secret>`` -> date -> region -> product ->
    ``aliyun_v4_request``. Remembered: the key changes once a day, and four HMACs cost more than the signature."""
    key = hmac.new(("aliyun_v4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, product, V4_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_sha256_hex(key: bytes, message: str) -> str:
    """Lower-case hex HMAC-SHA256: the V4 signature primitive."""
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    """Compare signatures without leaking timing."""
    return hmac.compare_digest(a.encode(), b.encode())


# --- V1 (§3.1) -------------------------------------------------------------------------------------------


def v1_canonical_headers(headers: Mapping[str, str]) -> str:
    """CanonicalizedOSSHeaders: every ``x-oss-*`` header as ``name:value\\n`` (value trimmed), sorted by
    name."""
    items = sorted((name.lower(), value.strip()) for name, value in headers.items())
    return "".join(f"{name}:{value}\n" for name, value in items if name.startswith("x-oss-"))


def v1_canonical_resource(
    bucket: str | None,
    key: str | None,
    query: Sequence[tuple[str, str]],
    subresources: frozenset[str] = OSS2_SUBRESOURCES,
) -> str:
    """CanonicalizedResource: ``/``, ``/<bucket>/`` or ``/<bucket>/<key>`` with the raw decoded key, then
    the sorted sub-resource pairs (``k`` for an empty value, else ``k=v``, decoded) after ``?`` if any."""
    resource = "/" if not bucket else f"/{bucket}/{key or ''}"
    pairs = sorted((name, value) for name, value in query if name in subresources)
    if not pairs:
        return resource
    return resource + "?" + "&".join(name if not value else f"{name}={value}" for name, value in pairs)


def v1_string_to_sign(
    method: str,
    bucket: str | None,
    key: str | None,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    date: str,
    subresources: frozenset[str] = OSS2_SUBRESOURCES,
) -> str:
    """The V1 StringToSign of §3.1. ``date`` is the Date line: the ``x-oss-date``/``Date`` header for
    header-signed requests, the ``Expires`` value for presigned URLs (§3.3). Content-MD5 and Content-Type come
    from ``headers`` (empty when absent)."""
    return "\n".join(
        (
            method.upper(),
            headers.get("content-md5", "").strip(),
            headers.get("content-type", "").strip(),
            date,
            v1_canonical_headers(headers) + v1_canonical_resource(bucket, key, query, subresources),
        )
    )


def v1_signature(secret: str, string_to_sign: str) -> str:
    """The V1 signature of a StringToSign (base64 HMAC-SHA1 over its UTF-8 bytes, §3.1, §12)."""
    return hmac_sha1_b64(secret, string_to_sign)


# --- V4 (§3.2) -------------------------------------------------------------------------------------------


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """RFC 3986 encoding of the UTF-8 bytes of ``text``: only ``A-Za-z0-9-_.~`` (and ``/`` when
    ``keep_slash``) stay literal, everything else becomes upper-case ``%XX`` (§3.2)."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if byte in _RFC3986_UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def v4_canonical_uri(bucket: str | None, key: str | None) -> str:
    """CanonicalURI: ``/``, ``/<bucket>/`` or ``/<bucket>/<key>`` from the decoded names, RFC 3986 encoded
    with ``/`` kept (§3.2; oss2's ``%2F`` on the wire must therefore be decoded before calling this)."""
    if not bucket:
        return "/"
    return uri_encode(f"/{bucket}/{key or ''}", keep_slash=True)


def v4_canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """CanonicalQuery: every decoded pair re-encoded (``/`` encoded too), sorted by encoded name then value,
    ``&``-joined; a pair with an empty value is written as the bare name (§3.2)."""
    encoded = sorted((uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in query)
    return "&".join(name if not value else f"{name}={value}" for name, value in encoded)


def v4_canonical_headers(headers: Mapping[str, str], additional: Iterable[str] = ()) -> str:
    """CanonicalHeaders: ``x-oss-*``, ``content-type``, ``content-md5`` and the ``additional`` names present
    in ``headers``, each as ``name:value\\n`` (value trimmed), sorted by name (§3.2)."""
    extra = {name.lower() for name in additional}
    items = sorted((name.lower(), value.strip()) for name, value in headers.items())
    return "".join(
        f"{name}:{value}\n"
        for name, value in items
        if name.startswith("x-oss-") or name in _V4_DEFAULT_SIGNED or name in extra
    )


def v4_additional_headers_line(additional: Iterable[str]) -> str:
    """The AdditionalHeaders line of the canonical request: distinct lower-case names sorted, ``;``-joined.

    Both SDKs send the names in different orders (oss2 sorts by first character only, §3.2) but both sign
    the fully sorted list, so the order in the Authorization header or URL does not matter."""
    return ";".join(sorted({name.strip().lower() for name in additional if name.strip()}))


def v4_canonical_request(
    method: str,
    bucket: str | None,
    key: str | None,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    additional: Iterable[str] = (),
) -> str:
    """The V4 canonical request of §3.2. ``query`` must already exclude ``x-oss-signature`` for presigned URLs
    (§3.3). The payload hash is the ``x-oss-content-sha256`` header, defaulting to ``UNSIGNED-PAYLOAD``."""
    names = v4_additional_headers_line(additional)
    return "\n".join(
        (
            method.upper(),
            v4_canonical_uri(bucket, key),
            v4_canonical_query(query),
            v4_canonical_headers(headers, names.split(";") if names else ()),
            names,
            headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD).strip(),
        )
    )


def v4_scope(date: str, region: str, product: str = "oss") -> str:
    """The credential scope ``<yyyymmdd>/<region>/<product>/aliyun_v4_request``."""
    return f"{date}/{region}/{product}/{V4_TERMINATOR}"


def v4_string_to_sign(timestamp: str, scope: str, canonical_request: str) -> str:
    """The V4 StringToSign: algorithm, ``x-oss-date`` timestamp, scope, hex SHA-256 of the canonical
    request."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return "\n".join((V4_ALGORITHM, timestamp, scope, digest))


def v4_signature(secret: str, date: str, region: str, product: str, string_to_sign: str) -> str:
    """The V4 signature: lower-case hex HMAC-SHA256 with the §1.6 key chain."""
    return hmac_sha256_hex(v4_signing_key(secret, date, region, product), string_to_sign)
