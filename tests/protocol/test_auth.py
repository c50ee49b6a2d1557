"""Tests for :func:`ossdrop.protocol.auth.authenticate`: spec vectors (oss-protocol.md §3), parsing, errors."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import alibabacloud_oss_v2 as oss
import oss2
import pytest
from alibabacloud_oss_v2.signer.v4 import SignerV4

from ossdrop.core.errors import OSSError
from ossdrop.protocol import auth, signing
from ossdrop.protocol.auth import RequestToVerify, authenticate

EX_AK = "LTAI5tExampleAK"
EX_SK = "ExampleSecretKey123"
EX_KEY = "dir/photo 1.jpg"
EX_MD5 = "eB5eJF1ptWaXm4bijSPyxw=="
T_20241203 = 1733227932.0  # 2024-12-03T12:12:12Z
SECRETS = {EX_AK: EX_SK, "ak": "sk"}


def lookup(ak: str) -> str | None:
    return SECRETS.get(ak)


def req(
    method: str = "GET",
    bucket: str | None = "examplebucket",
    key: str | None = EX_KEY,
    query: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> RequestToVerify:
    return RequestToVerify(method, bucket, key, list(query), dict(headers or {}))


def check(r: RequestToVerify, now: float = T_20241203) -> str | None:
    return authenticate(r, lookup_secret=lookup, now=now)


def error_of(r: RequestToVerify, now: float = T_20241203) -> OSSError:
    with pytest.raises(OSSError) as info:
        check(r, now)
    return info.value


def v1_put_headers(signature: str = "Hz38Dy/OyTEP8l2b9f/eb0+YiyU=") -> dict[str, str]:
    return {
        "content-md5": EX_MD5,
        "content-type": "image/jpeg",
        "date": "Tue, 03 Dec 2024 12:12:12 GMT",
        "x-oss-meta-owner": "alice",
        "authorization": f"OSS {EX_AK}:{signature}",
    }


V4_PUT_SIG = "64b1ae418632628e455d9d488f04c6ef25c8e1515de5f4b22a866c3173303bdc"
V4_CRED = f"{EX_AK}/20241203/cn-hangzhou/oss/aliyun_v4_request"


def v4_put_headers(authorization: str) -> dict[str, str]:
    return {
        "content-md5": EX_MD5,
        "content-type": "image/jpeg",
        "date": "Tue, 03 Dec 2024 12:12:12 GMT",
        "x-oss-date": "20241203T121212Z",
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "x-oss-meta-owner": "alice",
        "authorization": authorization,
    }


V4_PRESIGN_QUERY = [
    ("x-oss-process", "image/resize,w_100"),
    ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
    ("x-oss-date", "20241203T121212Z"),
    ("x-oss-expires", "3600"),
    ("x-oss-credential", V4_CRED),
    ("x-oss-signature", "22f77fd87409774e8413abd9fe122bc0adc8b40511570750a0ac561e52ede87f"),
]
V1_PRESIGN_QUERY = [
    ("x-oss-process", "image/resize,w_100"),
    ("OSSAccessKeyId", EX_AK),
    ("Expires", "1733231532"),
    ("Signature", "B7SVLR8ePqrZ5qEzXYtthQcguBk="),
]


# --- spec vectors through authenticate -------------------------------------------------------------------


def test_authenticate_anonymous_returns_none() -> None:
    assert check(req(query=[("prefix", "a"), ("Expires", "1")], headers={"date": "x"})) is None


def test_authenticate_v1_header_computed_vector() -> None:
    assert check(req("PUT", headers=v1_put_headers())) == EX_AK


def test_authenticate_v1_header_official_doc_vector() -> None:
    headers = {
        "content-md5": "ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=",
        "content-type": "text/html",
        "date": "Thu, 17 Nov 2005 18:49:58 GMT",
        "x-oss-magic": "abracadabra",
        "x-oss-meta-author": "foo@bar.com",
        "authorization": "OSS 44CF9590006BF252F707:26NBxoKdsyly4EDv6inkoDft/yA=",
    }
    r = req("PUT", "oss-example", "nelson", headers=headers)
    secrets = {"44CF9590006BF252F707": "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV"}
    now = 1132253398.0  # Thu, 17 Nov 2005 18:49:58 GMT
    assert authenticate(r, lookup_secret=secrets.get, now=now) == "44CF9590006BF252F707"


def test_authenticate_v4_header_v2sdk_format() -> None:
    authorization = f"OSS4-HMAC-SHA256 Credential={V4_CRED},Signature={V4_PUT_SIG}"
    assert check(req("PUT", headers=v4_put_headers(authorization))) == EX_AK


def test_authenticate_v4_header_oss2_format_with_spaces() -> None:
    authorization = f"OSS4-HMAC-SHA256 Credential={V4_CRED}, Signature={V4_PUT_SIG}"
    assert check(req("PUT", headers=v4_put_headers(authorization))) == EX_AK


def test_authenticate_v4_official_test_auth_header_vector() -> None:
    query = [("param1", "value1"), ("+param1", "value3"), ("|param1", "value4"), ("+param2", "")]
    query += [("|param2", ""), ("param2", "")]
    sig = "e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
    headers = {
        "x-oss-head1": "value",
        "abc": "value",
        "zabc": "value",
        "xyz": "value",
        "content-type": "text/plain",
        "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
        "x-oss-date": "20231216T162057Z",
        "authorization": f"OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature={sig}",
    }
    assert check(req("PUT", "bucket", "1234+-/123/1.txt", query, headers), now=1702743657.0) == "ak"


def test_authenticate_v4_additional_headers_both_orders_and_formats() -> None:
    headers = v4_put_headers("")
    headers.update({"range": "bytes=0-9", "host": "example.com"})
    canonical = signing.v4_canonical_request("PUT", "examplebucket", EX_KEY, [], headers, ["host", "range"])
    assert "\nhost;range\n" in canonical
    sts = signing.v4_string_to_sign("20241203T121212Z", "20241203/cn-hangzhou/oss/aliyun_v4_request", canonical)
    sig = signing.v4_signature(EX_SK, "20241203", "cn-hangzhou", "oss", sts)
    for value in (
        f"OSS4-HMAC-SHA256 Credential={V4_CRED},AdditionalHeaders=host;range,Signature={sig}",
        f"OSS4-HMAC-SHA256 Credential={V4_CRED}, Signature={sig}, AdditionalHeaders=range;host",
    ):
        headers["authorization"] = value
        assert check(req("PUT", headers=headers)) == EX_AK
    headers["authorization"] = f"OSS4-HMAC-SHA256 Credential={V4_CRED},Signature={sig}"
    assert error_of(req("PUT", headers=headers)).code == "SignatureDoesNotMatch"


def test_authenticate_v1_presign_vector_v2sdk_set_fallback() -> None:
    assert check(req(query=V1_PRESIGN_QUERY)) == EX_AK


def test_authenticate_v4_presign_vector() -> None:
    assert check(req(query=V4_PRESIGN_QUERY)) == EX_AK


# --- errors ----------------------------------------------------------------------------------------------


def test_authenticate_v1_signature_mismatch_reports_string_to_sign() -> None:
    err = error_of(req("PUT", headers=v1_put_headers("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")))
    assert err.code == "SignatureDoesNotMatch"
    assert err.status == 403
    assert err.extra["SignatureProvided"] == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert err.extra["OSSAccessKeyId"] == EX_AK
    assert err.extra["StringToSign"] == (
        "PUT\neB5eJF1ptWaXm4bijSPyxw==\nimage/jpeg\nTue, 03 Dec 2024 12:12:12 GMT\n"
        "x-oss-meta-owner:alice\n/examplebucket/dir/photo 1.jpg"
    )
    assert err.extra["StringToSignBytes"].startswith("50 55 54 0a")


def test_authenticate_v4_mismatch_reports_canonical_request() -> None:
    headers = v4_put_headers(f"OSS4-HMAC-SHA256 Credential={V4_CRED},Signature={V4_PUT_SIG}")
    headers["x-oss-meta-owner"] = "bob"
    err = error_of(req("PUT", headers=headers))
    assert err.code == "SignatureDoesNotMatch"
    assert err.extra["CanonicalRequest"].startswith("PUT\n/examplebucket/dir/photo%201.jpg\n")
    assert err.extra["StringToSign"].startswith("OSS4-HMAC-SHA256\n20241203T121212Z\n20241203/cn-hangzhou/oss/")


def test_authenticate_unknown_access_key() -> None:
    headers = v1_put_headers()
    headers["authorization"] = "OSS nobody:Hz38Dy/OyTEP8l2b9f/eb0+YiyU="
    err = error_of(req("PUT", headers=headers))
    assert (err.code, err.status, err.extra["OSSAccessKeyId"]) == ("InvalidAccessKeyId", 403, "nobody")


def test_authenticate_v1_skewed_date() -> None:
    err = error_of(req("PUT", headers=v1_put_headers()), now=T_20241203 + 901)
    assert (err.code, err.status) == ("RequestTimeTooSkewed", 403)
    assert err.extra["RequestTime"] == "Tue, 03 Dec 2024 12:12:12 GMT"
    assert err.extra["MaxAllowedSkewMilliseconds"] == "900000"
    assert check(req("PUT", headers=v1_put_headers()), now=T_20241203 - 900) == EX_AK


def test_authenticate_v4_skewed_x_oss_date() -> None:
    headers = v4_put_headers(f"OSS4-HMAC-SHA256 Credential={V4_CRED},Signature={V4_PUT_SIG}")
    assert error_of(req("PUT", headers=headers), now=T_20241203 - 1000).code == "RequestTimeTooSkewed"


def test_authenticate_v1_missing_date_is_access_denied() -> None:
    headers = v1_put_headers()
    del headers["date"]
    assert error_of(req("PUT", headers=headers)).code == "AccessDenied"


def test_authenticate_v1_presign_expired() -> None:
    assert check(req(query=V1_PRESIGN_QUERY), now=1733231532.0) == EX_AK
    err = error_of(req(query=V1_PRESIGN_QUERY), now=1733231533.0)
    assert (err.code, err.status, err.message) == ("AccessDenied", 403, "Request has expired.")


def test_authenticate_v4_presign_expired() -> None:
    assert check(req(query=V4_PRESIGN_QUERY), now=T_20241203 + 3600) == EX_AK
    err = error_of(req(query=V4_PRESIGN_QUERY), now=T_20241203 + 3601)
    assert (err.code, err.message) == ("AccessDenied", "Request has expired.")


def test_authenticate_v4_presign_tampered_query_value() -> None:
    query = [(k, "image/resize,w_200" if k == "x-oss-process" else v) for k, v in V4_PRESIGN_QUERY]
    assert error_of(req(query=query)).code == "SignatureDoesNotMatch"


def test_authenticate_v4_presign_rejects_more_than_seven_days() -> None:
    query = [(k, "604801" if k == "x-oss-expires" else v) for k, v in V4_PRESIGN_QUERY]
    assert error_of(req(query=query)).code == "InvalidArgument"


def test_authenticate_v4_scope_date_must_match_x_oss_date() -> None:
    cred = f"{EX_AK}/20241204/cn-hangzhou/oss/aliyun_v4_request"
    headers = v4_put_headers(f"OSS4-HMAC-SHA256 Credential={cred},Signature={V4_PUT_SIG}")
    assert error_of(req("PUT", headers=headers)).code == "InvalidArgument"


def test_authenticate_rejects_url_signature_plus_authorization_header() -> None:
    err = error_of(req("PUT", query=V1_PRESIGN_QUERY, headers=v1_put_headers()))
    assert (err.code, err.status) == ("InvalidArgument", 400)


def test_authenticate_rejects_v1_and_v4_url_signatures_together() -> None:
    assert error_of(req(query=V1_PRESIGN_QUERY + V4_PRESIGN_QUERY)).code == "InvalidArgument"


@pytest.mark.parametrize(
    "authorization",
    [
        "OSS",
        "OSS ak",
        "OSS :sig",
        "Bearer token",
        "OSS2 AccessKeyId:ak,Signature:x",
        "OSS4-HMAC-SHA256 Signature=abc",
        "OSS4-HMAC-SHA256 Credential=ak/20241203/cn-hangzhou/oss/aliyun_v4_request",
        "OSS4-HMAC-SHA256 Credential=ak/20241203/cn-hangzhou/oss/wrong,Signature=abc",
        "OSS4-HMAC-SHA256 Credential=ak/2024123/cn-hangzhou/oss/aliyun_v4_request,Signature=abc",
        "OSS4-HMAC-SHA256 Credential=ak/20241203/cn-hangzhou/aliyun_v4_request,Signature=abc",
        "OSS4-HMAC-SHA256 Credential=ak/20241203/cn-hangzhou/oss/aliyun_v4_request,Signature=a,Signature=b",
        "OSS4-HMAC-SHA256 Credential=ak/20241203/cn-hangzhou/oss/aliyun_v4_request,Bogus=1,Signature=abc",
    ],
)
def test_authenticate_malformed_authorization_is_invalid_argument(authorization: str) -> None:
    headers = {"date": "Tue, 03 Dec 2024 12:12:12 GMT", "x-oss-date": "20241203T121212Z"}
    headers["authorization"] = authorization
    assert error_of(req(headers=headers)).code == "InvalidArgument"


@pytest.mark.parametrize(
    "query",
    [
        [("OSSAccessKeyId", EX_AK), ("Signature", "x")],
        [("OSSAccessKeyId", EX_AK), ("Expires", "soon"), ("Signature", "x")],
        [("OSSAccessKeyId", EX_AK), ("Expires", "\u00b2"), ("Signature", "x")],
        [("x-oss-signature-version", "OSS2"), ("x-oss-signature", "x")],
        [("x-oss-signature-version", "OSS4-HMAC-SHA256"), ("x-oss-credential", V4_CRED)],
    ],
)
def test_authenticate_malformed_presign_query_is_invalid_argument(query: list[tuple[str, str]]) -> None:
    assert error_of(req(query=query)).code == "InvalidArgument"


# --- parsing ---------------------------------------------------------------------------------------------


def test_parse_authorization_v4_both_layouts_agree() -> None:
    a = auth.parse_authorization(
        f"OSS4-HMAC-SHA256 Credential={V4_CRED},AdditionalHeaders=host;range,Signature=abc", {}, []
    )
    b = auth.parse_authorization(
        f"OSS4-HMAC-SHA256 Credential={V4_CRED}, Signature=abc, AdditionalHeaders=Range;host", {}, []
    )
    assert isinstance(a, auth.V4Signature)
    assert isinstance(b, auth.V4Signature)
    assert a.credential == b.credential == auth.V4Credential(EX_AK, "20241203", "cn-hangzhou", "oss")
    assert a.signature == b.signature == "abc"
    assert sorted(a.additional_headers) == sorted(b.additional_headers) == ["host", "range"]
    assert a.credential.scope == "20241203/cn-hangzhou/oss/aliyun_v4_request"


def test_parse_authorization_v1_prefers_x_oss_date() -> None:
    parsed = auth.parse_authorization("OSS ak:sig=", {"date": "D1", "x-oss-date": "D2"}, [])
    assert parsed == auth.V1Signature("ak", "sig=", "D2", presigned=False)


def test_parse_v4_query_excludes_only_the_signature() -> None:
    parsed = auth.parse_v4_query(V4_PRESIGN_QUERY)
    assert [k for k, _ in parsed.query] == [k for k, _ in V4_PRESIGN_QUERY[:-1]]
    assert parsed.presigned
    assert parsed.timestamp == "20241203T121212Z"


def test_v4_cloudbox_product_comes_from_scope() -> None:
    headers = {"x-oss-date": "20241203T121212Z", "x-oss-content-sha256": "UNSIGNED-PAYLOAD"}
    canonical = signing.v4_canonical_request("GET", "b", "k", [], headers)
    scope = "20241203/cb-123/oss-cloudbox/aliyun_v4_request"
    sts = signing.v4_string_to_sign("20241203T121212Z", scope, canonical)
    sig = signing.v4_signature(EX_SK, "20241203", "cb-123", "oss-cloudbox", sts)
    headers["authorization"] = f"OSS4-HMAC-SHA256 Credential={EX_AK}/{scope},Signature={sig}"
    assert check(req("GET", "b", "k", headers=headers)) == EX_AK


# --- requests signed by the real SDKs, captured on 127.0.0.1 (§4, §10) ------------------------------------

SDK_AK = "LTAI5tSdkTestAK"
SDK_SK = "SdkTestSecret+/="
REGION = "cn-hangzhou"
BUCKET = "my-bucket"
SDK_SECRETS = {SDK_AK: SDK_SK}
FLAVOURS = ["oss2-v1", "oss2-v4", "v2-v1", "v2-v4"]
KEYS = ["目录/файл ü.txt", "dir/a b+c%d.txt", "a%2Fb+%20c/ /x", "plain.txt"]


@dataclass
class Captured:
    method: str
    target: str
    headers: list[tuple[str, str]]


class _CaptureHandler(http.server.BaseHTTPRequestHandler):
    """Records each request exactly as it arrived and answers 404 NoSuchKey so the SDK stops there."""

    protocol_version = "HTTP/1.1"
    server: _CaptureServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        # http.server decodes header bytes as latin-1; recover the UTF-8 text the HTTP layer would see (§12).
        headers = [(k, v.encode("latin-1").decode("utf-8")) for k, v in self.headers.raw_items()]
        self.server.captured.append(Captured(self.command, self.path, headers))
        body = (
            b"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>NoSuchKey</Code><Message>m</Message>"
            b"<RequestId>0123456789abcdef01234567</RequestId></Error>"
        )
        self.send_response(404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-oss-request-id", "0123456789abcdef01234567")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CaptureServer(http.server.ThreadingHTTPServer):
    captured: list[Captured]


@pytest.fixture(scope="module")
def capture_server() -> Iterator[_CaptureServer]:
    server = _CaptureServer(("127.0.0.1", 0), _CaptureHandler)
    server.captured = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def endpoint(server: _CaptureServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def oss2_bucket(server: _CaptureServer, version: str) -> oss2.Bucket:
    if version == "v1":
        return oss2.Bucket(oss2.Auth(SDK_AK, SDK_SK), endpoint(server), BUCKET)
    return oss2.Bucket(oss2.AuthV4(SDK_AK, SDK_SK), endpoint(server), BUCKET, region=REGION)


def v2_client(server: _CaptureServer, version: str, token: str | None = None) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(SDK_AK, SDK_SK, token)
    cfg.region = REGION
    cfg.endpoint = endpoint(server)
    cfg.signature_version = version
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)


def wire_request(method: str, target: str, headers: Sequence[tuple[str, str]]) -> RequestToVerify:
    """Decode a request target the way the server does (§4): path with plain unquote, query plus-decoded."""
    parts = urlsplit(target)
    bucket_part, _, key_part = parts.path[1:].partition("/")
    return RequestToVerify(
        method=method,
        bucket=unquote(bucket_part) or None,
        key=unquote(key_part) if key_part else None,
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers={name.lower(): value for name, value in headers},
    )


def sdk_call(server: _CaptureServer, call: Callable[[], object]) -> RequestToVerify:
    before = len(server.captured)
    with contextlib.suppress(oss2.exceptions.OssError, oss.exceptions.OperationError):
        call()
    assert len(server.captured) == before + 1
    got = server.captured[-1]
    return wire_request(got.method, got.target, got.headers)


def sdk_auth(r: RequestToVerify, now: float | None = None, secret: str = SDK_SK) -> str | None:
    at = time.time() if now is None else now
    return authenticate(r, lookup_secret={SDK_AK: secret}.get, now=at)


def sdk_error(r: RequestToVerify, now: float | None = None, secret: str = SDK_SK) -> OSSError:
    with pytest.raises(OSSError) as info:
        sdk_auth(r, now, secret)
    return info.value


def _oss2_op(bucket: oss2.Bucket, op: str, key: str) -> Callable[[], object]:
    return {
        "put": lambda: bucket.put_object(
            key, b"hello", headers={"Content-Type": "text/plain", "x-oss-meta-author": "张三 ü".encode()}
        ),
        "get_process": lambda: bucket.get_object(key, process="image/resize,w_100"),
        "list": lambda: bucket.list_objects_v2(prefix="dir/ a+b", delimiter="/", encoding_type="url"),
        "initiate": lambda: bucket.init_multipart_upload(key),
        "upload_part": lambda: bucket.upload_part(key, "UP/1+2 x", 3, b"part"),
        "object_acl": lambda: bucket.get_object_acl(key),
        "bucket_acl": lambda: bucket.get_bucket_acl(),
    }[op]


def _v2_op(client: oss.Client, op: str, key: str) -> Callable[[], object]:
    # The V2 SDK sends header values through http.client as latin-1, so its metadata stays ASCII here.
    return {
        "put": lambda: client.put_object(
            oss.PutObjectRequest(
                bucket=BUCKET, key=key, body=b"hello", content_type="text/plain", metadata={"author": "alice"}
            )
        ),
        "get_process": lambda: client.get_object(
            oss.GetObjectRequest(bucket=BUCKET, key=key, process="image/resize,w_100")
        ),
        "list": lambda: client.list_objects_v2(
            oss.ListObjectsV2Request(bucket=BUCKET, prefix="dir/ a+b", delimiter="/", encoding_type="url")
        ),
        "initiate": lambda: client.initiate_multipart_upload(
            oss.InitiateMultipartUploadRequest(bucket=BUCKET, key=key)
        ),
        "upload_part": lambda: client.upload_part(
            oss.UploadPartRequest(bucket=BUCKET, key=key, upload_id="UP/1+2 x", part_number=3, body=b"part")
        ),
        "object_acl": lambda: client.get_object_acl(oss.GetObjectAclRequest(bucket=BUCKET, key=key)),
        "bucket_acl": lambda: client.get_bucket_acl(oss.GetBucketAclRequest(bucket=BUCKET)),
    }[op]


def sdk_request(server: _CaptureServer, flavour: str, op: str, key: str = KEYS[0]) -> RequestToVerify:
    sdk, version = flavour.split("-")
    if sdk == "oss2":
        return sdk_call(server, _oss2_op(oss2_bucket(server, version), op, key))
    return sdk_call(server, _v2_op(v2_client(server, version), op, key))


OPS = ["put", "get_process", "list", "initiate", "upload_part", "object_acl", "bucket_acl"]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("op", OPS)
def test_sdk_header_signed_request_verifies(capture_server: _CaptureServer, flavour: str, op: str) -> None:
    r = sdk_request(capture_server, flavour, op)
    assert sdk_auth(r) == SDK_AK


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("key", KEYS)
def test_sdk_put_with_awkward_keys_verifies(capture_server: _CaptureServer, flavour: str, key: str) -> None:
    r = sdk_request(capture_server, flavour, "put", key)
    assert r.key == key
    assert sdk_auth(r) == SDK_AK


def test_sdk_oss2_put_carries_utf8_meta_on_the_wire(capture_server: _CaptureServer) -> None:
    r = sdk_request(capture_server, "oss2-v1", "put")
    assert r.headers["x-oss-meta-author"] == "张三 ü"
    assert r.key == KEYS[0]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sdk_tampered_requests_do_not_match(capture_server: _CaptureServer, flavour: str) -> None:
    put = sdk_request(capture_server, flavour, "put")
    other_meta = replace(put, headers={**put.headers, "x-oss-meta-author": "mallory"})
    other_type = replace(put, headers={**put.headers, "content-type": "text/html"})
    other_key = replace(put, key=put.key + "x" if put.key else "x")
    for tampered in (other_meta, other_type, other_key):
        assert sdk_error(tampered).code == "SignatureDoesNotMatch"
    assert sdk_error(put, secret="wrong-secret").code == "SignatureDoesNotMatch"
    part = sdk_request(capture_server, flavour, "upload_part")
    other_upload = replace(part, query=[(k, "UP/1+2 y" if k == "uploadId" else v) for k, v in part.query])
    assert sdk_error(other_upload).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("flavour", ["oss2-v4", "v2-v4"])
def test_sdk_v4_signs_every_query_parameter(capture_server: _CaptureServer, flavour: str) -> None:
    r = sdk_request(capture_server, flavour, "list")
    tampered = replace(r, query=[(k, "dir/ a+c" if k == "prefix" else v) for k, v in r.query])
    assert sdk_error(tampered).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("flavour", ["oss2-v1", "v2-v1"])
def test_sdk_v1_does_not_sign_listing_parameters(capture_server: _CaptureServer, flavour: str) -> None:
    # §3.1: prefix/delimiter/encoding-type are never part of the V1 CanonicalizedResource.
    r = sdk_request(capture_server, flavour, "list")
    tampered = replace(r, query=[(k, "other/" if k == "prefix" else v) for k, v in r.query])
    assert sdk_auth(tampered) == SDK_AK


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sdk_unknown_key_and_skew(capture_server: _CaptureServer, flavour: str) -> None:
    r = sdk_request(capture_server, flavour, "put")
    with pytest.raises(OSSError) as info:
        authenticate(r, lookup_secret=lambda ak: None, now=time.time())
    assert info.value.code == "InvalidAccessKeyId"
    assert sdk_error(r, now=time.time() + 3600).code == "RequestTimeTooSkewed"
    assert sdk_error(r, now=time.time() - 3600).code == "RequestTimeTooSkewed"


def v2_signer_v4(method: str, key: str, headers: dict[str, str], *, query: bool) -> RequestToVerify:
    """Sign with the V2 SDK's SignerV4 directly: its Client does not pass ``additional_headers`` on."""
    url = f"http://127.0.0.1/{BUCKET}/{quote(key)}?acl="
    request = oss.types.HttpRequest(method, url, headers=dict(headers))
    ctx = oss.types.SigningContext(
        product="oss",
        region=REGION,
        bucket=BUCKET,
        key=key,
        request=request,
        credentials=oss.types.Credentials(SDK_AK, SDK_SK),
        additional_headers={"Cache-Control", "x-oss-meta-a", "content-type"},
    )
    ctx.auth_method_query = query
    SignerV4().sign(ctx)
    parts = urlsplit(request.url)
    return wire_request(method, f"{parts.path}?{parts.query}", list(request.headers.items()))


