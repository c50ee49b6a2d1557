from __future__ import annotations

import base64
import json

import pytest

from ossdrop.core.errors import OSSError
from ossdrop.protocol.post_policy import (
    LengthRange,
    MatchCondition,
    Policy,
    SetCondition,
    check_policy,
    check_size,
    decode_policy,
    encode_policy,
    post_v4_fields,
    sign_policy_v1,
    sign_policy_v4,
    verify_post_signature,
)
from ossdrop.protocol.signing import v4_signing_key
from ossdrop.protocol.timefmt import parse_amz_date, parse_iso8601

SECRET = "ExampleSecretKey123"
AK = "LTAI5tExampleAK"
EXPIRATION = parse_iso8601("2024-12-03T13:12:12.000Z") or 0.0
BEFORE = EXPIRATION - 3600
V1_POLICY = (
    "eyJleHBpcmF0aW9uIjoiMjAyNC0xMi0wM1QxMzoxMjoxMi4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZWJ1Y2tldC"
    "J9LFsic3RhcnRzLXdpdGgiLCIka2V5IiwidXNlci9hbGljZS8iXSxbImNvbnRlbnQtbGVuZ3RoLXJhbmdlIiwxLDEwNDg1NzYwXV19"
)
V4_POLICY_JSON = (
    '{"expiration":"2024-12-03T13:12:12.000Z","conditions":[{"bucket":"examplebucket"},'
    '{"x-oss-signature-version":"OSS4-HMAC-SHA256"},'
    '{"x-oss-credential":"LTAI5tExampleAK/20241203/cn-hangzhou/oss/aliyun_v4_request"},'
    '{"x-oss-date":"20241203T121212Z"},["content-length-range",1,10485760]]}'
)
V4_SIGNATURE = "5516c155099379005fc64f2d783a7010af889f543815c92bc74b0a704fd4c2fc"
V4_NOW = parse_amz_date("20241203T121212Z") or 0.0


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def policy_of(*conditions: object, expiration: str = "2024-12-03T13:12:12.000Z") -> Policy:
    return decode_policy(b64(json.dumps({"expiration": expiration, "conditions": list(conditions)})))


def lookup(ak: str) -> str | None:
    return SECRET if ak == AK else None


def invalid_policy(text: str) -> OSSError:
    with pytest.raises(OSSError) as info:
        decode_policy(b64(text))
    assert info.value.code == "InvalidPolicyDocument"
    assert info.value.status == 400
    return info.value


# --- §1.5 / §1.6 vectors -------------------------------------------------------------------------


def test_encode_policy_matches_v1_vector() -> None:
    conditions = [
        {"bucket": "examplebucket"},
        ["starts-with", "$key", "user/alice/"],
        ["content-length-range", 1, 10485760],
    ]
    assert encode_policy(EXPIRATION, conditions) == V1_POLICY


def test_sign_policy_v1_vector() -> None:
    assert sign_policy_v1(SECRET, V1_POLICY) == "hotXg1RQwOjz6QWKBCH39bgSKBA="


def test_sign_policy_v4_vector() -> None:
    assert v4_signing_key(SECRET, "20241203", "cn-hangzhou").hex() == (
        "3a8719366085efdb84fbd86290604c7e36cbb670faa4106d4ee9cdf43d6a04df"
    )
    assert sign_policy_v4(SECRET, "20241203", "cn-hangzhou", b64(V4_POLICY_JSON)) == V4_SIGNATURE


def test_decode_policy_v1_vector() -> None:
    policy = decode_policy(V1_POLICY)
    assert policy.expiration == EXPIRATION
    assert policy.conditions == (
        MatchCondition("eq", "bucket", "examplebucket"),
        MatchCondition("starts-with", "key", "user/alice/"),
        LengthRange(1, 10485760),
    )
    assert policy.max_size == 10485760


