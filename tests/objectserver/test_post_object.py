"""PostObject over real HTTP, as a browser sends it (issue 3, oss-protocol.md §1).

Forms are encoded here by hand (fields in order, then the file part with its filename and Content-Type) and signed
by the small independent signer below, which is first checked against the computed vectors of §1.5 and §1.6.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import oss2
import pytest
import requests

from tests.conftest import StoreProcess, start_store

REGION = "cn-hangzhou"
Field = tuple[str, str]


# -- the independent signer (§1.3, §1.5, §1.6) ------------------------------------------------------------------
def policy_b64(conditions: Sequence[object], expires_in: float = 600, *, at: float | None = None) -> str:
    when = (time.time() if at is None else at) + expires_in
    doc = {"expiration": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when)), "conditions": list(conditions)}
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def v1_signature(secret: str, policy: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()


def v4_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.new(("aliyun_v4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def v4_signature(secret: str, date: str, region: str, policy: str) -> str:
    return hmac.new(v4_key(secret, date, region), policy.encode(), hashlib.sha256).hexdigest()


def v1_fields(store: StoreProcess, conditions: Sequence[object], expires_in: float = 600) -> list[Field]:
    policy = policy_b64(conditions, expires_in)
    signature = v1_signature(store.access_key_secret, policy)
    return [("OSSAccessKeyId", store.access_key_id), ("policy", policy), ("Signature", signature)]


def v4_fields(store: StoreProcess, conditions: Sequence[object], secret: str | None = None) -> list[Field]:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    credential = f"{store.access_key_id}/{stamp[:8]}/{REGION}/oss/aliyun_v4_request"
    v4 = [("x-oss-signature-version", "OSS4-HMAC-SHA256"), ("x-oss-credential", credential), ("x-oss-date", stamp)]
    policy = policy_b64([*conditions, *({k: v} for k, v in v4)])
    signature = v4_signature(secret or store.access_key_secret, stamp[:8], REGION, policy)
    return [*v4, ("policy", policy), ("x-oss-signature", signature)]


# -- a browser-like multipart encoder ----------------------------------------------------------------------------
@dataclass
class FilePart:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


def encode_form(fields: Sequence[Field], file: FilePart | None, after: Sequence[Field] = ()) -> tuple[bytes, str]:
    """(body, Content-Type) the way browsers write multipart/form-data (WHATWG HTML form submission)."""
    boundary = "----WebKitFormBoundary" + secrets.token_hex(8)
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode()
        out += b"\r\n"
    if file is not None:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.filename}"\r\n'
        out += head.encode() + f"Content-Type: {file.content_type}\r\n\r\n".encode() + file.content + b"\r\n"
    for name, value in after:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def post_form(
    endpoint: str,
    bucket: str,
    fields: Sequence[Field],
    file: FilePart | None,
    after: Sequence[Field] = (),
    headers: dict[str, str] | None = None,
) -> requests.Response:
    body, ctype = encode_form(fields, file, after)
    url = f"{endpoint}/{bucket}" if bucket else endpoint + "/"
    sent = {"Content-Type": ctype, **(headers or {})}
    return requests.post(url, data=body, headers=sent, timeout=30, allow_redirects=False)


def error_code(response: requests.Response) -> str:
    return ElementTree.fromstring(response.content).findtext("Code") or ""


def error_message(response: requests.Response) -> str:
    return ElementTree.fromstring(response.content).findtext("Message") or ""


def blob_files(root: Path) -> int:
    """Files under the store's blob and temporary directories: a rejected upload must not add any."""
    return sum(len(files) for d in ("blobs", "tmp") for _, _, files in os.walk(root / d))