def test_sdk_v2_signer_v4_additional_headers_header_form() -> None:
    r = v2_signer_v4("PUT", KEYS[1], {"cache-control": "no-cache", "x-oss-meta-a": "1"}, query=False)
    assert ",AdditionalHeaders=cache-control,Signature=" in r.headers["authorization"]
    assert sdk_auth(r) == SDK_AK
    assert sdk_error(replace(r, headers={**r.headers, "cache-control": "max-age=1"})).code == ("SignatureDoesNotMatch")


def test_sdk_v2_signer_v4_additional_headers_presigned() -> None:
    r = v2_signer_v4("GET", KEYS[0], {"cache-control": "no-cache"}, query=True)
    assert ("x-oss-additional-headers", "cache-control") in r.query
    assert sdk_auth(r) == SDK_AK
    assert sdk_error(replace(r, headers={**r.headers, "cache-control": "max-age=1"})).code == ("SignatureDoesNotMatch")


# --- presigned URLs from both SDKs (§3.3) ----------------------------------------------------------------


def url_request(method: str, url: str, headers: Mapping[str, str] | None = None) -> RequestToVerify:
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    return wire_request(method, target, list((headers or {}).items()))


def oss2_presign(server: _CaptureServer, version: str, method: str, key: str) -> RequestToVerify:
    bucket = oss2_bucket(server, version)
    if method == "GET":
        return url_request("GET", bucket.sign_url("GET", key, 60, params={"x-oss-process": "image/resize,w_100"}))
    headers = {"Content-Type": "text/plain", "x-oss-meta-author": "alice", "Cache-Control": "no-cache"}
    extra = {"cache-control"} if version == "v4" else None
    url = bucket.sign_url("PUT", key, 60, headers=headers, additional_headers=extra)
    return url_request("PUT", url, headers)