def test_post_v4_fields_binds_v4_conditions_and_verifies() -> None:
    fields = post_v4_fields(
        AK, SECRET, "cn-hangzhou", expiration=EXPIRATION, conditions=[{"bucket": "examplebucket"}], now=V4_NOW
    )
    assert fields["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert fields["x-oss-credential"] == "LTAI5tExampleAK/20241203/cn-hangzhou/oss/aliyun_v4_request"
    assert fields["x-oss-date"] == "20241203T121212Z"
    assert fields["x-oss-signature"] == sign_policy_v4(SECRET, "20241203", "cn-hangzhou", fields["policy"])
    assert decode_policy(fields["policy"]).conditions == (
        MatchCondition("eq", "bucket", "examplebucket"),
        MatchCondition("eq", "x-oss-signature-version", "OSS4-HMAC-SHA256"),
        MatchCondition("eq", "x-oss-credential", fields["x-oss-credential"]),
        MatchCondition("eq", "x-oss-date", "20241203T121212Z"),
    )
    form = {"key": "k", **fields}
    assert verify_post_signature(form, lookup_secret=lookup, now=V4_NOW + 60) == AK
    check_policy(decode_policy(fields["policy"]), bucket="examplebucket", fields=form, size=1, now=V4_NOW)


def test_post_v4_fields_rejects_caller_v4_conditions() -> None:
    with pytest.raises(ValueError):
        post_v4_fields(AK, SECRET, "r", expiration=EXPIRATION, conditions=[{"X-OSS-Date": "x"}], now=V4_NOW)


# --- decode_policy errors ------------------------------------------------------------------------


def test_decode_policy_rejects_bad_base64() -> None:
    with pytest.raises(OSSError) as info:
        decode_policy("not base64!")
    assert info.value.code == "InvalidPolicyDocument"
    assert info.value.message == "Invalid Policy: Invalid Base64 Encoding."


def test_decode_policy_rejects_bad_json() -> None:
    assert invalid_policy('{"expiration": ').message == "Invalid Policy: Invalid JSON."


def test_decode_policy_rejects_top_level_duplicate() -> None:
    err = invalid_policy('{"expiration":"2024-12-03T13:12:12Z","expiration":"2030-01-01T00:00:00Z","conditions":[]}')
    assert err.message == "Invalid Policy: Invalid JSON: duplicate key 'expiration'."


def test_decode_policy_rejects_nested_duplicate() -> None:
    err = invalid_policy('{"expiration":"2024-12-03T13:12:12Z","conditions":[{"key":"a","key":"b"}]}')
    assert err.message == "Invalid Policy: Invalid JSON: duplicate key 'key'."


def test_decode_policy_requires_expiration() -> None:
    assert invalid_policy('{"conditions":[{"bucket":"b"}]}').message == "Invalid Policy: Policy missing expiration."


def test_decode_policy_rejects_bad_expiration() -> None:
    err = invalid_policy('{"expiration":"tomorrow","conditions":[{"bucket":"b"}]}')
    assert err.message.startswith("Invalid Policy: Invalid 'expiration' value")


def test_decode_policy_requires_conditions() -> None:
    err = invalid_policy('{"expiration":"2024-12-03T13:12:12Z"}')
    assert (err.message, err.ec) == ("Invalid Policy: Policy missing conditions.", "0006-00000207")


def test_decode_policy_rejects_empty_conditions() -> None:
    assert invalid_policy('{"expiration":"2024-12-03T13:12:12Z","conditions":[]}').ec == "0006-00000207"


def test_decode_policy_rejects_unknown_top_level_field() -> None:
    err = invalid_policy('{"expiration":"2024-12-03T13:12:12Z","conditions":[{"a":"b"}],"extra":1}')
    assert err.message == "Invalid Policy: Unexpected field 'extra'."


def test_decode_policy_accepts_expiration_without_millis() -> None:
    assert policy_of({"bucket": "b"}, expiration="2024-12-03T13:12:12Z").expiration == EXPIRATION


@pytest.mark.parametrize(
    ("condition", "ec"),
    [
        ({"a": "1", "b": "2"}, ""),
        ({}, ""),
        ({"key": 5}, ""),
        (7, "0006-00000222"),
        (["$key"], "0006-00000216"),
        (["starts-with", "$key"], "0006-00000216"),
        (["matches", "$key", "x"], "0006-00000216"),
        (["eq", "key", "x"], ""),
        (["eq", "$key", 5], ""),
        (["in", "$key", "x"], ""),
        (["in", "$key", ["a", 1]], ""),
        (["starts-with", "$bucket", "b"], "0006-00000222"),
        (["content-length-range", -1, 5], "0006-00000219"),
        (["content-length-range", 1.5, 5], "0006-00000219"),
        (["content-length-range", True, 5], "0006-00000219"),
        (["content-length-range", 10, 5], "0006-00000221"),
        (["content-length-range", 1], ""),
    ],
)
def test_decode_policy_rejects_malformed_condition(condition: object, ec: str) -> None:
    doc = json.dumps({"expiration": "2024-12-03T13:12:12Z", "conditions": [condition]})
    assert invalid_policy(doc).ec == ec


def test_decode_policy_simple_condition_message() -> None:
    err = invalid_policy('{"expiration":"2024-12-03T13:12:12Z","conditions":[{"a":"1","b":"2"}]}')
    assert err.message == (
        "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
    )


def test_decode_policy_parses_every_operator() -> None:
    policy = policy_of(
        ["EQ", "$Content-Type", "image/png"],
        ["in", "$x-oss-meta-a", ["1", "2"]],
        ["not-in", "$cache-control", ["no-cache"]],
        ["content-length-range", "0", "9"],
    )
    assert policy.conditions == (
        MatchCondition("eq", "content-type", "image/png"),
        SetCondition("in", "x-oss-meta-a", ("1", "2")),
        SetCondition("not-in", "cache-control", ("no-cache",)),
        LengthRange(0, 9),
    )


def test_decode_policy_unescapes_dollar() -> None:
    text = '{"expiration":"2024-12-03T13:12:12Z","conditions":[["eq","$key","a\\$b\\\\$c"]]}'
    assert decode_policy(b64(text)).conditions == (MatchCondition("eq", "key", "a$b\\$c"),)


# --- check_policy ----------------------------------------------------------------------------------


def test_check_policy_accepts_matching_form_with_extra_fields() -> None:
    policy = decode_policy(V1_POLICY)
    fields = {"key": "user/alice/a.txt", "x-oss-meta-uuid": "1", "x:var1": "v", "Content-Disposition": "inline"}
    check_policy(policy, bucket="examplebucket", fields=fields, size=5, now=BEFORE)


def test_check_policy_expired_is_checked_first() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(decode_policy(V1_POLICY), bucket="other", fields={}, size=0, now=EXPIRATION + 1)
    assert (info.value.code, info.value.status) == ("AccessDenied", 403)
    assert info.value.message == "Invalid according to Policy: Policy expired."


def test_check_policy_condition_failure_message() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(
            decode_policy(V1_POLICY), bucket="examplebucket", fields={"key": "user/eric/x"}, size=5, now=BEFORE
        )
    assert (info.value.code, info.value.status, info.value.ec) == ("AccessDenied", 403, "0006-00000227")
    assert info.value.message == (
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/alice/"]'
    )


def test_check_policy_bucket_mismatch() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(decode_policy(V1_POLICY), bucket="other", fields={"key": "user/alice/x"}, size=5, now=BEFORE)
    assert info.value.message.endswith('["eq", "$bucket", "examplebucket"]')


def test_check_policy_field_names_case_insensitive() -> None:
    policy = policy_of(["eq", "$content-type", "image/png"], {"X-OSS-Meta-Tag": "t"})
    check_policy(policy, bucket="b", fields={"Content-Type": "image/png", "x-oss-meta-tag": "t"}, size=1, now=BEFORE)


def test_check_policy_values_case_sensitive() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(policy_of({"key": "A"}), bucket="b", fields={"key": "a"}, size=1, now=BEFORE)
    assert info.value.code == "AccessDenied"


def test_check_policy_absent_field_is_empty() -> None:
    check_policy(policy_of(["starts-with", "$key", ""]), bucket="b", fields={}, size=1, now=BEFORE)
    with pytest.raises(OSSError):
        check_policy(policy_of(["eq", "$success_action_status", "201"]), bucket="b", fields={}, size=1, now=BEFORE)


def test_check_policy_in_and_not_in() -> None:
    policy = policy_of(["in", "$content-type", ["image/jpg", "image/png"]], ["not-in", "$cache-control", ["no-cache"]])
    check_policy(policy, bucket="b", fields={"content-type": "image/png"}, size=1, now=BEFORE)
    with pytest.raises(OSSError) as info:
        check_policy(policy, bucket="b", fields={"content-type": "image/gif"}, size=1, now=BEFORE)
    assert info.value.message.endswith('["in", "$content-type", ["image/jpg", "image/png"]]')
    with pytest.raises(OSSError) as info:
        check_policy(
            policy, bucket="b", fields={"content-type": "image/png", "cache-control": "no-cache"}, size=1, now=BEFORE
        )
    assert info.value.message.endswith('["not-in", "$cache-control", ["no-cache"]]')


def test_check_policy_uses_unexpanded_filename() -> None:
    # §1.4: the key is checked before ${filename} is replaced.
    policy = policy_of({"key": "user/${filename}"})
    check_policy(policy, bucket="b", fields={"key": "user/${filename}"}, size=1, now=BEFORE)
    with pytest.raises(OSSError):
        check_policy(policy, bucket="b", fields={"key": "user/photo.jpg"}, size=1, now=BEFORE)


def test_check_policy_entity_too_large() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(policy_of(["content-length-range", 1, 10]), bucket="b", fields={}, size=11, now=BEFORE)
    assert (info.value.code, info.value.status, info.value.ec) == ("EntityTooLarge", 400, "0006-00000003")


def test_check_policy_entity_too_small() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(policy_of(["content-length-range", 2, 10]), bucket="b", fields={}, size=1, now=BEFORE)
    assert (info.value.code, info.value.ec) == ("EntityTooSmall", "0006-00000004")


def test_check_policy_range_bounds_inclusive_and_skippable() -> None:
    policy = policy_of(["content-length-range", 2, 10])
    for size in (2, 10, None):
        check_policy(policy, bucket="b", fields={}, size=size, now=BEFORE)
    check_size(policy, 10)
    with pytest.raises(OSSError) as info:
        check_size(policy, 11)
    assert info.value.code == "EntityTooLarge"


def test_check_policy_rejects_case_duplicate_fields() -> None:
    with pytest.raises(OSSError) as info:
        check_policy(policy_of({"key": "a"}), bucket="b", fields={"key": "a", "KEY": "b"}, size=1, now=BEFORE)
    assert info.value.code == "InvalidArgument"


# --- verify_post_signature -------------------------------------------------------------------------


def v1_form(**overrides: str) -> dict[str, str]:
    form = {
        "key": "user/alice/a",
        "OSSAccessKeyId": AK,
        "policy": V1_POLICY,
        "Signature": "hotXg1RQwOjz6QWKBCH39bgSKBA=",
    }
    form.update(overrides)
    return form


def v4_form(**overrides: str) -> dict[str, str]:
    form = {
        "key": "k",
        "policy": b64(V4_POLICY_JSON),
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": "LTAI5tExampleAK/20241203/cn-hangzhou/oss/aliyun_v4_request",
        "x-oss-date": "20241203T121212Z",
        "x-oss-signature": V4_SIGNATURE,
    }
    form.update(overrides)
    return form


def verify_error(form: dict[str, str], now: float = V4_NOW) -> OSSError:
    with pytest.raises(OSSError) as info:
        verify_post_signature(form, lookup_secret=lookup, now=now)
    return info.value


def test_verify_v1_returns_access_key_id() -> None:
    assert verify_post_signature(v1_form(), lookup_secret=lookup, now=0) == AK


def test_verify_v1_field_names_case_insensitive() -> None:
    form = {"ossaccesskeyid": AK, "POLICY": V1_POLICY, "signature": "hotXg1RQwOjz6QWKBCH39bgSKBA="}
    assert verify_post_signature(form, lookup_secret=lookup, now=0) == AK


def test_verify_anonymous_returns_none() -> None:
    assert verify_post_signature({"key": "k", "x-oss-security-token": ""}, lookup_secret=lookup, now=0) is None


@pytest.mark.parametrize("missing", ["OSSAccessKeyId", "policy", "Signature"])
def test_verify_v1_incomplete_trio(missing: str) -> None:
    form = v1_form()
    del form[missing]
    assert (verify_error(form).code, verify_error(form).status) == ("InvalidArgument", 400)


def test_verify_v1_bad_signature() -> None:
    err = verify_error(v1_form(Signature="AAAAhotXg1RQwOjz6QWKBCH39bg="))
    assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)


