from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ossdrop.core.errors import OSSError
from ossdrop.protocol.callback import (
    FORM_TYPE,
    JSON_TYPE,
    CallbackSpec,
    decode_pub_key_url,
    generate_callback_key,
    load_private_key,
    parse_callback,
    pub_key_url_header,
    render_body,
    sign_callback,
    string_to_sign,
    verify_callback_signature,
)


def b64(doc: object) -> str:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return base64.b64encode(text.encode()).decode()


def callback_error(doc: object, var: str | None = None) -> OSSError:
    with pytest.raises(OSSError) as info:
        parse_callback(b64(doc), var)
    assert (info.value.code, info.value.status) == ("InvalidArgument", 400)
    return info.value


BASIC = {"callbackUrl": "http://app.example.com/cb?id=1", "callbackBody": "bucket=${bucket}&object=${object}"}


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return generate_callback_key(1024)


# --- parse_callback --------------------------------------------------------------------------------


def test_parse_callback_defaults() -> None:
    assert parse_callback(b64(BASIC)) == CallbackSpec(
        urls=("http://app.example.com/cb?id=1",), body="bucket=${bucket}&object=${object}", body_type=FORM_TYPE
    )


def test_parse_callback_all_fields() -> None:
    doc = {
        "callbackUrl": "121.43.113.8:23456/index.html; https://b.example.com/x",
        "callbackHost": "oss-cn-hangzhou.example.com",
        "callbackBody": '{"size":${size}}',
        "callbackBodyType": "application/json",
        "callbackSNI": True,
    }
    spec = parse_callback(b64(doc))
    assert spec is not None
    assert spec.urls == ("http://121.43.113.8:23456/index.html", "https://b.example.com/x")
    assert (spec.host, spec.body_type, spec.sni) == ("oss-cn-hangzhou.example.com", JSON_TYPE, True)


@pytest.mark.parametrize("url", ["", "  ", None])
def test_parse_callback_empty_url_means_no_callback(url: str | None) -> None:
    doc = {"callbackBody": "a"} if url is None else {"callbackUrl": url, "callbackBody": ""}
    assert parse_callback(b64(doc)) is None


def test_parse_callback_not_base64() -> None:
    with pytest.raises(OSSError) as info:
        parse_callback("%%%")
    assert info.value.message == "The callback configuration is not base64 encoded."
    assert info.value.extra == {"ArgumentName": "callback"}


@pytest.mark.parametrize("text", ["{bad json", "[1, 2]", '"str"'])
def test_parse_callback_not_json(text: str) -> None:
    assert callback_error(text).message == "The callback configuration is not json format."


def test_parse_callback_too_many_urls() -> None:
    urls = ";".join(f"http://h{i}.example.com/" for i in range(6))
    assert "count exceeds" in callback_error({**BASIC, "callbackUrl": urls}).message


def test_parse_callback_five_urls_allowed() -> None:
    urls = ";".join(f"http://h{i}.example.com/" for i in range(5))
    spec = parse_callback(b64({**BASIC, "callbackUrl": urls}))
    assert spec is not None and len(spec.urls) == 5


@pytest.mark.parametrize(
    "url", ["http://h.example.com:99999/", "http://h.example.com:abc/", "ftp://h/", "http://[::1]:80/", "http:///x"]
)
def test_parse_callback_bad_url(url: str) -> None:
    callback_error({**BASIC, "callbackUrl": url})


def test_parse_callback_empty_body() -> None:
    err = callback_error({"callbackUrl": "http://h/", "callbackBody": ""})
    assert (err.message, err.ec) == ("The callbackBody is empty.", "0007-00000011")


def test_parse_callback_bad_body_type() -> None:
    callback_error({**BASIC, "callbackBodyType": "text/plain"})


@pytest.mark.parametrize("body", ["a=${bucket", "a=${}", "a=${unknown}", "a=${x:}", "${a${bucket}}"])
def test_parse_callback_bad_placeholder(body: str) -> None:
    callback_error({**BASIC, "callbackBody": body})


def test_parse_callback_bad_sni() -> None:
    callback_error({**BASIC, "callbackSNI": "yes"})


def test_parse_callback_too_long() -> None:
    with pytest.raises(OSSError) as info:
        parse_callback("A" * (5 * 1024 + 4))
    assert info.value.code == "InvalidArgument"


def test_parse_callback_var_param() -> None:
    spec = parse_callback(b64(BASIC), b64({"x:uid": "42", "x:name": "a b"}))
    assert spec is not None and spec.custom_vars == {"x:uid": "42", "x:name": "a b"}


@pytest.mark.parametrize("var", [{"uid": "1"}, {"x:UID": "1"}, {"x:uid": 1}])
def test_parse_callback_var_rejects_bad_keys(var: dict[str, object]) -> None:
    err = callback_error(BASIC, b64(var))
    assert err.extra == {"ArgumentName": "callback-var"}


def test_parse_callback_var_not_json() -> None:
    assert callback_error(BASIC, b64("nope")).extra == {"ArgumentName": "callback-var"}


def test_parse_callback_form_fields_supply_variables() -> None:
    fields = {"key": "k", "X:UID": "7", "x:var1": "v", "x-oss-meta-a": "m"}
    spec = parse_callback(b64(BASIC), form_fields=fields)
    assert spec is not None and spec.custom_vars == {"x:uid": "7", "x:var1": "v"}