def v2_presign(server: _CaptureServer, version: str, method: str, key: str) -> RequestToVerify:
    client = v2_client(server, version)
    expires = datetime.timedelta(seconds=60)
    if method == "GET":
        get = oss.GetObjectRequest(bucket=BUCKET, key=key, process="image/resize,w_100")
        return url_request("GET", client.presign(get, expires=expires).url)
    put = oss.PutObjectRequest(bucket=BUCKET, key=key, content_type="text/plain", metadata={"author": "alice"})
    result = client.presign(put, expires=expires)
    return url_request("PUT", result.url, result.signed_headers)


def presigned(server: _CaptureServer, flavour: str, method: str, key: str = KEYS[0]) -> RequestToVerify:
    sdk, version = flavour.split("-")
    maker = oss2_presign if sdk == "oss2" else v2_presign
    return maker(server, version, method, key)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("key", KEYS[:3])
def test_sdk_presigned_url_verifies(capture_server: _CaptureServer, flavour: str, method: str, key: str) -> None:
    r = presigned(capture_server, flavour, method, key)
    assert r.key == key
    assert "authorization" not in r.headers
    assert sdk_auth(r) == SDK_AK


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sdk_presigned_url_expired(capture_server: _CaptureServer, flavour: str) -> None:
    r = presigned(capture_server, flavour, "GET")
    err = sdk_error(r, now=time.time() + 120)
    assert (err.code, err.message) == ("AccessDenied", "Request has expired.")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sdk_presigned_url_tampered(capture_server: _CaptureServer, flavour: str) -> None:
    get = presigned(capture_server, flavour, "GET")
    assert sdk_error(replace(get, key="other.txt")).code == "SignatureDoesNotMatch"
    assert sdk_error(replace(get, method="DELETE")).code == "SignatureDoesNotMatch"
    assert sdk_error(get, secret="wrong").code == "SignatureDoesNotMatch"
    put = presigned(capture_server, flavour, "PUT")
    assert sdk_error(replace(put, headers={**put.headers, "content-type": "text/html"})).code == (
        "SignatureDoesNotMatch"
    )