def test_verify_v1_tampered_policy() -> None:
    assert verify_error(v1_form(policy=b64(V4_POLICY_JSON))).code == "SignatureDoesNotMatch"


def test_verify_unknown_access_key() -> None:
    err = verify_error(v1_form(OSSAccessKeyId="nobody"))
    assert (err.code, err.status, err.extra) == ("InvalidAccessKeyId", 403, {"OSSAccessKeyId": "nobody"})


def test_verify_v4_vector() -> None:
    assert verify_post_signature(v4_form(), lookup_secret=lookup, now=V4_NOW) == AK


def test_verify_v4_bad_signature() -> None:
    assert verify_error(v4_form(**{"x-oss-signature": "0" * 64})).code == "SignatureDoesNotMatch"


def test_verify_v4_missing_field() -> None:
    form = v4_form()
    del form["x-oss-date"]
    err = verify_error(form)
    assert (err.code, err.extra) == ("InvalidArgument", {"ArgumentName": "x-oss-date"})


def test_verify_v4_credential_must_end_with_terminator() -> None:
    err = verify_error(v4_form(**{"x-oss-credential": "LTAI5tExampleAK/20241203/cn-hangzhou/oss/aliyun_v3"}))
    assert (err.code, err.extra) == ("InvalidArgument", {"ArgumentName": "x-oss-credential"})


