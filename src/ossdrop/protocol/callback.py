"""Upload callbacks: the ``callback`` parameter, body rendering and the RSA signature (oss-protocol.md §2).

Pure functions. The store parses and renders (§2.1/§2.2) and signs (§2.3); the app server verifies
(§2.3 steps 1-6). Sending lives in :mod:`ossdrop.services.callbacks`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ossdrop.core.errors import OSSError

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
MAX_URLS = 5  # §2.1
MAX_PARAM_LEN = 5 * 1024  # §2.1: callback and callback-var are each <= 5 KB
OSS_PUB_KEY_PREFIXES = ("http://gosspublic.alicdn.com/", "https://gosspublic.alicdn.com/")  # §2.3 step 2
# §2.2: the case-sensitive system variables; anything else must be ``x:<name>``.
SYSTEM_VARIABLES = frozenset(
    {
        "bucket", "object", "etag", "size", "mimeType", "imageInfo.height", "imageInfo.width",
        "imageInfo.format", "crc64", "contentMd5", "vpcId", "clientIp", "reqId", "operation",
    }
)  # fmt: skip
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")


@dataclass(frozen=True)
class CallbackSpec:
    """A validated callback: ``urls`` in trial order (scheme always present), the optional ``host`` for
    the Host header, the ``body`` template, its ``body_type`` (:data:`FORM_TYPE` or :data:`JSON_TYPE`),
    ``sni`` and the custom ``x:`` variables (lower-case names with the ``x:`` prefix)."""

    urls: tuple[str, ...]
    body: str
    body_type: str = FORM_TYPE
    host: str | None = None
    sni: bool = False
    custom_vars: Mapping[str, str] = field(default_factory=dict)


def _bad(message: str, name: str = "callback") -> OSSError:
    return OSSError("InvalidArgument", message, {"ArgumentName": name})


def _decode_json_param(value: str, name: str) -> dict[str, object]:
    if len(value) > MAX_PARAM_LEN:
        raise _bad(f"The {name} configuration is longer than {MAX_PARAM_LEN} bytes.", name)
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad(f"The {name} configuration is not base64 encoded.", name) from None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise _bad(f"The {name} configuration is not json format.", name)
    return doc


def parse_callback(
    callback_b64: str, callback_var_b64: str | None = None, *, form_fields: Mapping[str, str] | None = None
) -> CallbackSpec | None:
    """Parse and validate a ``callback`` parameter (§2.1); None when ``callbackUrl`` is empty or absent.

    Custom variables come from ``callback_var_b64`` (PutObject/CompleteMultipartUpload) or, for
    PostObject, from the ``x:*`` entries of ``form_fields`` (§2.1: callback-var is not used with
    PostObject); passing both is an error. Every defect raises 400 ``InvalidArgument`` with
    ``ArgumentName`` ``callback`` (or ``callback-var``). Unknown JSON keys are ignored, since OSS keeps
    adding optional ones (``callbackSNI`` is recent).
    """
    doc = _decode_json_param(callback_b64, "callback")
    raw_urls = doc.get("callbackUrl", "")
    if not isinstance(raw_urls, str):
        raise _bad("The callbackUrl is not a string.")
    if not raw_urls.strip():
        return None
    if callback_var_b64 is not None and form_fields is not None:
        raise _bad("The callback-var parameter is not used with PostObject.", "callback-var")
    custom = _custom_from_form(form_fields) if form_fields is not None else _custom_from_param(callback_var_b64)
    return CallbackSpec(
        urls=_parse_urls(raw_urls),
        body=_parse_body(doc.get("callbackBody")),
        body_type=_parse_body_type(doc.get("callbackBodyType")),
        host=_parse_host(doc.get("callbackHost")),
        sni=_parse_sni(doc.get("callbackSNI")),
        custom_vars=custom,
    )


def _parse_urls(raw: str) -> tuple[str, ...]:
    urls = [u.strip() for u in raw.split(";") if u.strip()]
    if len(urls) > MAX_URLS:
        raise _bad(f"The callbackUrl count exceeds the limit of {MAX_URLS}.")
    return tuple(_parse_url(u) for u in urls)


def _parse_url(url: str) -> str:
    if "://" not in url:
        url = "http://" + url  # §2.1: the scheme may be omitted
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad(f"The callbackUrl scheme is not supported: {url}")
    if "[" in parts.netloc:
        raise _bad(f"The callbackUrl must not be an IPv6 address: {url}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if not parts.hostname or port == 0 or any(c.isspace() for c in url):
        raise _bad(f"The callbackUrl is invalid: {url}")
    return url


def _parse_body(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise OSSError("InvalidArgument", "The callbackBody is empty.", {"ArgumentName": "callback"}, "0007-00000011")
    rest = _PLACEHOLDER.sub("", raw)
    if "${" in rest:
        raise _bad("The callbackBody has an unterminated ${} variable.")
    for name in _PLACEHOLDER.findall(raw):
        if name not in SYSTEM_VARIABLES and not (name.startswith("x:") and len(name) > 2):
            raise _bad(f"The callbackBody uses an unknown variable: ${{{name}}}")
    return raw


def _parse_body_type(raw: object) -> str:
    if raw is None or raw == "":
        return FORM_TYPE
    if isinstance(raw, str) and raw.strip().lower() in (FORM_TYPE, JSON_TYPE):
        return raw.strip().lower()
    raise _bad(f"The callbackBodyType is not supported: {raw}")


def _parse_host(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or any(c.isspace() for c in raw):
        raise _bad("The callbackHost is invalid.")
    return raw


def _parse_sni(raw: object) -> bool:
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise _bad("The callbackSNI must be true or false.")


def _custom_from_param(callback_var_b64: str | None) -> dict[str, str]:
    if callback_var_b64 is None:
        return {}
    doc = _decode_json_param(callback_var_b64, "callback-var")
    for name, value in doc.items():
        # §2.1: keys start with x: and are lower-case.
        if not name.startswith("x:") or name != name.lower() or len(name) < 3 or not isinstance(value, str):
            raise _bad(f"The callback-var key is invalid: {name}", "callback-var")
    return {k: str(v) for k, v in doc.items()}


def _custom_from_form(fields: Mapping[str, str]) -> dict[str, str]:
    # §1.2: each x:<name> form field is one variable; field names are case-insensitive.
    return {name.lower(): value for name, value in fields.items() if name.lower().startswith("x:")}


def render_body(spec: CallbackSpec, variables: Mapping[str, str | int]) -> bytes:
    """Expand ``spec.body`` into the UTF-8 bytes OSS sends (§2.2).

    ``variables`` holds system variables (``size`` etc.); ``x:`` names come from ``spec.custom_vars``.
    A variable with no value renders as the empty string. Form bodies get percent-encoded values
    (``/`` too, as in the §2.2 example). JSON bodies get JSON values: strings quoted and escaped, ints
    as JSON numbers, so the official template ``{"size":${size}}`` is valid JSON either way (§2.2 leaves
    number-vs-string UNSURE; apps must accept both). A placeholder that the template already wraps in
    quotes, e.g. ``"${object}"``, gets the escaped text without extra quotes so the result stays JSON.
    """
    values: dict[str, str | int] = {**variables, **spec.custom_vars}
    if spec.body_type == FORM_TYPE:
        text = _PLACEHOLDER.sub(lambda m: quote(str(values.get(m.group(1), "")), safe=""), spec.body)
    else:
        text = _render_json(spec.body, values)
    return text.encode("utf-8")


def _render_json(template: str, values: Mapping[str, str | int]) -> str:
    out: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        out.append(template[pos : match.start()])
        value = values.get(match.group(1), "")
        if _inside_string(template, match.start()):
            out.append(json.dumps(str(value), ensure_ascii=False)[1:-1])
        else:
            out.append(json.dumps(value, ensure_ascii=False))
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def _inside_string(template: str, end: int) -> bool:
    inside, escaped = False, False
    for ch in template[:end]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = inside
        elif ch == '"':
            inside = not inside
    return inside


def string_to_sign(path: str, query: str, body: bytes) -> bytes:
    """§2.3: ``unquote(path)`` + (``"?" + query`` if ``query``) + ``"\\n"`` + ``body``.

    ``path`` is the request path as sent (percent-encoded), ``query`` the raw query without ``?``. The path
    is always unquoted (§2.3 trap: one official demo skips that when there is no query).
    """
    head = unquote(path) + ("?" + query if query else "") + "\n"
    return head.encode("utf-8") + body


def sign_callback(private_key: rsa.RSAPrivateKey | bytes, path: str, query: str, body: bytes) -> str:
    """The ``authorization`` header: base64 RSA PKCS#1 v1.5 signature over MD5 of :func:`string_to_sign`.

    ``private_key`` is a key object or an unencrypted PEM.
    """
    key = private_key if isinstance(private_key, rsa.RSAPrivateKey) else load_private_key(private_key)
    signature = key.sign(string_to_sign(path, query, body), padding.PKCS1v15(), hashes.MD5())  # noqa: S303
    return base64.b64encode(signature).decode()


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Load an unencrypted PEM RSA private key; ValueError when it is not one."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the callback key must be an RSA private key")
    return key


def verify_callback_signature(
    public_key_pem: bytes, authorization_b64: str, path: str, query: str, body: bytes
) -> bool:
    """True when ``authorization_b64`` is a valid MD5withRSA signature of the request (§2.3 steps 4-6).

    Any defect in the signature (not base64, wrong length, mismatch) gives False. Raises ValueError when
    ``public_key_pem`` is not an RSA public key (a configuration error, not a forged request). 512-bit
    keys, which OSS uses, load and verify fine with ``cryptography``.
    """
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the callback public key must be an RSA key")
    try:
        signature = base64.b64decode(authorization_b64, validate=True)
        key.verify(signature, string_to_sign(path, query, body), padding.PKCS1v15(), hashes.MD5())  # noqa: S303
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def generate_callback_key(key_size: int = 2048) -> tuple[bytes, bytes]:
    """A new RSA key pair for the store's callback signatures: ``(private PKCS#8 PEM, public SPKI PEM)``.

    OSS itself uses 512 bits, but ``cryptography`` refuses to generate keys under 1024 bits, and app
    servers verify any size, so the default is 2048. The security of MD5withRSA rests on MD5 anyway.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def pub_key_url_header(url: str) -> str:
    """The ``x-oss-pub-key-url`` header value: standard base64 of the public key URL (§2.3)."""
    return base64.b64encode(url.encode("utf-8")).decode()


def decode_pub_key_url(header: str, allowed_prefixes: Sequence[str] = OSS_PUB_KEY_PREFIXES) -> str | None:
    """The key URL from an ``x-oss-pub-key-url`` header, or None when it is not base64 or does not start
    with one of ``allowed_prefixes`` (§2.3 step 2: this stops a forged key URL)."""
    try:
        url = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return url if any(url.startswith(p) for p in allowed_prefixes) else None