def open_bucket(store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    """A private bucket for one test, emptied and deleted afterwards (the body of each module's fixture)."""
    b = oss2.Bucket(oss2.Auth(store.access_key_id, store.access_key_secret), store.endpoint, bucket_name)
    b.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    yield b
    for obj in oss2.ObjectIterator(b):
        b.delete_object(obj.key)
    b.delete_bucket()


@pytest.fixture
def bucket(store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    yield from open_bucket(store, bucket_name)


# -- the signer itself -----------------------------------------------------------------------------------------
V1_POLICY = (
    "eyJleHBpcmF0aW9uIjoiMjAyNC0xMi0wM1QxMzoxMjoxMi4wMDBaIiwiY29uZGl0aW9ucyI6W3siYnVja2V0IjoiZXhhbXBsZWJ1Y2tldCJ9"
    "LFsic3RhcnRzLXdpdGgiLCIka2V5IiwidXNlci9hbGljZS8iXSxbImNvbnRlbnQtbGVuZ3RoLXJhbmdlIiwxLDEwNDg1NzYwXV19"
)


def test_signer_reproduces_the_v1_vector() -> None:
    conditions = [
        {"bucket": "examplebucket"},
        ["starts-with", "$key", "user/alice/"],
        ["content-length-range", 1, 10485760],
    ]
    expiration = time.mktime((2024, 12, 3, 13, 12, 12, 0, 0, 0)) - time.timezone
    assert policy_b64(conditions, 0, at=expiration) == V1_POLICY
    assert v1_signature("ExampleSecretKey123", V1_POLICY) == "hotXg1RQwOjz6QWKBCH39bgSKBA="


def test_signer_reproduces_the_v4_vector() -> None:
    key = v4_key("ExampleSecretKey123", "20241203", "cn-hangzhou")
    assert key.hex() == "3a8719366085efdb84fbd86290604c7e36cbb670faa4106d4ee9cdf43d6a04df"
    policy = (
        '{"expiration":"2024-12-03T13:12:12.000Z","conditions":[{"bucket":"examplebucket"},'
        '{"x-oss-signature-version":"OSS4-HMAC-SHA256"},'
        '{"x-oss-credential":"LTAI5tExampleAK/20241203/cn-hangzhou/oss/aliyun_v4_request"},'
        '{"x-oss-date":"20241203T121212Z"},["content-length-range",1,10485760]]}'
    )
    signature = v4_signature(
        "ExampleSecretKey123", "20241203", "cn-hangzhou", base64.b64encode(policy.encode()).decode()
    )
    assert signature == "5516c155099379005fc64f2d783a7010af889f543815c92bc74b0a704fd4c2fc"


# -- successful uploads ----------------------------------------------------------------------------------------
def test_v1_form_upload_with_201_xml_and_stored_headers(store: StoreProcess, bucket: oss2.Bucket) -> None:
    name = bucket.bucket_name
    conditions = [{"bucket": name}, ["starts-with", "$key", "user/alice/"], ["content-length-range", 1, 1024]]
    fields = [
        ("key", "user/alice/${filename}"),  # §1.4: the policy sees the unexpanded value, which starts-with allows
        *v1_fields(store, conditions),
        ("success_action_status", "201"),
        ("Cache-Control", "max-age=60"),
        ("Content-Disposition", "attachment; filename=report.txt"),
        ("x-oss-meta-uuid", "1234"),
        ("x-oss-security-token", ""),  # the oss2 example sends it empty (§1.2)
    ]
    response = post_form(store.endpoint, name, fields, FilePart("report.txt", b"hello world", "text/plain"))
    assert response.status_code == 201, response.text
    etag = '"' + hashlib.md5(b"hello world").hexdigest().upper() + '"'
    assert response.headers["ETag"] == etag
    assert response.headers["x-oss-hash-crc64ecma"] == "5981764153023615706"  # the §5.2 vector for b"hello world"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "PostResponse"
    assert root.findtext("Bucket") == name and root.findtext("Key") == "user/alice/report.txt"
    assert root.findtext("ETag") == etag
    assert root.findtext("Location") == f"{store.endpoint}/{name}/user/alice/report.txt"
    head = bucket.head_object("user/alice/report.txt")
    assert head.headers["Content-Type"] == "text/plain"
    assert head.headers["Cache-Control"] == "max-age=60"
    assert head.headers["Content-Disposition"] == "attachment; filename=report.txt"
    assert head.headers["x-oss-meta-uuid"] == "1234"
    assert bucket.get_object("user/alice/report.txt").read() == b"hello world"


def test_v4_form_upload_answers_204_by_default(store: StoreProcess, bucket: oss2.Bucket) -> None:
    fields = [("key", "v4/obj.bin"), *v4_fields(store, [{"bucket": bucket.bucket_name}])]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("a.bin", b"\x00\x01v4"))
    assert response.status_code == 204 and response.content == b""
    assert bucket.get_object("v4/obj.bin").read() == b"\x00\x01v4"


def test_v4_with_a_wrong_secret_is_signature_does_not_match(store: StoreProcess, bucket: oss2.Bucket) -> None:
    fields = [("key", "v4/bad"), *v4_fields(store, [{"bucket": bucket.bucket_name}], secret="not-the-secret")]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("a", b"x"))
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")
    assert not bucket.object_exists("v4/bad")