def test_verify_v4_date_must_match_credential() -> None:
    err = verify_error(v4_form(**{"x-oss-date": "20241204T121212Z"}))
    assert (err.code, err.extra) == ("InvalidArgument", {"ArgumentName": "x-oss-date"})


def test_verify_v4_wrong_version() -> None:
    assert verify_error(v4_form(**{"x-oss-signature-version": "OSS2"})).code == "InvalidArgument"


def test_verify_v4_rejects_mixed_v1_fields() -> None:
    assert verify_error(v4_form(OSSAccessKeyId=AK)).code == "InvalidArgument"


def test_verify_v4_time_window() -> None:
    assert verify_post_signature(v4_form(), lookup_secret=lookup, now=V4_NOW - 15 * 60) == AK
    assert verify_error(v4_form(), now=V4_NOW - 15 * 60 - 1).code == "RequestTimeTooSkewed"
    assert verify_post_signature(v4_form(), lookup_secret=lookup, now=V4_NOW + 7 * 86400) == AK
    err = verify_error(v4_form(), now=V4_NOW + 7 * 86400 + 1)
    assert (err.code, err.status) == ("AccessDenied", 403)


def test_verify_v4_unknown_access_key() -> None:
    cred = "LTAIother/20241203/cn-hangzhou/oss/aliyun_v4_request"
    assert verify_error(v4_form(**{"x-oss-credential": cred})).code == "InvalidAccessKeyId"
