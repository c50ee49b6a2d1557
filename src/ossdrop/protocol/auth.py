"""Verify who signed an OSS request: V1/V4 Authorization headers and V1/V4 presigned URLs (oss-protocol.md §3).

The HTTP layer decodes the request (§4: path with plain ``unquote``, query with plus-decoding) into a
:class:`RequestToVerify` and calls :func:`authenticate`. Parsing (``parse_*``) is kept apart from verifying so
each step can be tested on its own. Nothing here does I/O: secrets come from ``lookup_secret`` and time from
``now``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ossdrop.core.errors import OSSError
from ossdrop.protocol import signing
from ossdrop.protocol.timefmt import iso8601, parse_amz_date, parse_http_date

_V1_QUERY_MARKERS = ("OSSAccessKeyId", "Signature")
_V4_QUERY_MARKERS = ("x-oss-signature-version", "x-oss-credential", "x-oss-signature")
_SCOPE_DATE = re.compile(r"[0-9]{8}")
_DIGITS = re.compile(r"[0-9]{1,12}")
# §3.3: the V2 SDK refuses to presign V4 URLs for longer than 7 days; OSS enforces the same ceiling.
_V4_MAX_EXPIRES = 7 * 24 * 3600


@dataclass(frozen=True)
class RequestToVerify:
    """A request as the server decoded it from the wire (§4)."""

    method: str
    bucket: str | None  # decoded bucket name, None for service-level requests
    key: str | None  # decoded object key (may contain '/', spaces, '+', '%', unicode), None for bucket level
    query: Sequence[tuple[str, str]]  # query pairs decoded with '+' meaning space, blank values kept, wire order
    headers: Mapping[str, str]  # lower-case header names -> values (non-ASCII header bytes decoded as UTF-8)


@dataclass(frozen=True)
class V1Signature:
    """A V1 signature: from ``Authorization: OSS <ak>:<sig>`` or the ``OSSAccessKeyId``/``Signature`` query.

    ``date_line`` is what the StringToSign carries as Date: the ``x-oss-date``/``Date`` header, or the
    ``Expires`` value of a presigned URL (§3.3)."""

    access_key_id: str
    signature: str
    date_line: str
    presigned: bool


@dataclass(frozen=True)
class V4Credential:
    """The parsed ``<ak>/<yyyymmdd>/<region>/<product>/aliyun_v4_request`` credential (§3.2)."""

    access_key_id: str
    date: str
    region: str
    product: str

    @property
    def scope(self) -> str:
        """The credential scope without the access key id."""
        return signing.v4_scope(self.date, self.region, self.product)


@dataclass(frozen=True)
class V4Signature:
    """A V4 signature from the Authorization header or the ``x-oss-*`` presign query (§3.2, §3.3).

    ``timestamp`` is the ``x-oss-date`` value; ``query`` is what the canonical query is built from (for
    presigned URLs every pair except ``x-oss-signature``)."""

    credential: V4Credential
    additional_headers: tuple[str, ...]
    signature: str
    timestamp: str
    query: tuple[tuple[str, str], ...]
    presigned: bool


def authenticate(
    req: RequestToVerify,
    *,
    lookup_secret: Callable[[str], str | None],
    now: float,
    max_skew: float = 900.0,
) -> str | None:
    """Return the AccessKeyId that signed ``req``, or None when it carries no signature (anonymous).

    Raises :class:`OSSError` with ``InvalidAccessKeyId`` (unknown key id), ``SignatureDoesNotMatch`` (with
    ``StringToSign``/``SignatureProvided`` like OSS), ``AccessDenied`` "Request has expired." (presigned URL
    past its expiry), ``AccessDenied`` (header-signed request without a usable date), ``RequestTimeTooSkewed``
    (header-signed request more than ``max_skew`` seconds off ``now``), ``InvalidArgument`` (malformed
    Authorization header, credential or presign query, or both a URL signature and an Authorization header).
    """
    parsed = parse_request_signature(req)
    if parsed is None:
        return None
    if isinstance(parsed, V1Signature):
        _check_v1_time(parsed, now=now, max_skew=max_skew)
        verify_v1(req, parsed, _secret_for(parsed.access_key_id, lookup_secret))
        return parsed.access_key_id
    _check_v4_time(parsed, now=now, max_skew=max_skew)
    verify_v4(req, parsed, _secret_for(parsed.credential.access_key_id, lookup_secret))
    return parsed.credential.access_key_id


# --- parsing ---------------------------------------------------------------------------------------------


def parse_request_signature(req: RequestToVerify) -> V1Signature | V4Signature | None:
    """Find the one signature ``req`` carries (header or URL); None when anonymous.

    Raises ``InvalidArgument`` when the request carries more than one (§3.3) or the one it carries is
    malformed."""
    authorization = req.headers.get("authorization", "").strip()
    has_v1_query = any(_first(req.query, name) is not None for name in _V1_QUERY_MARKERS)
    has_v4_query = any(_first(req.query, name) is not None for name in _V4_QUERY_MARKERS)
    if sum((bool(authorization), has_v1_query, has_v4_query)) > 1:
        raise _invalid("Only one authentication method (Authorization header or URL signature) is allowed.")
    if has_v1_query:
        return parse_v1_query(req.query)
    if has_v4_query:
        return parse_v4_query(req.query)
    if authorization:
        return parse_authorization(authorization, req.headers, req.query)
    return None


def parse_authorization(
    value: str, headers: Mapping[str, str], query: Sequence[tuple[str, str]]
) -> V1Signature | V4Signature:
    """Parse an ``OSS ...`` (V1) or ``OSS4-HMAC-SHA256 ...`` (V4) Authorization header value.

    The V4 header is accepted in both the V2 SDK form (``,`` separators, AdditionalHeaders before Signature)
    and the oss2 form (``, `` separators, AdditionalHeaders last), §3.2. Raises ``InvalidArgument``."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme == "OSS":
        access_key_id, _, signature = rest.strip().partition(":")
        if not access_key_id or not signature:
            raise _invalid("Authorization header is invalid.")
        date_line = headers.get("x-oss-date", "").strip() or headers.get("date", "").strip()
        return V1Signature(access_key_id.strip(), signature.strip(), date_line, presigned=False)
    if scheme == signing.V4_ALGORITHM:
        fields = _parse_v4_fields(rest)
        return V4Signature(
            credential=parse_v4_credential(fields["Credential"]),
            additional_headers=_split_additional(fields.get("AdditionalHeaders", "")),
            signature=fields["Signature"],
            timestamp=headers.get("x-oss-date", "").strip(),
            query=tuple(query),
            presigned=False,
        )
    raise _invalid("Authorization header is invalid.")