@pytest.mark.parametrize(("sent", "status"), [("200", 200), ("204", 204), ("299", 204), ("", 204)])
def test_success_action_status(store: StoreProcess, bucket: oss2.Bucket, sent: str, status: int) -> None:
    fields = [("key", "s"), *v1_fields(store, [{"bucket": bucket.bucket_name}]), ("success_action_status", sent)]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("s", b"status"))
    assert response.status_code == status and response.content == b""
    assert response.headers["ETag"] == '"' + hashlib.md5(b"status").hexdigest().upper() + '"'


def test_success_action_redirect(store: StoreProcess, bucket: oss2.Bucket) -> None:
    fields = [
        ("key", "r"),
        *v1_fields(store, [{"bucket": bucket.bucket_name}]),
        ("success_action_redirect", "http://app.example/done?x=1"),
    ]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("r", b"redirect"))
    assert response.status_code == 303
    etag = hashlib.md5(b"redirect").hexdigest().upper()
    assert response.headers["Location"] == (
        f"http://app.example/done?x=1&bucket={bucket.bucket_name}&key=r&etag=%22{etag}%22"
    )
    assert bucket.object_exists("r")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([("x-oss-content-type", "image/webp"), ("Content-Type", "image/png")], "image/webp"),
        ([("Content-Type", "image/png")], "image/png"),
        ([], "text/csv"),
    ],
)
def test_content_type_precedence(store: StoreProcess, bucket: oss2.Bucket, extra: list[Field], expected: str) -> None:
    fields = [("key", "typed"), *v1_fields(store, [{"bucket": bucket.bucket_name}]), *extra]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("t.csv", b"a,b", "text/csv"))
    assert response.status_code == 204
    assert bucket.head_object("typed").headers["Content-Type"] == expected


def test_object_acl_and_fields_after_file_are_ignored(store: StoreProcess, bucket: oss2.Bucket) -> None:
    fields = [
        ("key", "public.txt"),
        *v1_fields(store, [{"bucket": bucket.bucket_name}]),
        ("x-oss-object-acl", "public-read"),
    ]
    after = [("submit", "Upload"), ("x-oss-meta-late", "ignored")]  # §1.2: the docs' own example has submit after file
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("p", b"public"), after)
    assert response.status_code == 204
    anonymous = requests.get(f"{store.endpoint}/{bucket.bucket_name}/public.txt", timeout=10)
    assert anonymous.status_code == 200 and anonymous.content == b"public"
    assert "x-oss-meta-late" not in bucket.head_object("public.txt").headers


def test_forbid_overwrite_gives_file_already_exists(store: StoreProcess, bucket: oss2.Bucket) -> None:
    bucket.put_object("taken", b"original")
    fields = [("key", "taken"), *v1_fields(store, [{"bucket": bucket.bucket_name}]), ("x-oss-forbid-overwrite", "true")]
    before = blob_files(store.root)
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("t", b"replacement"))
    assert (response.status_code, error_code(response)) == (409, "FileAlreadyExists")
    assert bucket.get_object("taken").read() == b"original"
    assert blob_files(store.root) == before