def test_sdk_presigned_x_oss_process_is_signed_only_by_oss2(capture_server: _CaptureServer) -> None:
    # §3.1: tampering x-oss-process breaks an oss2 V1 URL but not a V2-SDK V1 URL (the fallback set).
    for flavour, still_valid in (("oss2-v1", False), ("v2-v1", True)):
        r = presigned(capture_server, flavour, "GET")
        tampered = replace(r, query=[(k, "image/info" if k == "x-oss-process" else v) for k, v in r.query])
        if still_valid:
            assert sdk_auth(tampered) == SDK_AK
        else:
            assert sdk_error(tampered).code == "SignatureDoesNotMatch"


def test_sdk_presigned_plus_authorization_header_rejected(capture_server: _CaptureServer) -> None:
    r = presigned(capture_server, "v2-v4", "GET")
    signed = sdk_request(capture_server, "v2-v4", "get_process")
    both = replace(r, headers={**r.headers, "authorization": signed.headers["authorization"]})
    assert sdk_error(both).code == "InvalidArgument"


def test_sdk_oss2_v4_presign_signs_additional_headers(capture_server: _CaptureServer) -> None:
    r = presigned(capture_server, "oss2-v4", "PUT")
    assert ("x-oss-additional-headers", "cache-control") in r.query
    assert sdk_auth(r) == SDK_AK
    assert sdk_error(replace(r, headers={**r.headers, "cache-control": "no-store"})).code == ("SignatureDoesNotMatch")


