"""Reading the app server's settings from ``OSSDROP_*`` variables and ``.env`` (the CLI is the only reader).

:func:`resolve_settings` fills in what the issue's defaults derive from the data directory and ports (database
file, embedded store endpoint and credentials, dev-mode JWT secret) and returns a validated
:class:`~ossdrop.appserver.settings.AppSettings`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ossdrop.appserver.settings import AppSettings, SettingsError, make_settings
from ossdrop.objectserver.callback_hook import pub_key_url
from ossdrop.objectserver.runner import load_or_create_credentials
from ossdrop.protocol.callback import OSS_PUB_KEY_PREFIXES
from ossdrop.services.keys import DedupScope

JWT_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret


class EnvSettings(BaseSettings):
    """The raw ``OSSDROP_*`` values (see the README's settings table); ``None`` means "derive the default"."""

    model_config = SettingsConfigDict(env_prefix="OSSDROP_", env_file=".env", extra="ignore")

    database_url: str | None = None
    oss_endpoint: str | None = None
    bucket: str = "ossdrop"
    region: str = "cn-hangzhou"
    access_key_id: str | None = None
    access_key_secret: str | None = None
    public_url: str | None = None
    jwt_secret: str | None = None
    signature_version: str = "v4"
    upload_dir: str = "user-dirs/"
    policy_ttl: int = 900
    max_upload_bytes: int = 5 * 1024**3
    dedup_scope: str = "creator"
    callback_pubkey_prefixes: str | None = None
    reconcile_interval: float = 60.0
    download_url_ttl: int = 300


@dataclass(frozen=True)
class Place:
    """Where things run: the data dir, the app's address, and the embedded store's port."""

    data_dir: Path
    host: str
    port: int
    store_port: int


def read_env() -> EnvSettings:
    """The environment (and ``.env``), type-checked; :class:`SettingsError` names a bad variable."""
    try:
        return EnvSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "OSSDROP_" + str(first["loc"][0]).upper() if first.get("loc") else "OSSDROP_*"
        raise SettingsError(f"{name}: {first['msg']}") from None


def store_endpoint(place: Place) -> str:
    """The embedded store's URL for ``place``."""
    host = f"[{place.host}]" if ":" in place.host else place.host
    return f"http://{host}:{place.store_port}"


def resolve_settings(env: EnvSettings, place: Place) -> AppSettings:
    """The validated settings; with no ``OSS_ENDPOINT`` they point at the embedded store of ``place``."""
    embedded = not env.oss_endpoint
    endpoint = env.oss_endpoint or store_endpoint(place)
    key_id, secret = env.access_key_id, env.access_key_secret
    if embedded and not (key_id and secret):
        creds = load_or_create_credentials(str(place.data_dir / "store"))
        key_id, secret = creds.access_key_id, creds.access_key_secret
    jwt_secret, dev_mode = env.jwt_secret, False
    if not jwt_secret and embedded:
        jwt_secret, dev_mode = dev_jwt_secret(place.data_dir), True
    prefixes = [p.strip() for p in (env.callback_pubkey_prefixes or "").split(",") if p.strip()]
    if not prefixes:
        prefixes = list(OSS_PUB_KEY_PREFIXES)
    if embedded:
        prefixes.append(pub_key_url(endpoint))
    host = f"[{place.host}]" if ":" in place.host else place.host
    try:
        scope = DedupScope(env.dedup_scope)
    except ValueError:
        raise SettingsError("OSSDROP_DEDUP_SCOPE: must be creator, global or off") from None
    return make_settings(
        database_url=env.database_url or f"sqlite:///{place.data_dir.resolve() / 'ossdrop.db'}",
        oss_endpoint=endpoint,
        bucket=env.bucket,
        region=env.region,
        access_key_id=key_id or "",
        access_key_secret=secret or "",
        public_url=env.public_url or f"http://{host}:{place.port}",
        jwt_secret=jwt_secret or "",
        signature_version=env.signature_version,
        upload_dir=env.upload_dir,
        policy_ttl=env.policy_ttl,
        max_upload_bytes=env.max_upload_bytes,
        dedup_scope=scope,
        callback_pubkey_prefixes=tuple(prefixes),
        dev_mode=dev_mode,
        reconcile_interval=env.reconcile_interval,
        download_url_ttl=env.download_url_ttl,
    )


def dev_jwt_secret(data_dir: Path) -> str:
    """The dev-mode JWT secret kept in ``<data_dir>/jwt_secret`` (mode 0600), made on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / JWT_SECRET_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()
