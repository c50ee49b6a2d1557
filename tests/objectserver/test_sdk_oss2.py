"""The store driven by the official ``oss2`` SDK, with V1 and V4 signing (issue 2)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
import requests

from tests.conftest import StoreProcess


@pytest.fixture(params=["v1", "v4"])
def bucket(request: pytest.FixtureRequest, store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    if request.param == "v1":
        auth: oss2.AuthBase = oss2.Auth(store.access_key_id, store.access_key_secret)
    else:
        auth = oss2.AuthV4(store.access_key_id, store.access_key_secret)
    b = oss2.Bucket(auth, store.endpoint, bucket_name, region="cn-hangzhou")
    b.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    yield b
    for obj in oss2.ObjectIterator(b):
        b.delete_object(obj.key)
    for up in oss2.MultipartUploadIterator(b):
        b.abort_multipart_upload(up.key, up.upload_id)
    b.delete_bucket()


KEYS = [
    "plain.txt",
    "dir/sub/a b+c%d.txt",
    "中文/文件 名.jpg",
    "a",
    "a/b",
    "../escape",
    "x/../../y",
    "~`!@#$^&*()=[]{};',",
]


def test_bucket_info_and_listing_of_buckets(store: StoreProcess, bucket: oss2.Bucket) -> None:
    info = bucket.get_bucket_info()
    assert info.name == bucket.bucket_name
    assert info.storage_class == "Standard"
    assert info.acl.grant == "private"
    assert info.extranet_endpoint == store.endpoint
    service = oss2.Service(oss2.Auth(store.access_key_id, store.access_key_secret), store.endpoint)
    assert bucket.bucket_name in [b.name for b in service.list_buckets().buckets]
    assert bucket.get_bucket_location().location == "oss-cn-hangzhou"


@pytest.mark.parametrize("key", KEYS)
def test_put_get_head_delete_unicode_keys(bucket: oss2.Bucket, key: str) -> None:
    body = ("content of " + key).encode()
    put = bucket.put_object(key, body, headers={"x-oss-meta-owner": "alice", "Content-Type": "text/plain"})
    assert put.etag == hashlib.md5(body).hexdigest().upper()
    got = bucket.get_object(key)
    assert got.read() == body
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["x-oss-meta-owner"] == "alice"
    head = bucket.head_object(key)
    assert head.content_length == len(body)
    assert head.etag == put.etag
    assert bucket.object_exists(key)
    bucket.delete_object(key)
    assert not bucket.object_exists(key)
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(key)


def test_ranged_get(bucket: oss2.Bucket) -> None:
    bucket.put_object("r", b"0123456789")
    assert bucket.get_object("r", byte_range=(2, 5)).read() == b"2345"
    assert bucket.get_object("r", byte_range=(7, None)).read() == b"789"
    assert bucket.get_object("r", byte_range=(None, 3)).read() == b"789"
    # A range past the end is ignored by OSS: the whole object, status 200 (§5.3 "Range handling").
    whole = bucket.get_object("r", byte_range=(20, 30))
    assert whole.status == 200 and whole.read() == b"0123456789"


def test_listing_with_delimiter_and_pagination(bucket: oss2.Bucket) -> None:
    keys = ["a/1", "a/2", "b/1", "c", "d", "e/f/g"]
    for k in keys:
        bucket.put_object(k, b"x")
    result = bucket.list_objects(delimiter="/", max_keys=100)
    assert [o.key for o in result.object_list] == ["c", "d"]
    assert result.prefix_list == ["a/", "b/", "e/"]
    listed = [o.key for o in oss2.ObjectIterator(bucket, max_keys=2)]
    assert listed == sorted(keys)
    listed_v2 = [o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=2)]
    assert listed_v2 == sorted(keys)
    page = bucket.list_objects_v2(prefix="a/", max_keys=1)
    assert page.is_truncated and [o.key for o in page.object_list] == ["a/1"]
    rolled = [o.key for o in oss2.ObjectIteratorV2(bucket, delimiter="/", max_keys=1)]
    assert rolled == ["a/", "b/", "c", "d", "e/"]


def test_copy_and_update_meta(bucket: oss2.Bucket) -> None:
    bucket.put_object("src", b"payload", headers={"x-oss-meta-a": "1"})
    copied = bucket.copy_object(bucket.bucket_name, "src", "dst/copy")
    assert copied.etag == hashlib.md5(b"payload").hexdigest().upper()
    assert bucket.get_object("dst/copy").read() == b"payload"
    assert bucket.head_object("dst/copy").headers["x-oss-meta-a"] == "1"
    bucket.update_object_meta("src", {"x-oss-meta-b": "2", "Content-Type": "text/csv"})
    head = bucket.head_object("src")
    assert head.headers["x-oss-meta-b"] == "2" and "x-oss-meta-a" not in head.headers
    assert head.content_type == "text/csv"
    assert bucket.get_object("src").read() == b"payload"
    bucket.delete_object("src")
    assert bucket.get_object("dst/copy").read() == b"payload"


def test_batch_delete(bucket: oss2.Bucket) -> None:
    for k in ("k1", "k2", "k 3"):
        bucket.put_object(k, b"x")
    result = bucket.batch_delete_objects(["k1", "k2", "k 3", "missing"])
    assert sorted(result.deleted_keys) == sorted(["k1", "k2", "k 3", "missing"])
    assert [o.key for o in oss2.ObjectIterator(bucket)] == []


def test_presigned_get_and_put_with_plain_http(bucket: oss2.Bucket) -> None:
    put_url = bucket.sign_url("PUT", "signed/put.bin", 60)
    assert requests.put(put_url, data=b"via url").status_code == 200
    get_url = bucket.sign_url("GET", "signed/put.bin", 60)
    got = requests.get(get_url)
    assert got.status_code == 200 and got.content == b"via url"
    tampered = get_url.replace("signed%2Fput.bin", "signed%2Fother.bin")
    assert requests.get(tampered).status_code == 403


def test_resumable_upload_multipart_and_download(bucket: oss2.Bucket, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(1024 * 1024 + 12345)
    src.write_bytes(data)
    oss2.resumable_upload(
        bucket,
        "big/file.bin",
        str(src),
        multipart_threshold=200 * 1024,
        part_size=200 * 1024,
        store=oss2.ResumableStore(root=str(tmp_path)),
    )
    head = bucket.head_object("big/file.bin")
    assert head.content_length == len(data)
    assert head.object_type == "Multipart"
    assert head.etag.endswith("-6")
    out = tmp_path / "out.bin"
    oss2.resumable_download(
        bucket,
        "big/file.bin",
        str(out),
        multiget_threshold=200 * 1024,
        part_size=300 * 1024,
        store=oss2.ResumableDownloadStore(root=str(tmp_path)),
    )
    assert hashlib.md5(out.read_bytes()).digest() == hashlib.md5(data).digest()
    bucket.get_object_to_file("big/file.bin", str(tmp_path / "whole.bin"))  # CRC checked by the SDK
    assert (tmp_path / "whole.bin").read_bytes() == data


def test_chunked_streaming_put(bucket: oss2.Bucket) -> None:
    def gen() -> Iterator[bytes]:
        for i in range(50):
            yield bytes([i]) * 1000

    bucket.put_object("chunked", gen())
    assert bucket.get_object("chunked").read() == b"".join(bytes([i]) * 1000 for i in range(50))


def test_errors(store: StoreProcess, bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object("nope")
    with pytest.raises(oss2.exceptions.NotFound) as head_err:
        bucket.head_object("nope")
    assert head_err.value.code == "NoSuchKey"  # decoded from x-oss-err
    bucket.put_object("x", b"1")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        bucket.delete_bucket()
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("y", b"data", headers={"Content-MD5": "bm90LWEtbWQ1"})
    wrong_md5 = "XUFAKrxLKna5cZ2REBfFkg=="  # MD5 of "hello", body differs
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("y", b"other", headers={"Content-MD5": wrong_md5})
    assert not bucket.object_exists("y")
    with pytest.raises(oss2.exceptions.ServerError) as conflict:
        bucket.put_object("x", b"2", headers={"x-oss-forbid-overwrite": "true"})
    assert (conflict.value.status, conflict.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("x").read() == b"1"
    bad = oss2.Bucket(oss2.Auth(store.access_key_id, "wrong-secret"), store.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bad.get_object("x")
    unknown = oss2.Bucket(oss2.Auth("LTAIunknown", "s"), store.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.ServerError) as err:
        unknown.get_object("x")
    assert err.value.code == "InvalidAccessKeyId" and err.value.status == 403
    missing = oss2.Bucket(bucket.auth, store.endpoint, "no-such-bucket-here", region="cn-hangzhou")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        missing.get_object("x")


def test_object_acl_and_anonymous_access(store: StoreProcess, bucket: oss2.Bucket) -> None:
    bucket.put_object("pub", b"public bytes")
    url = f"{store.endpoint}/{bucket.bucket_name}/pub"
    assert requests.get(url).status_code == 403
    bucket.put_object_acl("pub", oss2.OBJECT_ACL_PUBLIC_READ)
    assert bucket.get_object_acl("pub").acl == "public-read"
    anon = requests.get(url)
    assert anon.status_code == 200 and anon.content == b"public bytes"
    assert requests.put(url, data=b"overwrite").status_code == 403
    assert requests.get(f"{store.endpoint}/{bucket.bucket_name}/").status_code == 403
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    assert requests.put(f"{store.endpoint}/{bucket.bucket_name}/anon", data=b"w").status_code == 200
    assert bucket.get_object("anon").read() == b"w"
    assert requests.get(f"{store.endpoint}/{bucket.bucket_name}/?acl").status_code == 403


def test_empty_object(bucket: oss2.Bucket) -> None:
    bucket.put_object("empty", b"")
    assert bucket.get_object("empty").read() == b""
    assert bucket.head_object("empty").etag == "D41D8CD98F00B204E9800998ECF8427E"
    stream = bucket.get_object("empty")
    assert stream.server_crc == 0


def test_put_from_file_like(bucket: oss2.Bucket) -> None:
    bucket.put_object("fl", io.BytesIO(b"abc" * 1000))
    assert bucket.get_object("fl").read() == b"abc" * 1000