def parse_v4_credential(value: str) -> V4Credential:
    """Parse ``<ak>/<yyyymmdd>/<region>/<product>/aliyun_v4_request``; raises ``InvalidArgument``."""
    parts = value.strip().split("/")
    if len(parts) != 5 or parts[4] != signing.V4_TERMINATOR or not all(parts[:4]):
        raise _invalid(f"Invalid credential in Authorization header: {value}.")
    if not _SCOPE_DATE.fullmatch(parts[1]):
        raise _invalid(f"Invalid credential date in Authorization header: {parts[1]}.")
    return V4Credential(access_key_id=parts[0], date=parts[1], region=parts[2], product=parts[3])


def parse_v1_query(query: Sequence[tuple[str, str]]) -> V1Signature:
    """Parse a V1 presigned URL query (``OSSAccessKeyId``, ``Expires``, ``Signature``, §3.3)."""
    access_key_id, expires, signature = (_first(query, n) for n in ("OSSAccessKeyId", "Expires", "Signature"))
    if not access_key_id or not expires or not signature:
        raise _invalid("OSSAccessKeyId, Expires and Signature are all required in a signed URL.", "Signature")
    if not _DIGITS.fullmatch(expires):
        raise _invalid(f"Invalid Expires: {expires}.", "Expires")
    return V1Signature(access_key_id, signature, expires, presigned=True)


def parse_v4_query(query: Sequence[tuple[str, str]]) -> V4Signature:
    """Parse a V4 presigned URL query (``x-oss-signature-version`` ... ``x-oss-signature``, §3.3)."""
    version = _first(query, "x-oss-signature-version")
    if version != signing.V4_ALGORITHM:
        raise _invalid(f"Unsupported x-oss-signature-version: {version}.", "x-oss-signature-version")
    names = ("x-oss-credential", "x-oss-date", "x-oss-expires", "x-oss-signature")
    credential, timestamp, expires, signature = (_first(query, n) for n in names)
    if not credential or not timestamp or not expires or not signature:
        raise _invalid(
            "x-oss-credential, x-oss-date, x-oss-expires and x-oss-signature are all required.", "x-oss-signature"
        )
    if not _DIGITS.fullmatch(expires) or not 0 < int(expires) <= _V4_MAX_EXPIRES:
        raise _invalid(f"Invalid x-oss-expires: {expires}.", "x-oss-expires")
    return V4Signature(
        credential=parse_v4_credential(credential),
        additional_headers=_split_additional(_first(query, "x-oss-additional-headers") or ""),
        signature=signature,
        timestamp=timestamp,
        query=tuple((k, v) for k, v in query if k != "x-oss-signature"),
        presigned=True,
    )


def _parse_v4_fields(rest: str) -> dict[str, str]:
    """Split ``Credential=..,AdditionalHeaders=..,Signature=..`` in any order, with or without spaces."""
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in ("Credential", "AdditionalHeaders", "Signature") or name in fields:
            raise _invalid("Authorization header is invalid.")
        fields[name] = value.strip()
    if not fields.get("Credential") or not fields.get("Signature"):
        raise _invalid("Authorization header is invalid.")
    return fields


def _split_additional(value: str) -> tuple[str, ...]:
    return tuple(name.strip().lower() for name in value.split(";") if name.strip())


