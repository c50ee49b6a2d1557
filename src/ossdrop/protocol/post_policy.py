"""PostObject policies and form signatures (oss-protocol.md §1.3-§1.6).

Pure functions: the app server encodes and signs policies, the store decodes, checks and verifies them.
Time and secrets are always arguments. Every failure is an :class:`~ossdrop.core.errors.OSSError` with
the OSS wire code and wording of §1.3/§1.7.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ossdrop.core.errors import OSSError
from ossdrop.protocol.signing import constant_time_equal, hmac_sha1_b64, hmac_sha256_hex, v4_signing_key
from ossdrop.protocol.timefmt import iso8601, parse_amz_date, parse_iso8601

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
V4_MAX_SKEW = 15 * 60  # §1.6: x-oss-date may be at most 15 minutes ahead of the server clock
V4_MAX_AGE = 7 * 24 * 3600  # §1.6: a V4 form is valid for at most 7 days from x-oss-date
_V1_FIELDS = ("ossaccesskeyid", "policy", "signature")
_V4_FIELDS = ("x-oss-signature-version", "x-oss-credential", "x-oss-date", "x-oss-signature")
_MATCH_OPS = ("eq", "starts-with")
_SET_OPS = ("in", "not-in")
_EXACT_ONLY = ("bucket", "callback")  # §1.3: these fields support exact matching only

# A condition as the app server writes it: {"field": "value"} or ["op", "$field", value] /
# ["content-length-range", min, max].
RawCondition = Mapping[str, str] | Sequence[str | int | Sequence[str]]


@dataclass(frozen=True)
class MatchCondition:
    """``eq`` (also every ``{"field": "value"}`` map) or ``starts-with``; ``field`` is lower-case, no ``$``."""

    op: str
    field: str
    value: str


@dataclass(frozen=True)
class SetCondition:
    """``in`` / ``not-in``: membership of the field value in ``values``."""

    op: str
    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class LengthRange:
    """``content-length-range``: ``minimum <= size <= maximum`` in bytes, inclusive."""

    minimum: int
    maximum: int


Condition = MatchCondition | SetCondition | LengthRange


@dataclass(frozen=True)
class Policy:
    """A decoded policy: ``expiration`` in epoch seconds and the conditions in document order."""

    expiration: float
    conditions: tuple[Condition, ...]

    @property
    def max_size(self) -> int | None:
        """The tightest content-length-range maximum, so a caller can abort a stream early; None if none."""
        maxima = [c.maximum for c in self.conditions if isinstance(c, LengthRange)]
        return min(maxima) if maxima else None


def _invalid(message: str, ec: str = "") -> OSSError:
    return OSSError("InvalidPolicyDocument", "Invalid Policy: " + message, ec=ec)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _invalid(f"Invalid JSON: duplicate key '{key}'.")
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise _invalid(f"Invalid JSON: unexpected token '{name}'.")


# §1.3: OSS accepts ``\$`` as an escape for a literal ``$``; standard JSON does not, so rewrite it.
# Pairs are consumed left to right so that ``\\$`` (an escaped backslash, then ``$``) is left alone.
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _load_json(text: str) -> object:
    text = _ESCAPE.sub(lambda m: "$" if m.group(1) == "$" else m.group(0), text)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _invalid("Invalid JSON.") from None


def decode_policy(policy_b64: str) -> Policy:
    """Decode the ``policy`` form field (base64 of UTF-8 JSON) into a :class:`Policy`.

    Raises ``InvalidPolicyDocument`` for invalid base64/UTF-8/JSON, duplicate keys at any level, unknown
    top-level keys, a missing or unparseable ``expiration``, missing or empty ``conditions`` and any
    malformed condition. Expiry is *not* checked here (see :func:`check_policy`).
    """
    try:
        raw = base64.b64decode(policy_b64, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid("Invalid Base64 Encoding.") from None
    doc = _load_json(text)
    if not isinstance(doc, dict):
        raise _invalid("Invalid JSON: the policy must be a JSON object.")
    unknown = sorted(set(doc) - {"expiration", "conditions"})
    if unknown:
        raise _invalid(f"Unexpected field '{unknown[0]}'.")
    if "expiration" not in doc:
        raise _invalid("Policy missing expiration.")
    expiration = parse_iso8601(doc["expiration"]) if isinstance(doc["expiration"], str) else None
    if expiration is None:
        raise _invalid("Invalid 'expiration' value: must be ISO 8601 UTC, e.g. 2024-12-03T13:12:12.000Z.")
    conditions = doc.get("conditions")
    if conditions is None:
        raise _invalid("Policy missing conditions.", ec="0006-00000207")
    if not isinstance(conditions, list) or not conditions:
        raise _invalid("Conditions must be a non-empty JSON array.", ec="0006-00000207")
    return Policy(expiration, tuple(_parse_condition(c) for c in conditions))


def _parse_condition(raw: object) -> Condition:
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise _invalid("Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.")
        ((name, value),) = raw.items()
        if not isinstance(value, str):
            raise _invalid(f"Invalid Simple-Condition: the value of '{name}' must be a string.")
        return MatchCondition("eq", name.lower(), value)
    if not isinstance(raw, list) or not raw:
        raise _invalid(f"Invalid Condition: {json.dumps(raw)}.", ec="0006-00000222")
    op = raw[0].lower() if isinstance(raw[0], str) else ""
    if op == "content-length-range":
        return _parse_range(raw)
    if op not in _MATCH_OPS + _SET_OPS or len(raw) != 3:
        raise _invalid(f"Invalid Condition: {json.dumps(raw)}.", ec="0006-00000216")
    ref, value = raw[1], raw[2]
    if not isinstance(ref, str) or not ref.startswith("$") or len(ref) < 2:
        raise _invalid(f"Invalid Condition: field reference must start with '$': {json.dumps(raw)}.")
    name = ref[1:].lower()
    if name in _EXACT_ONLY and op != "eq":
        raise _invalid(f"Invalid Condition: '{name}' supports exact matching only.", ec="0006-00000222")
    if op in _MATCH_OPS:
        if not isinstance(value, str):
            raise _invalid(f"Invalid Condition: the value must be a string: {json.dumps(raw)}.")
        return MatchCondition(op, name, value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"Invalid Condition: '{op}' needs an array of strings: {json.dumps(raw)}.")
    return SetCondition(op, name, tuple(value))


def _length_bound(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _parse_range(raw: list[object]) -> LengthRange:
    if len(raw) != 3:
        raise _invalid('Invalid content-length-range: expected ["content-length-range", min, max].')
    low, high = _length_bound(raw[1]), _length_bound(raw[2])
    if low is None or high is None:
        raise _invalid("Invalid content-length-range: bounds must be non-negative integers.", ec="0006-00000219")
    if high < low:
        raise _invalid("Invalid content-length-range: max is less than min.", ec="0006-00000221")
    return LengthRange(low, high)


def lower_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """Form fields keyed by lower-case name (§1.2: names are case-insensitive).

    Raises ``InvalidArgument`` when two names differ only in case, since either could be the one checked.
    """
    out: dict[str, str] = {}
    for name, value in fields.items():
        low = name.lower()
        if low in out:
            raise OSSError("InvalidArgument", f"Duplicate form field: {name}", {"ArgumentName": name})
        out[low] = value
    return out


def _condition_text(c: MatchCondition | SetCondition) -> str:
    value: str | list[str] = c.value if isinstance(c, MatchCondition) else list(c.values)
    return json.dumps([c.op, "$" + c.field, value], ensure_ascii=False)


def _holds(c: MatchCondition | SetCondition, actual: str) -> bool:
    if isinstance(c, SetCondition):
        return (actual in c.values) == (c.op == "in")
    return actual == c.value if c.op == "eq" else actual.startswith(c.value)


def check_policy(policy: Policy, *, bucket: str, fields: Mapping[str, str], size: int | None, now: float) -> None:
    """Check ``policy`` against a PostObject request; return None when it holds.

    ``fields`` are the form fields **as sent** (§1.4: before ``${filename}`` expansion); names are matched
    case-insensitively, an absent field counts as ``""``, and fields the policy does not mention are
    allowed (§1.3). ``bucket`` is the target bucket. ``size`` is the file size, or None to skip
    content-length-range (check it later with :func:`check_size` once the size is known).

    Raises 403 ``AccessDenied`` for an expired policy (checked first) or a failed condition, and
    ``EntityTooLarge`` / ``EntityTooSmall`` for a size outside content-length-range.
    """
    if now > policy.expiration:
        raise OSSError("AccessDenied", "Invalid according to Policy: Policy expired.")
    values = lower_fields(fields)
    values["bucket"] = bucket
    for c in policy.conditions:
        if isinstance(c, LengthRange):
            if size is not None:
                _check_range(c, size)
        elif not _holds(c, values.get(c.field, "")):
            raise OSSError(
                "AccessDenied",
                f"Invalid according to Policy: Policy Condition failed: {_condition_text(c)}",
                ec="0006-00000227",
            )


def _check_range(c: LengthRange, size: int) -> None:
    if size > c.maximum:
        raise OSSError("EntityTooLarge", ec="0006-00000003")
    if size < c.minimum:
        raise OSSError("EntityTooSmall", ec="0006-00000004")


def check_size(policy: Policy, size: int) -> None:
    """Apply every content-length-range of ``policy`` to ``size``; raises EntityTooLarge/EntityTooSmall."""
    for c in policy.conditions:
        if isinstance(c, LengthRange):
            _check_range(c, size)


def encode_policy(expiration: float, conditions: Sequence[RawCondition]) -> str:
    """Base64 of the compact policy JSON ``{"expiration": ..., "conditions": [...]}`` (§1.3, §1.5 vector).

    ``expiration`` is epoch seconds, written as ``YYYY-MM-DDTHH:MM:SS.000Z``.
    """
    doc = {"expiration": iso8601(expiration), "conditions": [_jsonable(c) for c in conditions]}
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def _jsonable(c: RawCondition) -> object:
    if isinstance(c, Mapping):
        return dict(c)
    return [v if isinstance(v, str | int) else list(v) for v in c]


def sign_policy_v1(secret: str, policy_b64: str) -> str:
    """The V1 ``Signature`` field: base64 HMAC-SHA1 over the base64 policy text as sent (§1.5)."""
    return hmac_sha1_b64(secret, policy_b64)


def sign_policy_v4(secret: str, date: str, region: str, policy_b64: str, product: str = "oss") -> str:
    """The V4 ``x-oss-signature`` field: lower-case hex HMAC-SHA256 with the §1.6 key for ``date`` (yyyymmdd)."""
    return hmac_sha256_hex(v4_signing_key(secret, date, region, product), policy_b64)


def v4_credential(access_key_id: str, date: str, region: str, product: str = "oss") -> str:
    """``<AK>/<yyyymmdd>/<region>/<product>/aliyun_v4_request`` (§1.6)."""
    return f"{access_key_id}/{date}/{region}/{product}/{V4_TERMINATOR}"


def post_v4_fields(
    access_key_id: str,
    secret: str,
    region: str,
    *,
    expiration: float,
    conditions: Sequence[RawCondition],
    now: float,
    product: str = "oss",
) -> dict[str, str]:
    """The V4 form fields for a browser upload: ``policy`` plus the four ``x-oss-*`` fields (§1.6).

    The signature-version, credential and date conditions that §1.6 requires are appended to the caller's
    ``conditions``, so the policy always binds them; the caller must not list them itself (ValueError).
    """
    for c in conditions:
        if isinstance(c, Mapping) and any(k.lower() in _V4_FIELDS for k in c):
            raise ValueError("post_v4_fields adds the x-oss-* V4 conditions itself")
    amz_date = iso8601(now)[:19].replace("-", "").replace(":", "") + "Z"
    date = amz_date[:8]
    credential = v4_credential(access_key_id, date, region, product)
    v4 = {"x-oss-signature-version": V4_ALGORITHM, "x-oss-credential": credential, "x-oss-date": amz_date}
    policy = encode_policy(expiration, [*conditions, *({k: v} for k, v in v4.items())])
    return {"policy": policy, **v4, "x-oss-signature": sign_policy_v4(secret, date, region, policy, product)}


def verify_post_signature(
    fields: Mapping[str, str], *, lookup_secret: Callable[[str], str | None], now: float
) -> str | None:
    """Authenticate a PostObject form; return its AccessKeyId, or None for an anonymous form.

    V1 uses ``OSSAccessKeyId``/``policy``/``Signature`` (§1.5); V4 the four ``x-oss-*`` fields plus
    ``policy`` (§1.6), with ``x-oss-date`` checked against ``now`` and the credential scope. Raises
    ``InvalidArgument`` for an incomplete or mixed set of auth fields or a malformed V4 credential/date,
    ``RequestTimeTooSkewed`` / ``AccessDenied`` for a V4 date too far ahead / too old,
    ``InvalidAccessKeyId`` when ``lookup_secret`` returns None and 403 ``SignatureDoesNotMatch`` otherwise.
    Signatures are compared in constant time. The policy content is *not* checked here.
    """
    values = lower_fields(fields)
    if any(name in values for name in _V4_FIELDS):
        return _verify_v4(values, lookup_secret, now)
    present = [name for name in _V1_FIELDS if name in values]
    if not present:
        return None
    if len(present) != len(_V1_FIELDS):
        raise OSSError("InvalidArgument", "Bucket POST must contain the fields OSSAccessKeyId, policy and Signature.")
    secret = _secret(values["ossaccesskeyid"], lookup_secret)
    if not constant_time_equal(sign_policy_v1(secret, values["policy"]), values["signature"]):
        raise OSSError("SignatureDoesNotMatch")
    return values["ossaccesskeyid"]


def _secret(access_key_id: str, lookup_secret: Callable[[str], str | None]) -> str:
    secret = lookup_secret(access_key_id)
    if secret is None:
        raise OSSError("InvalidAccessKeyId", extra={"OSSAccessKeyId": access_key_id})
    return secret


def _v4_arg(name: str, message: str) -> OSSError:
    return OSSError("InvalidArgument", message, {"ArgumentName": name})


def _verify_v4(values: Mapping[str, str], lookup_secret: Callable[[str], str | None], now: float) -> str:
    missing = [name for name in (*_V4_FIELDS, "policy") if name not in values]
    if missing:
        raise _v4_arg(missing[0], f"Bucket POST with {V4_ALGORITHM} must contain the field {missing[0]}.")
    if "ossaccesskeyid" in values or "signature" in values:
        raise _v4_arg("Signature", "Bucket POST must not mix V1 and V4 signature fields.")
    if values["x-oss-signature-version"] != V4_ALGORITHM:
        raise _v4_arg("x-oss-signature-version", f"Unsupported signature version, expected {V4_ALGORITHM}.")
    parts = values["x-oss-credential"].split("/")
    if len(parts) != 5 or parts[4] != V4_TERMINATOR or not all(parts):
        raise _v4_arg("x-oss-credential", f"Invalid credential: it must end with {V4_TERMINATOR}.")
    access_key_id, date, region, product, _ = parts
    signed_at = parse_amz_date(values["x-oss-date"])
    if signed_at is None or values["x-oss-date"][:8] != date:
        raise _v4_arg("x-oss-date", "Invalid x-oss-date: it must be yyyymmddTHHMMSSZ matching the credential.")
    if signed_at - now > V4_MAX_SKEW:
        raise OSSError("RequestTimeTooSkewed")
    if now - signed_at > V4_MAX_AGE:
        raise OSSError("AccessDenied", "Invalid according to Policy: Request has expired.")
    secret = _secret(access_key_id, lookup_secret)
    expected = sign_policy_v4(secret, date, region, values["policy"], product)
    if not constant_time_equal(expected, values["x-oss-signature"].lower()):
        raise OSSError("SignatureDoesNotMatch")
    return access_key_id
