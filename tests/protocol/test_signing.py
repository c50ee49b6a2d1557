"""Unit tests for the pure signature builders (oss-protocol.md §3): official and computed vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ossdrop.protocol import signing

EX_AK = "LTAI5tExampleAK"
EX_SK = "ExampleSecretKey123"
EX_KEY = "dir/photo 1.jpg"
EX_MD5 = "eB5eJF1ptWaXm4bijSPyxw=="


# --- V1 (§3.1) -------------------------------------------------------------------------------------------


def test_v1_signature_official_doc_vector() -> None:
    sts = (
        "PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\nThu, 17 Nov 2005 18:49:58 GMT\n"
        "x-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n/oss-example/nelson"
    )
    assert signing.v1_signature("OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV", sts) == "26NBxoKdsyly4EDv6inkoDft/yA="


def test_v1_string_to_sign_official_doc_vector_from_headers() -> None:
    headers = {
        "content-md5": "ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=",
        "content-type": "text/html",
        "date": "Thu, 17 Nov 2005 18:49:58 GMT",
        "x-oss-meta-author": "foo@bar.com",
        "x-oss-magic": "abracadabra",
        "host": "oss-example.oss-cn-hangzhou.aliyuncs.com",
    }
    sts = signing.v1_string_to_sign("PUT", "oss-example", "nelson", [], headers, headers["date"])
    assert sts == (
        "PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\nThu, 17 Nov 2005 18:49:58 GMT\n"
        "x-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n/oss-example/nelson"
    )


def test_v1_string_to_sign_computed_vector_raw_key_with_space() -> None:
    headers = {"content-md5": EX_MD5, "content-type": "image/jpeg", "x-oss-meta-owner": "alice"}
    sts = signing.v1_string_to_sign("PUT", "examplebucket", EX_KEY, [], headers, "Tue, 03 Dec 2024 12:12:12 GMT")
    assert sts == (
        "PUT\neB5eJF1ptWaXm4bijSPyxw==\nimage/jpeg\nTue, 03 Dec 2024 12:12:12 GMT\n"
        "x-oss-meta-owner:alice\n/examplebucket/dir/photo 1.jpg"
    )
    assert signing.v1_signature(EX_SK, sts) == "Hz38Dy/OyTEP8l2b9f/eb0+YiyU="


def test_v1_presign_vector_v2sdk_set_omits_x_oss_process() -> None:
    query = [("x-oss-process", "image/resize,w_100"), ("OSSAccessKeyId", EX_AK), ("Expires", "1733231532")]
    sts = signing.v1_string_to_sign("GET", "examplebucket", EX_KEY, query, {}, "1733231532", signing.V2SDK_SUBRESOURCES)
    assert sts == "GET\n\n\n1733231532\n/examplebucket/dir/photo 1.jpg"
    assert signing.v1_signature(EX_SK, sts) == "B7SVLR8ePqrZ5qEzXYtthQcguBk="


def test_v1_presign_oss2_set_signs_x_oss_process() -> None:
    query = [("x-oss-process", "image/resize,w_100"), ("OSSAccessKeyId", EX_AK), ("Expires", "1733231532")]
    sts = signing.v1_string_to_sign("GET", "examplebucket", EX_KEY, query, {}, "1733231532")
    assert sts == "GET\n\n\n1733231532\n/examplebucket/dir/photo 1.jpg?x-oss-process=image/resize,w_100"


@pytest.mark.parametrize(
    ("bucket", "key", "query", "expected"),
    [
        (None, None, [], "/"),
        (None, None, [("prefix", "a"), ("regionList", "")], "/?regionList"),
        ("b", None, [], "/b/"),
        ("b", "", [("acl", "")], "/b/?acl"),
        ("b", "k", [("uploadId", "u 1"), ("partNumber", "3"), ("max-parts", "5")], "/b/k?partNumber=3&uploadId=u 1"),
        ("b", "a/b c+d%e", [("uploads", "")], "/b/a/b c+d%e?uploads"),
        ("b", None, [("prefix", "p"), ("delimiter", "/"), ("encoding-type", "url"), ("list-type", "2")], "/b/"),
    ],
)
def test_v1_canonical_resource_levels_and_subresources(
    bucket: str | None, key: str | None, query: list[tuple[str, str]], expected: str
) -> None:
    assert signing.v1_canonical_resource(bucket, key, query) == expected


def test_v1_canonical_headers_sorted_trimmed_lowercase_only_x_oss() -> None:
    headers = {"x-oss-meta-b": " 2 ", "X-OSS-Meta-A": "1", "content-type": "t", "date": "d"}
    assert signing.v1_canonical_headers(headers) == "x-oss-meta-a:1\nx-oss-meta-b:2\n"


def test_v1_signature_covers_utf8_bytes() -> None:
    # §12: a non-ASCII meta value is signed over its UTF-8 bytes.
    sts = signing.v1_string_to_sign("PUT", "b", "k", [], {"x-oss-meta-n": "张三"}, "D")
    wire = b"PUT\n\n\nD\nx-oss-meta-n:\xe5\xbc\xa0\xe4\xb8\x89\n/b/k"
    assert sts.encode("utf-8") == wire
    expected = base64.b64encode(hmac.new(b"sk", wire, hashlib.sha1).digest()).decode()
    assert signing.v1_signature("sk", sts) == expected


def test_subresource_sets_match_the_installed_sdks() -> None:
    import oss2.auth
    from alibabacloud_oss_v2.signer.v1 import SignerV1

    assert oss2.auth.ProviderAuth._subresource_key_set == signing.OSS2_SUBRESOURCES
    assert SignerV1._subresource_key_set <= signing.V2SDK_SUBRESOURCES
    assert "x-oss-process" in signing.OSS2_SUBRESOURCES
    assert "x-oss-process" not in signing.V2SDK_SUBRESOURCES


# --- V4 (§3.2, §3.3) -------------------------------------------------------------------------------------

OFFICIAL_V4_QUERY = [
    ("param1", "value1"),
    ("+param1", "value3"),
    ("|param1", "value4"),
    ("+param2", ""),
    ("|param2", ""),
    ("param2", ""),
]
OFFICIAL_V4_HEADERS = {
    "x-oss-head1": "value",
    "abc": "value",
    "zabc": "value",
    "xyz": "value",
    "content-type": "text/plain",
    "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
    "x-oss-date": "20231216T162057Z",
}


def test_uri_encode_rfc3986_upper_hex() -> None:
    assert signing.uri_encode("a-_.~Z9 /+%é", keep_slash=True) == "a-_.~Z9%20/%2B%25%C3%A9"
    assert signing.uri_encode("a/b", keep_slash=False) == "a%2Fb"


def test_v4_canonical_query_official_vector() -> None:
    assert signing.v4_canonical_query(OFFICIAL_V4_QUERY) == (
        "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2"
    )


def test_v4_canonical_uri_official_vector_and_levels() -> None:
    assert signing.v4_canonical_uri("bucket", "1234+-/123/1.txt") == "/bucket/1234%2B-/123/1.txt"
    assert signing.v4_canonical_uri("bucket", None) == "/bucket/"
    assert signing.v4_canonical_uri(None, None) == "/"
    assert signing.v4_canonical_uri("b", "目录/a b") == "/b/%E7%9B%AE%E5%BD%95/a%20b"


def test_v4_signature_official_test_auth_header_vector() -> None:
    canonical = signing.v4_canonical_request(
        "PUT", "bucket", "1234+-/123/1.txt", OFFICIAL_V4_QUERY, OFFICIAL_V4_HEADERS
    )
    assert canonical == (
        "PUT\n/bucket/1234%2B-/123/1.txt\n"
        "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\n"
        "content-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\n"
        "x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
    )
    sts = signing.v4_string_to_sign("20231216T162057Z", signing.v4_scope("20231216", "cn-hangzhou"), canonical)
    assert signing.v4_signature("sk", "20231216", "cn-hangzhou", "oss", sts) == (
        "e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
    )


def test_v4_signature_computed_put_vector() -> None:
    headers = {
        "content-type": "image/jpeg",
        "content-md5": EX_MD5,
        "x-oss-meta-owner": "alice",
        "x-oss-date": "20241203T121212Z",
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "date": "Tue, 03 Dec 2024 12:12:12 GMT",
    }
    canonical = signing.v4_canonical_request("PUT", "examplebucket", EX_KEY, [], headers)
    assert canonical == (
        "PUT\n/examplebucket/dir/photo%201.jpg\n\ncontent-md5:eB5eJF1ptWaXm4bijSPyxw==\n"
        "content-type:image/jpeg\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20241203T121212Z\n"
        "x-oss-meta-owner:alice\n\n\nUNSIGNED-PAYLOAD"
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    assert digest.startswith("4d4a9e3a")
    assert digest.endswith("e4a9648a")
    sts = signing.v4_string_to_sign("20241203T121212Z", "20241203/cn-hangzhou/oss/aliyun_v4_request", canonical)
    assert signing.v4_signature(EX_SK, "20241203", "cn-hangzhou", "oss", sts) == (
        "64b1ae418632628e455d9d488f04c6ef25c8e1515de5f4b22a866c3173303bdc"
    )


def test_v4_presign_computed_vector() -> None:
    query = [
        ("x-oss-process", "image/resize,w_100"),
        ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
        ("x-oss-date", "20241203T121212Z"),
        ("x-oss-expires", "3600"),
        ("x-oss-credential", f"{EX_AK}/20241203/cn-hangzhou/oss/aliyun_v4_request"),
    ]
    assert signing.v4_canonical_query(query) == (
        "x-oss-credential=LTAI5tExampleAK%2F20241203%2Fcn-hangzhou%2Foss%2Faliyun_v4_request"
        "&x-oss-date=20241203T121212Z&x-oss-expires=3600&x-oss-process=image%2Fresize%2Cw_100"
        "&x-oss-signature-version=OSS4-HMAC-SHA256"
    )
    canonical = signing.v4_canonical_request("GET", "examplebucket", EX_KEY, query, {})
    sts = signing.v4_string_to_sign("20241203T121212Z", "20241203/cn-hangzhou/oss/aliyun_v4_request", canonical)
    assert signing.v4_signature(EX_SK, "20241203", "cn-hangzhou", "oss", sts) == (
        "22f77fd87409774e8413abd9fe122bc0adc8b40511570750a0ac561e52ede87f"
    )


def test_v4_canonical_headers_include_additional_only_when_named() -> None:
    headers = {"host": "h", "range": "bytes=0-1", "content-md5": "m", "x-oss-a": " v ", "user-agent": "u"}
    assert signing.v4_canonical_headers(headers) == "content-md5:m\nx-oss-a:v\n"
    assert signing.v4_canonical_headers(headers, ["Range", "host"]) == (
        "content-md5:m\nhost:h\nrange:bytes=0-1\nx-oss-a:v\n"
    )


def test_v4_additional_headers_line_is_order_independent() -> None:
    # §3.2: oss2 sorts by first character only; both orders must sign the same line.
    assert signing.v4_additional_headers_line(["range", "host"]) == "host;range"
    assert signing.v4_additional_headers_line(["Host", "range", "host"]) == "host;range"
    assert signing.v4_additional_headers_line([]) == ""


def test_v4_canonical_request_uses_payload_header_and_additional_line() -> None:
    headers = {"x-oss-content-sha256": "abc123", "host": "h"}
    canonical = signing.v4_canonical_request("get", "b", "k", [("acl", "")], headers, ["host"])
    assert canonical == "GET\n/b/k\nacl\nhost:h\nx-oss-content-sha256:abc123\n\nhost\nabc123"


def test_v4_signing_key_chain_product_matters() -> None:
    oss = signing.v4_signing_key("sk", "20231216", "cn-hangzhou", "oss")
    cloudbox = signing.v4_signing_key("sk", "20231216", "cn-hangzhou", "oss-cloudbox")
    assert oss.hex() != cloudbox.hex()
    assert len(oss) == 32


def test_constant_time_equal() -> None:
    assert signing.constant_time_equal("abc", "abc")
    assert not signing.constant_time_equal("abc", "abd")
    assert not signing.constant_time_equal("abc", "ab")
