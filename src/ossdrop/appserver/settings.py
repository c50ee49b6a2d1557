"""The app server's settings: one frozen object, validated once, passed in explicitly.

Only the CLI reads the environment (``OSSDROP_*`` variables and ``.env``); it builds an :class:`AppSettings` with
:func:`make_settings`, which raises :class:`SettingsError` naming the first bad setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ossdrop.protocol.callback import OSS_PUB_KEY_PREFIXES
from ossdrop.services.keys import DedupScope, InvalidKeyError, upload_key

DEFAULT_POLICY_TTL = 900
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3  # PostObject's own limit (oss-protocol.md §1.1)
DEFAULT_UPLOAD_DIR = "user-dirs/"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z0-9-]{2,64}$")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it (``OSSDROP_<NAME>``)."""


@dataclass(frozen=True)
class AppSettings:
    """Everything the app server needs; see the README's settings table for each field's meaning.

    ``oss_endpoint`` is the store's base URL with scheme (``http://127.0.0.1:9000`` or
    ``https://oss-cn-hangzhou.aliyuncs.com``); ``public_url`` is the app's base URL as the store reaches it;
    ``callback_pubkey_prefixes`` are the URL prefixes a callback's public key may be fetched from.
    ``dev_mode`` enables ``POST /api/dev/login``. Durations are in seconds.
    """

    database_url: str
    oss_endpoint: str
    bucket: str
    region: str
    access_key_id: str
    access_key_secret: str
    public_url: str
    jwt_secret: str
    signature_version: str = "v4"
    upload_dir: str = DEFAULT_UPLOAD_DIR
    policy_ttl: int = DEFAULT_POLICY_TTL
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    dedup_scope: DedupScope = DedupScope.CREATOR
    callback_pubkey_prefixes: tuple[str, ...] = OSS_PUB_KEY_PREFIXES
    dev_mode: bool = False
    download_url_ttl: int = 300
    reconcile_interval: float = 60.0
    token_ttl: int = 24 * 3600

    @property
    def callback_url(self) -> str:
        """Where the store sends upload callbacks."""
        return self.public_url.rstrip("/") + "/api/uploads/callback"

    @property
    def key_dir(self) -> str:
        """The upload directory as the key scheme spells it (no trailing slash)."""
        return self.upload_dir.strip("/")


def make_settings(**values: object) -> AppSettings:
    """An :class:`AppSettings` from keyword values (``dedup_scope`` may be a string), validated; raises
    :class:`SettingsError`.
    """
    scope = values.get("dedup_scope")
    if isinstance(scope, str) and not isinstance(scope, DedupScope):
        try:
            values["dedup_scope"] = DedupScope(scope)
        except ValueError:
            raise SettingsError("OSSDROP_DEDUP_SCOPE: must be creator, global or off") from None
    try:
        settings = AppSettings(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise SettingsError(str(exc)) from None
    validate(settings)
    return settings


def validate(s: AppSettings) -> None:
    """Raise :class:`SettingsError` for the first invalid setting of ``s``."""
    _check(bool(s.database_url), "DATABASE_URL", "must be set")
    for name, url in (("OSS_ENDPOINT", s.oss_endpoint), ("PUBLIC_URL", s.public_url)):
        parts = urlsplit(url)
        _check(parts.scheme in ("http", "https") and bool(parts.hostname), name, f"must be an http(s) URL: {url!r}")
    _check(bool(_BUCKET_RE.fullmatch(s.bucket)), "BUCKET", f"not a valid bucket name: {s.bucket!r}")
    _check(bool(_REGION_RE.fullmatch(s.region)), "REGION", f"not a valid region: {s.region!r}")
    _check(bool(s.access_key_id and s.access_key_secret), "ACCESS_KEY_ID", "the store's key pair must be set")
    _check(len(s.jwt_secret.encode()) >= 32, "JWT_SECRET", "must be at least 32 bytes")
    _check(s.signature_version in ("v1", "v4"), "SIGNATURE_VERSION", "must be v1 or v4")
    try:
        upload_key("0" * 32, "", 1, DedupScope.CREATOR, upload_dir=s.upload_dir)
    except InvalidKeyError:
        raise SettingsError(f"OSSDROP_UPLOAD_DIR: not a valid key prefix: {s.upload_dir!r}") from None
    _check(1 <= s.policy_ttl <= 7 * 24 * 3600, "POLICY_TTL", "must be 1 s .. 7 days")
    _check(0 < s.max_upload_bytes <= DEFAULT_MAX_UPLOAD_BYTES, "MAX_UPLOAD_BYTES", "must be 1 .. 5 GiB")
    _check(isinstance(s.dedup_scope, DedupScope), "DEDUP_SCOPE", "must be creator, global or off")
    _check(bool(s.callback_pubkey_prefixes), "CALLBACK_PUBKEY_PREFIXES", "needs at least one prefix")
    for prefix in s.callback_pubkey_prefixes:
        parts = urlsplit(prefix)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and prefix.count("/") >= 3
        _check(ok, "CALLBACK_PUBKEY_PREFIXES", f"each prefix must be a URL ending in a path: {prefix!r}")
    _check(s.download_url_ttl > 0 and s.reconcile_interval > 0, "DOWNLOAD_URL_TTL", "must be positive")


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise SettingsError(f"OSSDROP_{name}: {message}")