def test_anonymous_form_needs_a_public_read_write_bucket(store: StoreProcess, bucket: oss2.Bucket) -> None:
    denied = post_form(store.endpoint, bucket.bucket_name, [("key", "anon")], FilePart("a", b"anon"))
    assert (denied.status_code, error_code(denied)) == (403, "AccessDenied")
    assert not bucket.object_exists("anon")
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    allowed = post_form(store.endpoint, bucket.bucket_name, [("key", "anon")], FilePart("a", b"anon"))
    assert allowed.status_code == 204
    assert bucket.get_object("anon").read() == b"anon"


def test_large_file_streams_to_disk(store: StoreProcess, bucket: oss2.Bucket) -> None:
    data = os.urandom(12 * 1024 * 1024 + 17)
    fields = [
        ("key", "big.bin"),
        *v1_fields(store, [{"bucket": bucket.bucket_name}, ["content-length-range", 1, 1 << 30]]),
    ]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("big.bin", data))
    assert response.status_code == 204
    assert response.headers["ETag"] == '"' + hashlib.md5(data).hexdigest().upper() + '"'
    assert hashlib.md5(bucket.get_object("big.bin").read()).digest() == hashlib.md5(data).digest()


def test_virtual_hosted_post_to_root(tmp_path: Path) -> None:
    vstore = start_store(tmp_path / "vhost", "--domain", "oss.local")
    try:
        auth = oss2.Auth(vstore.access_key_id, vstore.access_key_secret)
        b = oss2.Bucket(auth, vstore.endpoint, "vhost-bucket")
        b.create_bucket()
        fields = [("key", "vh.txt"), *v1_fields(vstore, [{"bucket": "vhost-bucket"}])]
        port = vstore.endpoint.rsplit(":", 1)[1]
        response = post_form(
            vstore.endpoint, "", fields, FilePart("vh", b"virtual"), headers={"Host": f"vhost-bucket.oss.local:{port}"}
        )
        assert response.status_code == 204, response.text
        assert b.get_object("vh.txt").read() == b"virtual"
    finally:
        vstore.stop()


# -- every failure: its code and status, nothing stored (§1.7) -----------------------------------------------
@dataclass
class Case:
    """A rejected form. ``conditions`` None: build ``fields`` as given (no signature added)."""

    fields: list[Field]
    status: int
    code: str
    conditions: list[object] | None = None
    content: bytes = b"payload"
    message: str = ""


def _cases(bucket: str) -> dict[str, Case]:
    own = {"bucket": bucket}
    return {
        "expired": Case([], 403, "AccessDenied", [own], message="Policy expired"),
        "starts-with": Case(
            [], 403, "AccessDenied", [own, ["starts-with", "$key", "user/eric/"]], message="starts-with"
        ),
        "exact map": Case([("x-oss-meta-a", "2")], 403, "AccessDenied", [own, {"x-oss-meta-a": "1"}]),
        "eq": Case(
            [("success_action_status", "200")], 403, "AccessDenied", [own, ["eq", "$success_action_status", "201"]]
        ),
        "in": Case([("Content-Type", "text/html")], 403, "AccessDenied", [own, ["in", "$content-type", ["image/png"]]]),
        "not-in": Case(
            [("Cache-Control", "no-cache")], 403, "AccessDenied", [own, ["not-in", "$cache-control", ["no-cache"]]]
        ),
        "other bucket": Case([], 403, "AccessDenied", [{"bucket": "someone-elses"}]),
        "too large": Case([], 400, "EntityTooLarge", [own, ["content-length-range", 1, 5]]),
        "too small": Case([], 400, "EntityTooSmall", [own, ["content-length-range", 100, 1000]]),
        "bad condition": Case([], 400, "InvalidPolicyDocument", [own, ["$key"]]),
        "bad signature": Case([], 403, "SignatureDoesNotMatch", [own]),
        "partial v1": Case([("OSSAccessKeyId", "LTAItestkey0001"), ("policy", "e30=")], 400, "InvalidArgument"),
        "no key": Case([], 400, "InvalidArgument", [own], message="must contain the specified 'key'"),
        "bad acl": Case([("x-oss-object-acl", "everyone")], 400, "InvalidArgument", [own]),
        "bad callback": Case([("callback", "%%%not-base64")], 400, "InvalidArgument", [own]),
        "values too long": Case([("x-oss-meta-big", "v" * (2 * 1024 * 1024 + 1))], 400, "FieldItemTooLong", [own]),
        "names too long": Case(
            [(f"x-oss-meta-{i:03}-" + "n" * 80, "v") for i in range(100)], 400, "FieldItemTooLong", [own]
        ),
    }


