"""Wire details the SDKs depend on, checked with raw HTTP (oss-protocol.md §5.1, §11)."""

from __future__ import annotations

import base64
import http.client
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import oss2
import pytest

from tests.conftest import StoreProcess, start_store
from tests.signer import object_url, v1_headers

LAST_MODIFIED = re.compile(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


@pytest.fixture
def bucket(store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    b = oss2.Bucket(oss2.Auth(store.access_key_id, store.access_key_secret), store.endpoint, bucket_name)
    b.create_bucket()
    yield b
    keys = [obj.key for obj in oss2.ObjectIterator(b)]
    if keys:  # batch delete: keys such as ".." cannot travel in a URL path through requests
        b.batch_delete_objects(keys)
    b.delete_bucket()


def signed(store: StoreProcess, method: str, resource: str, **headers: str) -> dict[str, str]:
    return v1_headers(method, resource, store.access_key_id, store.access_key_secret, dict(headers))


def test_common_headers_and_error_document(store: StoreProcess, bucket: oss2.Bucket) -> None:
    url = object_url(store.endpoint, bucket.bucket_name, "missing")
    resp = httpx.get(url, headers=signed(store, "GET", f"/{bucket.bucket_name}/missing"))
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/xml"
    assert len(resp.headers["x-oss-request-id"]) == 24 and resp.headers["date"].endswith("GMT")
    assert "xmlns" not in resp.text
    assert "<Code>NoSuchKey</Code>" in resp.text and resp.headers["x-oss-request-id"] in resp.text
    head = httpx.head(url, headers=signed(store, "HEAD", f"/{bucket.bucket_name}/missing"))
    assert head.status_code == 404 and head.content == b""
    assert b"<Code>NoSuchKey</Code>" in base64.b64decode(head.headers["x-oss-err"])


def test_object_headers_exact(store: StoreProcess, bucket: oss2.Bucket) -> None:
    bucket.put_object("t.html", b"<p>hi</p>", headers={"Content-Type": "text/html", "Cache-Control": "max-age=60"})
    resp = httpx.get(bucket.sign_url("GET", "t.html", 60))
    assert resp.headers["content-type"] == "text/html"  # exactly as stored: no charset appended
    assert resp.headers["cache-control"] == "max-age=60"
    assert re.fullmatch(r'"[0-9A-F]{32}"', resp.headers["etag"])
    assert LAST_MODIFIED.match(resp.headers["last-modified"])
    assert resp.headers["x-oss-object-type"] == "Normal" and resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["x-oss-hash-crc64ecma"].isdigit()
    disposition = httpx.get(bucket.sign_url("GET", "t.html", 60, params={"response-content-disposition": "inline"}))
    assert disposition.headers["content-disposition"] == "inline"


def test_utf8_user_metadata_round_trip(store: StoreProcess, bucket: oss2.Bucket) -> None:
    key = "meta.txt"
    headers = signed(store, "PUT", f"/{bucket.bucket_name}/{key}", **{"x-oss-meta-name": "张三 é"})
    raw = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]
    put = httpx.put(object_url(store.endpoint, bucket.bucket_name, key), headers=raw, content=b"x")
    assert put.status_code == 200, put.text
    got = httpx.get(bucket.sign_url("GET", key, 60))
    assert got.headers.raw  # raw bytes are UTF-8, as real OSS sends them
    assert dict(got.headers.raw)[b"x-oss-meta-name"].decode("utf-8") == "张三 é"


def test_ranges_and_conditions(store: StoreProcess, bucket: oss2.Bucket) -> None:
    bucket.put_object("r", b"abcdefghij")
    url = bucket.sign_url("GET", "r", 60)
    part = httpx.get(url, headers={"Range": "bytes=-3"})
    assert part.status_code == 206 and part.content == b"hij"
    assert part.headers["content-range"] == "bytes 7-9/10" and "x-oss-hash-crc64ecma" not in part.headers
    past = httpx.get(url, headers={"Range": "bytes=50-60"})
    assert past.status_code == 200 and past.content == b"abcdefghij"
    # x-oss-* headers are signed (§3.1), so the presigned URL must include this one.
    standard = {"x-oss-range-behavior": "standard"}
    strict_url = bucket.sign_url("GET", "r", 60, headers=standard)
    strict = httpx.get(strict_url, headers={"Range": "bytes=50-60", **standard})
    assert strict.status_code == 416 and "<Code>InvalidRange</Code>" in strict.text
    etag = part.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(url, headers={"If-Match": '"0000"'}).status_code == 412
    future = "Sun, 01 Jan 2090 00:00:00 GMT"
    assert httpx.get(url, headers={"If-Modified-Since": future}).status_code == 304
    assert httpx.get(url, headers={"If-Match": etag.strip('"')}).status_code == 200


def test_invalid_bucket_name_and_skew_and_expiry(store: StoreProcess, bucket: oss2.Bucket) -> None:
    for name in ("ab", "UPPER", "-dash", "dash-", "under_score", "a" * 64):
        resp = httpx.put(f"{store.endpoint}/{name}/", headers=signed(store, "PUT", f"/{name}/"))
        assert resp.status_code == 400 and "<Code>InvalidBucketName</Code>" in resp.text, name
    old = v1_headers(
        "GET", f"/{bucket.bucket_name}/", store.access_key_id, store.access_key_secret, at=time.time() - 3600
    )
    skewed = httpx.get(f"{store.endpoint}/{bucket.bucket_name}/", headers=old)
    assert skewed.status_code == 403 and "<Code>RequestTimeTooSkewed</Code>" in skewed.text
    bucket.put_object("e", b"x")
    expired = bucket.sign_url("GET", "e", 1)
    time.sleep(2.1)
    resp = httpx.get(expired)
    assert resp.status_code == 403 and "<Code>AccessDenied</Code>" in resp.text
    assert "expired" in resp.text


def test_duplicate_bucket_and_malformed_bodies(store: StoreProcess, bucket: oss2.Bucket) -> None:
    again = httpx.put(
        f"{store.endpoint}/{bucket.bucket_name}/", headers=signed(store, "PUT", f"/{bucket.bucket_name}/")
    )
    assert again.status_code == 409 and "<Code>BucketAlreadyExists</Code>" in again.text
    resource = f"/{bucket.bucket_name}/?delete"
    bad = httpx.post(
        f"{store.endpoint}/{bucket.bucket_name}/?delete", content=b"not xml", headers=signed(store, "POST", resource)
    )
    assert bad.status_code == 400 and "<Code>MalformedXML</Code>" in bad.text
    weird = httpx.request("PATCH", f"{store.endpoint}/{bucket.bucket_name}/k")
    assert weird.status_code == 405 and "<Code>MethodNotAllowed</Code>" in weird.text


def test_keys_never_escape_the_root(store: StoreProcess, bucket: oss2.Bucket) -> None:
    before = set(os.listdir(store.root.parent))
    for key in ("../../outside", "..%2F..%2Fx", "a/../../../b", "x/./y"):
        bucket.put_object(key, b"inside")
        assert bucket.get_object(key).read() == b"inside"
    # HTTP clients normalise "/.." away; send such paths raw, as an attacker would.
    host, port = store.endpoint.removeprefix("http://").split(":")
    for raw_key, key in (("..", ".."), ("%2e%2e%2f..%2fescape", "../../escape"), (".", ".")):
        conn = http.client.HTTPConnection(host, int(port))
        path = f"/{bucket.bucket_name}/{raw_key}"
        conn.request("PUT", path, body=b"raw", headers=signed(store, "PUT", f"/{bucket.bucket_name}/{key}"))
        assert conn.getresponse().read() == b""
        conn.request("GET", path, headers=signed(store, "GET", f"/{bucket.bucket_name}/{key}"))
        assert conn.getresponse().read() == b"raw"
        conn.close()
    assert set(os.listdir(store.root.parent)) == before
    # Object bytes live only as blobs/<2 hex>/<32 hex>: no key ever becomes a path.
    for path in (store.root / "blobs").rglob("*"):
        assert re.fullmatch(r"[0-9a-f]{2}(/[0-9a-f]{32})?", path.relative_to(store.root / "blobs").as_posix())
    names = {p.name for p in store.root.rglob("*")}
    assert not names & {"outside", "escape", "b", "y", ".."}
    leading = httpx.put(
        object_url(store.endpoint, bucket.bucket_name, "/lead"),
        content=b"x",
        headers=signed(store, "PUT", f"/{bucket.bucket_name}//lead"),
    )
    assert leading.status_code == 400 and "<Code>InvalidObjectName</Code>" in leading.text
    too_long = "k" * 1024
    resp = httpx.put(
        object_url(store.endpoint, bucket.bucket_name, too_long),
        content=b"x",
        headers=signed(store, "PUT", f"/{bucket.bucket_name}/{too_long}"),
    )
    assert resp.status_code == 400 and "<Code>InvalidObjectName</Code>" in resp.text


def test_interrupted_upload_leaves_nothing(store: StoreProcess, bucket: oss2.Bucket) -> None:
    import socket

    key = "partial"
    headers = signed(store, "PUT", f"/{bucket.bucket_name}/{key}")
    host, port = store.endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"PUT /{bucket.bucket_name}/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode() + b"x" * 1000)
    time.sleep(0.5)
    assert not bucket.object_exists(key)
    assert os.listdir(store.root / "tmp") == []


@pytest.fixture(scope="module")
def vhost_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    proc = start_store(tmp_path_factory.mktemp("vhost"), "--domain", "oss.test")
    yield proc
    proc.stop()


def test_virtual_hosted_addressing(vhost_store: StoreProcess, tmp_path: Path) -> None:
    port = vhost_store.endpoint.rsplit(":", 1)[1]
    host = f"vh-bucket.oss.test:{port}"
    store = vhost_store
    created = httpx.put(f"{store.endpoint}/", headers={"Host": host, **signed(store, "PUT", "/vh-bucket/")})
    assert created.status_code == 200, created.text
    put = httpx.put(
        f"{store.endpoint}/dir/file.txt",
        content=b"vh",
        headers={"Host": host, **signed(store, "PUT", "/vh-bucket/dir/file.txt")},
    )
    assert put.status_code == 200
    path_style = httpx.get(
        f"{store.endpoint}/vh-bucket/dir/file.txt", headers=signed(store, "GET", "/vh-bucket/dir/file.txt")
    )
    assert path_style.content == b"vh"


def test_each_common_header_appears_once(store: StoreProcess, bucket: oss2.Bucket) -> None:
    resp = httpx.get(f"{store.endpoint}/{bucket.bucket_name}/missing")
    names = [k.lower() for k, _ in resp.headers.raw]
    for name in (b"date", b"server", b"x-oss-request-id", b"content-length"):
        assert names.count(name) == 1, name
