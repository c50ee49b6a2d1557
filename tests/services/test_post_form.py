"""ossdrop.services.post_form: the cached form signer makes byte for byte what the protocol functions make."""

from __future__ import annotations

import base64
import json

import pytest

from ossdrop.protocol.post_policy import RawCondition, encode_policy, post_v4_fields, sign_policy_v1
from ossdrop.services.post_form import CALLBACK_BODY, FormSigner, SignedForm, callback_param

DAY = 86400
NOW = 1_700_000_000.25


def signer(version: str, *, callback_url: str = "https://app.example/api/uploads/callback") -> FormSigner:
    return FormSigner(
        bucket="bkt",
        region="cn-hangzhou",
        access_key_id="AKID",
        access_key_secret="secret-0123456789",
        callback_url=callback_url,
        signature_version=version,
        max_upload_bytes=5000,
        upload_dir="/user-dirs/",
        post_url="http://bkt.store.example",
    )


def reference(
    s: FormSigner, key: str, upload_id: str, expire: int, size: int | None, ctype: str | None, now: float
) -> SignedForm:
    """What the app made before the signer existed: the conditions list and the protocol functions."""
    callback = callback_param(s.callback_url, upload_id)
    low, high = (size, size) if size is not None else (0, s.max_upload_bytes)
    conditions: list[RawCondition] = [
        {"bucket": "bkt"},
        ["eq", "$key", key],
        ["content-length-range", low, high],
        ["eq", "$x-oss-forbid-overwrite", "true"],
        ["eq", "$callback", callback],
    ]
    fields = {"key": key, "x-oss-forbid-overwrite": "true", "callback": callback}
    if ctype:
        conditions.append(["eq", "$Content-Type", ctype])
        fields["Content-Type"] = ctype
    if not s.v4:
        policy = encode_policy(expire, conditions)
        signature = sign_policy_v1(s.secret, policy)
        auth = {"OSSAccessKeyId": "AKID", "policy": policy, "Signature": signature}
        seed: dict[str, str | int] = {"accessid": "AKID", "host": s.post_url, "policy": policy}
        seed.update(signature=signature, expire=expire, callback=callback, dir="user-dirs/")
        return SignedForm({**fields, **auth}, seed)
    auth = post_v4_fields("AKID", s.secret, s.region, expiration=expire, conditions=conditions, now=now)
    return SignedForm({**fields, **auth}, {})


@pytest.mark.parametrize("version", ["v4", "v1"])
@pytest.mark.parametrize(
    ("key", "upload_id", "size", "ctype"),
    [
        ("user-dirs/c1/ab/" + "ab" * 16 + ".jpg", "0123456789abcdef0123456789abcdef", 10, "image/jpeg"),
        ("user-dirs/c1/u/abcd1234", "abcd1234", None, None),
        ('odd "key" \\ é', 'odd"id\\é', 0, 'text/plain; charset="x\\y"'),
    ],
)
def test_signer_matches_the_protocol_functions(
    version: str, key: str, upload_id: str, size: int | None, ctype: str | None
) -> None:
    s = signer(version)
    for now in (NOW, NOW + 0.5, NOW + 1, NOW + DAY, NOW):  # cached second, next second, next day, back
        expire = int(now) + 900
        got = s.sign(key, upload_id, expire, size, ctype, now)
        want = reference(s, key, upload_id, expire, size, ctype, now)
        assert got == want
        assert list(got.fields) == list(want.fields)  # the order is the form's order


def test_callback_json() -> None:
    s = signer("v4", callback_url='http://h/cb?a="b"')
    doc = json.loads(base64.b64decode(s.callback("abcd1234")))
    assert doc["callbackUrl"] == 'http://h/cb?a="b"'
    assert doc["callbackBody"] == CALLBACK_BODY.format(upload_id="abcd1234")
    assert s.callback("x&y") == callback_param('http://h/cb?a="b"', "x&y")
