"""Verifying upload callbacks (oss-protocol.md §2.3): is this request really from the store?

Order matters: the headers are checked, then the public-key URL is decoded and checked against the allowed
prefixes *before* anything is fetched (a forged URL never makes us connect anywhere), then the key is fetched
once per URL and cached, then the MD5withRSA signature over ``unquote(path) + ?query + \\n + body`` is checked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import httpx

from ossdrop.protocol.callback import decode_pub_key_url, verify_callback_signature

KEY_FETCH_TIMEOUT = 3.0  # OSS gives the whole callback 5 s (§2.4)
MAX_KEY_BYTES = 16 * 1024
MAX_CACHED_KEYS = 64

KeyFetcher = Callable[[str], bytes]


class CallbackAuthError(Exception):
    """The callback is not authentic: missing headers, a key URL outside the allowed prefixes, or a bad signature.

    ``reason`` is a short machine-readable code.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeyUnavailableError(Exception):
    """The public key could not be fetched or is not an RSA public key (the store's fault, not the caller's)."""


def fetch_public_key(url: str) -> bytes:
    """GET the PEM at ``url`` (no redirects, no proxies from the environment, bounded size and time)."""
    try:
        with httpx.Client(timeout=KEY_FETCH_TIMEOUT, follow_redirects=False, trust_env=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise KeyUnavailableError(f"public key {url} unreachable: {type(exc).__name__}") from None
    if response.status_code != 200 or len(response.content) > MAX_KEY_BYTES:
        raise KeyUnavailableError(f"public key {url} answered {response.status_code}")
    return response.content


class CallbackVerifier:
    """Checks callback requests; thread-safe. Keys are cached by URL (at most :data:`MAX_CACHED_KEYS`)."""

    def __init__(self, allowed_prefixes: Sequence[str], fetch: KeyFetcher = fetch_public_key) -> None:
        self.allowed_prefixes = tuple(allowed_prefixes)
        self._fetch = fetch
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def verify(self, *, authorization: str | None, pub_key_url: str | None, path: str, query: str, body: bytes) -> None:
        """Return when the request is authentic; raise :class:`CallbackAuthError` or :class:`KeyUnavailableError`.

        ``path`` is the request path as sent (percent-encoded), ``query`` the raw query without ``?``. May fetch
        the public key (blocking, up to :data:`KEY_FETCH_TIMEOUT`).
        """
        self._verify(authorization, pub_key_url, path, query, body, self._key)

    def verify_cached(
        self, *, authorization: str | None, pub_key_url: str | None, path: str, query: str, body: bytes
    ) -> bool:
        """:meth:`verify` without any I/O: true when verified, false when the public key is not cached yet (then
        nothing was decided: call :meth:`verify`, in a worker thread); raises exactly as :meth:`verify`."""
        return self._verify(authorization, pub_key_url, path, query, body, self._cached)

    def _verify(
        self,
        authorization: str | None,
        pub_key_url: str | None,
        path: str,
        query: str,
        body: bytes,
        key_for: Callable[[str], bytes | None],
    ) -> bool:
        if not authorization or not pub_key_url:
            raise CallbackAuthError("unsigned", "the callback has no authorization or x-oss-pub-key-url header")
        url = decode_pub_key_url(pub_key_url, self.allowed_prefixes)
        if url is None:
            raise CallbackAuthError("untrusted_key", "the public key URL is not an allowed one")
        pem = key_for(url)
        if pem is None:
            return False
        try:
            ok = verify_callback_signature(pem, authorization, path, query, body)
        except ValueError:
            raise KeyUnavailableError(f"{url} is not an RSA public key") from None
        if not ok:
            raise CallbackAuthError("bad_signature", "the callback signature does not match")
        return True

    def _cached(self, url: str) -> bytes | None:
        with self._lock:
            return self._keys.get(url)

    def _key(self, url: str) -> bytes:
        cached = self._cached(url)
        if cached is not None:
            return cached
        pem = self._fetch(url)
        with self._lock:
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[url] = pem
        return pem