STS_TOKEN = "CAIS+sts/token=="


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sdk_sts_token_requests_verify(capture_server: _CaptureServer, flavour: str) -> None:
    # §3.1: the token travels as x-oss-security-token (oss2, V2 v4), security-token (V2 v1 header, unsigned)
    # or as a query parameter of presigned URLs; each is verified by the ordinary rules.
    sdk, version = flavour.split("-")
    if sdk == "oss2":
        sts = oss2.StsAuth(SDK_AK, SDK_SK, STS_TOKEN, auth_version=version)
        bucket = oss2.Bucket(sts, endpoint(capture_server), BUCKET, region=REGION)
        header_signed = sdk_call(capture_server, _oss2_op(bucket, "upload_part", KEYS[1]))
        url = url_request("GET", bucket.sign_url("GET", KEYS[1], 60))
    else:
        client = v2_client(capture_server, version, token=STS_TOKEN)
        header_signed = sdk_call(capture_server, _v2_op(client, "upload_part", KEYS[1]))
        get = oss.GetObjectRequest(bucket=BUCKET, key=KEYS[1])
        url = url_request("GET", client.presign(get, expires=datetime.timedelta(seconds=60)).url)
    assert STS_TOKEN in header_signed.headers.values()
    assert STS_TOKEN in dict(url.query).values()
    assert sdk_auth(header_signed) == SDK_AK
    assert sdk_auth(url) == SDK_AK
