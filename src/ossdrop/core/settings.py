"""Frozen settings objects, built by the CLI (the only reader of the environment) and passed in explicitly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoreConfig:
    """Everything the embedded OSS store needs to know at start.

    ``endpoint`` is the store's base URL as clients reach it (``http://127.0.0.1:9000``); it is reported as the
    buckets' ExtranetEndpoint (trap 10) and used for the callback public-key URL. ``domain`` enables
    virtual-hosted addressing (``<bucket>.<domain>``).
    """

    root: str
    endpoint: str
    credentials: Mapping[str, str] = field(default_factory=dict)  # AccessKeyId -> AccessKeySecret
    region: str = "cn-hangzhou"
    domain: str | None = None
    owner_id: str = "1000000000000000"
    max_skew_seconds: float = 900.0
    callback_timeout: float = 5.0
    max_object_size: int = 5 * 1024**3  # PutObject/PostObject limit (§1.1)

    @property
    def location(self) -> str:
        return f"oss-{self.region}"