def _first(query: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in query if key == name), None)


# --- time checks -----------------------------------------------------------------------------------------


def _check_v1_time(parsed: V1Signature, *, now: float, max_skew: float) -> None:
    if parsed.presigned:
        # §3.3: Expires is absolute epoch seconds; the URL is valid up to and including that second.
        _check_expiry(float(parsed.date_line), now)
        return
    # oss2 and the V2 SDK send RFC 1123; accept the V4 compact form in x-oss-date as well.
    request_time = (parse_http_date(parsed.date_line) or parse_amz_date(parsed.date_line)) if parsed.date_line else None
    if request_time is None:
        raise OSSError("AccessDenied", "Request must carry a valid Date or x-oss-date header.")
    _check_skew(parsed.date_line, request_time, now, max_skew)


def _check_v4_time(parsed: V4Signature, *, now: float, max_skew: float) -> None:
    request_time = parse_amz_date(parsed.timestamp) if parsed.timestamp else None
    if request_time is None:
        raise _invalid(f"Invalid or missing x-oss-date: {parsed.timestamp!r}.", "x-oss-date")
    if parsed.timestamp[:8] != parsed.credential.date:
        # §3.2: the scope date must be the date part of x-oss-date.
        raise _invalid(f"Credential date {parsed.credential.date} does not match x-oss-date {parsed.timestamp}.")
    if parsed.presigned:
        expires = _first(parsed.query, "x-oss-expires") or "0"
        _check_expiry(request_time + int(expires), now)
        return
    _check_skew(parsed.timestamp, request_time, now, max_skew)


def _check_expiry(expires_at: float, now: float) -> None:
    if now > expires_at:
        raise OSSError(
            "AccessDenied",
            "Request has expired.",
            extra={"Expires": iso8601(expires_at), "ServerTime": iso8601(now)},
        )


def _check_skew(raw: str, request_time: float, now: float, max_skew: float) -> None:
    if abs(now - request_time) > max_skew:
        raise OSSError(
            "RequestTimeTooSkewed",
            extra={
                "RequestTime": raw,
                "ServerTime": iso8601(now),
                "MaxAllowedSkewMilliseconds": str(int(max_skew * 1000)),
            },
        )


# --- verification ----------------------------------------------------------------------------------------


def verify_v1(req: RequestToVerify, parsed: V1Signature, secret: str) -> None:
    """Check a V1 signature, first with oss2's sub-resource set, then with the V2 SDK's (§3.1 "Server
    recommendation"); raises ``SignatureDoesNotMatch`` carrying the oss2-set StringToSign."""
    candidates = [
        signing.v1_string_to_sign(
            req.method, req.bucket, req.key, req.query, req.headers, parsed.date_line, subresources
        )
        for subresources in (signing.OSS2_SUBRESOURCES, signing.V2SDK_SUBRESOURCES)
    ]
    matched = False
    for string_to_sign in dict.fromkeys(candidates):
        # Every candidate is compared (no early exit) so timing does not reveal which one matched.
        matched |= signing.constant_time_equal(signing.v1_signature(secret, string_to_sign), parsed.signature)
    if not matched:
        raise _mismatch(parsed.access_key_id, parsed.signature, candidates[0])


def verify_v4(req: RequestToVerify, parsed: V4Signature, secret: str) -> None:
    """Check a V4 signature with the region and product of its credential scope (§3.2); raises
    ``SignatureDoesNotMatch`` carrying the StringToSign and CanonicalRequest."""
    cred = parsed.credential
    canonical = signing.v4_canonical_request(
        req.method, req.bucket, req.key, parsed.query, req.headers, parsed.additional_headers
    )
    string_to_sign = signing.v4_string_to_sign(parsed.timestamp, cred.scope, canonical)
    expected = signing.v4_signature(secret, cred.date, cred.region, cred.product, string_to_sign)
    if not signing.constant_time_equal(expected, parsed.signature):
        raise _mismatch(cred.access_key_id, parsed.signature, string_to_sign, canonical)


def _secret_for(access_key_id: str, lookup_secret: Callable[[str], str | None]) -> str:
    secret = lookup_secret(access_key_id)
    if secret is None:
        raise OSSError("InvalidAccessKeyId", extra={"OSSAccessKeyId": access_key_id})
    return secret


def _mismatch(access_key_id: str, provided: str, string_to_sign: str, canonical: str = "") -> OSSError:
    extra = {
        "OSSAccessKeyId": access_key_id,
        "SignatureProvided": provided,
        "StringToSign": string_to_sign,
        "StringToSignBytes": " ".join(f"{b:02x}" for b in string_to_sign.encode("utf-8")),
    }
    if canonical:
        extra["CanonicalRequest"] = canonical
    return OSSError("SignatureDoesNotMatch", extra=extra)


def _invalid(message: str, argument: str = "Authorization") -> OSSError:
    return OSSError("InvalidArgument", message, extra={"ArgumentName": argument})