def test_parse_callback_form_and_var_param_conflict() -> None:
    with pytest.raises(OSSError) as info:
        parse_callback(b64(BASIC), b64({"x:a": "1"}), form_fields={})
    assert info.value.code == "InvalidArgument"


# --- render_body -----------------------------------------------------------------------------------

SYSTEM: dict[str, str | int] = {
    "bucket": "b",
    "object": "dir/a b&c.txt",
    "etag": '"D41D8CD98F00B204E9800998ECF8427E"',
    "size": 1024,
    "mimeType": "text/plain",
    "imageInfo.height": "",
}


def test_render_form_body_url_encodes_values() -> None:
    spec = CallbackSpec(
        urls=("http://h/",),
        body="object=${object}&size=${size}&mimeType=${mimeType}&imageInfo.height=${imageInfo.height}&uid=${x:uid}",
        custom_vars={"x:uid": "a=1&b"},
    )
    assert render_body(spec, SYSTEM) == (
        b"object=dir%2Fa%20b%26c.txt&size=1024&mimeType=text%2Fplain&imageInfo.height=&uid=a%3D1%26b"
    )


def test_render_json_body_official_template() -> None:
    spec = CallbackSpec(
        urls=("http://h/",),
        body='{"mimeType":${mimeType},"size":${size},"etag":${etag},"h":${imageInfo.height},"u":${x:uid}}',
        body_type=JSON_TYPE,
        custom_vars={"x:uid": "中"},
    )
    rendered = render_body(spec, SYSTEM)
    etag = '"\\"D41D8CD98F00B204E9800998ECF8427E\\""'
    assert rendered == ('{"mimeType":"text/plain","size":1024,"etag":' + etag + ',"h":"","u":"中"}').encode()
    assert json.loads(rendered)["size"] == 1024


def test_render_json_body_quoted_placeholders() -> None:
    spec = CallbackSpec(urls=("http://h/",), body='{"o":"${object}/\\"${size}\\"","b":${bucket}}', body_type=JSON_TYPE)
    rendered = render_body(spec, {"object": 'a"b', "size": 3, "bucket": "b"})
    assert json.loads(rendered) == {"o": 'a"b/"3"', "b": "b"}


def test_render_missing_variable_is_empty() -> None:
    spec = CallbackSpec(urls=("http://h/",), body="a=${x:none}&b=${clientIp}")
    assert render_body(spec, {}) == b"a=&b="


# --- signatures -----------------------------------------------------------------------------------


def test_string_to_sign_with_query() -> None:
    assert string_to_sign("/index%20a.php", "id=1&index=2", b"body") == b"/index a.php?id=1&index=2\nbody"


def test_string_to_sign_without_query_still_unquotes() -> None:
    assert string_to_sign("/a%2Fb", "", b"x=1") == b"/a/b\nx=1"


def test_string_to_sign_keeps_query_raw() -> None:
    assert string_to_sign("/", "a=%2F", b"") == b"/?a=%2F\n"


def test_sign_and_verify_round_trip(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    auth = sign_callback(private, "/cb", "id=1", b"bucket=b")
    assert len(base64.b64decode(auth)) == 128
    assert verify_callback_signature(public, auth, "/cb", "id=1", b"bucket=b")


def test_sign_matches_independent_md5_with_rsa(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    key = serialization.load_pem_public_key(public)
    assert isinstance(key, rsa.RSAPublicKey)
    auth = sign_callback(load_private_key(private), "/p%20q", "", b"x")
    key.verify(base64.b64decode(auth), b"/p q\nx", padding.PKCS1v15(), hashes.MD5())


@pytest.mark.parametrize(
    ("path", "query", "body"),
    [("/cb", "id=1", b"bucket=c"), ("/cb", "id=2", b"bucket=b"), ("/cc", "id=1", b"bucket=b")],
)
def test_verify_rejects_tampering(keys: tuple[bytes, bytes], path: str, query: str, body: bytes) -> None:
    private, public = keys
    auth = sign_callback(private, "/cb", "id=1", b"bucket=b")
    assert not verify_callback_signature(public, auth, path, query, body)


def test_verify_rejects_garbage_authorization(keys: tuple[bytes, bytes]) -> None:
    assert not verify_callback_signature(keys[1], "not base64!", "/", "", b"")
    assert not verify_callback_signature(keys[1], base64.b64encode(b"short").decode(), "/", "", b"")


def test_verify_rejects_non_rsa_public_key() -> None:
    with pytest.raises(ValueError):
        verify_callback_signature(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "", "/", "", b"")


def test_generate_default_key_is_2048_bits() -> None:
    private, public = generate_callback_key()
    assert load_private_key(private).key_size == 2048
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_pub_key_url_header_is_standard_base64() -> None:
    assert pub_key_url_header("http://gosspublic.alicdn.com/callback_pub_key_v1.pem") == (
        "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="
    )


def test_decode_pub_key_url_checks_prefix() -> None:
    header = "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="
    assert decode_pub_key_url(header) == "http://gosspublic.alicdn.com/callback_pub_key_v1.pem"
    assert decode_pub_key_url(pub_key_url_header("http://evil.example.com/k.pem")) is None
    assert decode_pub_key_url(pub_key_url_header("http://gosspublic.alicdn.com.evil.com/k.pem")) is None
    local = pub_key_url_header("http://127.0.0.1:9000/callback_pub_key_v1.pem")
    assert decode_pub_key_url(local, ("http://127.0.0.1:9000/",)) == "http://127.0.0.1:9000/callback_pub_key_v1.pem"
    assert decode_pub_key_url("%%") is None
