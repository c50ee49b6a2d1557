"""Signing the PostObject form of an upload, with everything that does not vary per upload computed once.

:class:`FormSigner` produces exactly what :func:`ossdrop.protocol.post_policy.encode_policy`,
:func:`~ossdrop.protocol.post_policy.post_v4_fields` and :func:`~ossdrop.protocol.post_policy.sign_policy_v1` make
of the same conditions (byte for byte: the tests compare them), but it is on the hot path of every policy request,
so it keeps the JSON of the static conditions, the callback JSON around its upload id and the dates of the current
second instead of rebuilding them each time (the V4 signing key is memoised by ``protocol.signing`` itself).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from ossdrop.protocol.post_policy import V4_ALGORITHM, sign_policy_v1, v4_credential
from ossdrop.protocol.signing import hmac_sha256_hex, v4_signing_key
from ossdrop.protocol.timefmt import iso8601

CALLBACK_BODY = (
    "upload_id={upload_id}&object=${{object}}&size=${{size}}&etag=${{etag}}&mimeType=${{mimeType}}"
    "&width=${{imageInfo.width}}&height=${{imageInfo.height}}"
)
_MARKER = "OSSDROPUPLOADIDMARKER"


@dataclass(frozen=True)
class SignedForm:
    """The form ``fields`` in order (file goes last) and, with V1 signing, the seed design's extra fields."""

    fields: dict[str, str]
    seed: dict[str, str | int]


def callback_param(url: str, upload_id: str) -> str:
    """The ``callback`` form field: base64 of the callback JSON for ``upload_id`` (reference implementation)."""
    doc = {
        "callbackUrl": url,
        "callbackBody": CALLBACK_BODY.format(upload_id=upload_id),
        "callbackBodyType": "application/x-www-form-urlencoded",
    }
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


class FormSigner:
    """Signs upload forms for one bucket, credential, callback URL and size limit (safe to share between threads).

    ``post_url`` is the form's target; ``signature_version`` is ``"v4"`` or ``"v1"``; ``upload_dir`` only feeds
    the V1 seed field ``dir``.
    """

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        access_key_id: str,
        access_key_secret: str,
        callback_url: str,
        signature_version: str,
        max_upload_bytes: int,
        upload_dir: str,
        post_url: str,
    ) -> None:
        self.region = region
        self.callback_url = callback_url
        self.access_key_id = access_key_id
        self.secret = access_key_secret
        self.v4 = signature_version != "v1"
        self.max_upload_bytes = max_upload_bytes
        self.post_url = post_url
        self.seed_dir = upload_dir.strip("/") + "/"
        self._bucket = json.dumps({"bucket": bucket}, separators=(",", ":"))
        self._callback_json = json.dumps(
            {
                "callbackUrl": callback_url,
                "callbackBody": CALLBACK_BODY.format(upload_id=_MARKER),
                "callbackBodyType": "application/x-www-form-urlencoded",
            },
            separators=(",", ":"),
        ).split(_MARKER)
        if len(self._callback_json) != 2:
            raise ValueError("the callback URL must not contain the upload id marker")
        self._second: tuple[int, str] = (-1, "")  # now, x-oss-date
        self._expire: tuple[int, str] = (-1, "")  # expiration, its JSON

    def callback(self, upload_id: str) -> str:
        """:func:`callback_param` of this signer's URL for ``upload_id``."""
        escaped = upload_id if upload_id.isascii() and upload_id.isalnum() else json.dumps(upload_id)[1:-1]
        head, tail = self._callback_json
        return base64.b64encode(f"{head}{escaped}{tail}".encode()).decode()

    def sign(
        self, key: str, upload_id: str, expire: int, size: int | None, content_type: str | None, now: float
    ) -> SignedForm:
        """The form of an upload of ``size`` bytes (any up to the limit when ``None``) to ``key``, expiring at
        ``expire``; pins the key, the size range, forbid-overwrite, the callback and ``content_type`` (if any)."""
        callback = self.callback(upload_id)
        low, high = (size, size) if size is not None else (0, self.max_upload_bytes)
        conditions = [
            self._bucket,
            f'["eq","$key",{json.dumps(key)}]',
            f'["content-length-range",{low},{high}]',
            '["eq","$x-oss-forbid-overwrite","true"]',
            f'["eq","$callback",{json.dumps(callback)}]',
        ]
        fields = {"key": key, "x-oss-forbid-overwrite": "true", "callback": callback}
        if content_type:
            conditions.append(f'["eq","$Content-Type",{json.dumps(content_type)}]')
            fields["Content-Type"] = content_type
        if not self.v4:
            policy = self._encode(expire, conditions)
            signature = sign_policy_v1(self.secret, policy)
            fields.update(OSSAccessKeyId=self.access_key_id, policy=policy, Signature=signature)
            seed: dict[str, str | int] = {"accessid": self.access_key_id, "host": self.post_url, "policy": policy}
            seed.update(signature=signature, expire=expire, callback=callback, dir=self.seed_dir)
            return SignedForm(fields, seed)
        return SignedForm(self._sign_v4(fields, conditions, expire, now), {})

    def _sign_v4(self, fields: dict[str, str], conditions: list[str], expire: int, now: float) -> dict[str, str]:
        """``fields`` plus the V4 ones; the policy binds the signature version, credential and date (§1.6)."""
        amz_date = self._amz_date(now)
        date = amz_date[:8]
        credential = v4_credential(self.access_key_id, date, self.region)
        conditions.append(f'{{"x-oss-signature-version":"{V4_ALGORITHM}"}}')
        conditions.append(f'{{"x-oss-credential":{json.dumps(credential)}}}')
        conditions.append(f'{{"x-oss-date":"{amz_date}"}}')
        policy = self._encode(expire, conditions)
        fields["policy"] = policy
        fields["x-oss-signature-version"] = V4_ALGORITHM
        fields["x-oss-credential"] = credential
        fields["x-oss-date"] = amz_date
        # v4_signing_key is memoised (the key changes once a day), so this is one HMAC per form.
        fields["x-oss-signature"] = hmac_sha256_hex(v4_signing_key(self.secret, date, self.region), policy)
        return fields

    def _encode(self, expire: int, conditions: list[str]) -> str:
        if self._expire[0] != expire:
            self._expire = (expire, json.dumps(iso8601(expire)))
        doc = f'{{"expiration":{self._expire[1]},"conditions":[{",".join(conditions)}]}}'
        return base64.b64encode(doc.encode()).decode()

    def _amz_date(self, now: float) -> str:
        second = int(now)
        if self._second[0] != second:
            self._second = (second, iso8601(now)[:19].replace("-", "").replace(":", "") + "Z")
        return self._second[1]