CASE_NAMES = list(_cases("x"))


def _case_fields(store: StoreProcess, name: str, case: Case) -> list[Field]:
    if case.conditions is None:
        return [("key", "rejected"), *case.fields]
    signed = v1_fields(store, case.conditions, expires_in=-1 if name == "expired" else 600)
    if name == "bad signature":
        signed[2] = ("Signature", v1_signature("wrong-secret", signed[1][1]))
    key = [] if name == "no key" else [("key", "rejected")]
    return [*key, *signed, *case.fields]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_rejected_form_returns_its_code_and_stores_nothing(store: StoreProcess, bucket: oss2.Bucket, name: str) -> None:
    case = _cases(bucket.bucket_name)[name]
    before = blob_files(store.root)
    response = post_form(
        store.endpoint, bucket.bucket_name, _case_fields(store, name, case), FilePart("f", case.content)
    )
    assert (response.status_code, error_code(response)) == (case.status, case.code), response.text
    assert case.message in error_message(response)
    assert not bucket.object_exists("rejected")
    assert [o.key for o in oss2.ObjectIterator(bucket)] == []
    assert blob_files(store.root) == before


def test_duplicate_policy_keys_are_invalid_policy_document(store: StoreProcess, bucket: oss2.Bucket) -> None:
    expiration = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 600))
    cond = f'{{"bucket":"{bucket.bucket_name}"}}'
    text = f'{{"expiration":"{expiration}","expiration":"{expiration}","conditions":[{cond}]}}'
    policy = base64.b64encode(text.encode()).decode()
    fields = [("key", "dup"), ("OSSAccessKeyId", store.access_key_id), ("policy", policy)]
    fields.append(("Signature", v1_signature(store.access_key_secret, policy)))
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("d", b"dup"))
    assert (response.status_code, error_code(response)) == (400, "InvalidPolicyDocument")
    assert not bucket.object_exists("dup")


def test_key_after_file_is_invalid_argument(store: StoreProcess, bucket: oss2.Bucket) -> None:
    fields = v1_fields(store, [{"bucket": bucket.bucket_name}])
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("f", b"late"), after=[("key", "late")])
    assert (response.status_code, error_code(response)) == (400, "InvalidArgument")
    assert not bucket.object_exists("late")


def test_malformed_multipart(store: StoreProcess, bucket: oss2.Bucket) -> None:
    fields = [("key", "cut"), *v1_fields(store, [{"bucket": bucket.bucket_name}])]
    body, ctype = encode_form(fields, FilePart("c", b"0123456789" * 100))
    before = blob_files(store.root)
    truncated = requests.post(
        f"{store.endpoint}/{bucket.bucket_name}", data=body[:-60], headers={"Content-Type": ctype}, timeout=10
    )
    assert (truncated.status_code, error_code(truncated)) == (400, "MalformedPOSTRequest")
    not_form = requests.post(
        f"{store.endpoint}/{bucket.bucket_name}",
        data=b"key=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert (not_form.status_code, error_code(not_form)) == (400, "MalformedPOSTRequest")
    assert not bucket.object_exists("cut")
    assert blob_files(store.root) == before


def test_missing_bucket_is_no_such_bucket(store: StoreProcess, bucket_name: str) -> None:
    fields = [("key", "k"), *v1_fields(store, [{"bucket": bucket_name}])]
    response = post_form(store.endpoint, bucket_name, fields, FilePart("k", b"x"))
    assert (response.status_code, error_code(response)) == (404, "NoSuchBucket")
