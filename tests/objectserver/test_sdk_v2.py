"""The store driven by the official ``alibabacloud-oss-v2`` SDK, with V4 (its default) and V1 signing (issue 2)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import alibabacloud_oss_v2 as oss
import httpx
import pytest

from tests.conftest import StoreProcess


def make_client(store: StoreProcess, version: str, secret: str | None = None, key_id: str | None = None) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        key_id or store.access_key_id, secret or store.access_key_secret
    )
    cfg.region = "cn-hangzhou"
    cfg.endpoint = store.endpoint
    cfg.signature_version = version
    return oss.Client(cfg)  # IP endpoint: path-style is automatic (oss-protocol.md §4)


@pytest.fixture(params=["v4", "v1"])
def client(request: pytest.FixtureRequest, store: StoreProcess) -> oss.Client:
    return make_client(store, request.param)


@pytest.fixture
def bucket(client: oss.Client, bucket_name: str) -> Iterator[str]:
    client.put_bucket(oss.PutBucketRequest(bucket=bucket_name))
    yield bucket_name
    for page in client.list_objects_v2_paginator().iter_page(oss.ListObjectsV2Request(bucket=bucket_name)):
        for obj in page.contents or []:
            client.delete_object(oss.DeleteObjectRequest(bucket=bucket_name, key=obj.key))
    client.delete_bucket(oss.DeleteBucketRequest(bucket=bucket_name))


def service_error(exc: pytest.ExceptionInfo[BaseException]) -> oss.exceptions.ServiceError:
    err = exc.value
    assert isinstance(err, oss.exceptions.OperationError)
    inner = err.unwrap()
    assert isinstance(inner, oss.exceptions.ServiceError)
    return inner


def test_bucket_lifecycle(client: oss.Client, bucket: str, store: StoreProcess) -> None:
    info = client.get_bucket_info(oss.GetBucketInfoRequest(bucket=bucket))
    assert info.status == "OK" and len(info.request_id) == 24
    assert info.bucket_info.name == bucket and info.bucket_info.extranet_endpoint == store.endpoint
    assert client.get_bucket_location(oss.GetBucketLocationRequest(bucket=bucket)).location == "oss-cn-hangzhou"
    assert client.is_bucket_exist(bucket)
    assert not client.is_bucket_exist(bucket + "-missing")
    names = [b.name for b in client.list_buckets(oss.ListBucketsRequest()).buckets]
    assert bucket in names


@pytest.mark.parametrize("key", ["v2/ä ö+ü%.txt", "dir/a/b/c", "键/值"])
def test_object_round_trip(client: oss.Client, bucket: str, key: str) -> None:
    body = os.urandom(4096)
    put = client.put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=body, metadata={"owner": "bob"}))
    assert put.etag == '"' + hashlib.md5(body).hexdigest().upper() + '"'
    got = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key))
    assert got.body.read() == body and got.metadata == {"owner": "bob"}
    head = client.head_object(oss.HeadObjectRequest(bucket=bucket, key=key))
    assert head.content_length == len(body) and head.hash_crc64 == put.hash_crc64
    part = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key, range_header="bytes=10-19"))
    assert part.body.read() == body[10:20]
    assert client.is_object_exist(bucket, key)
    client.delete_object(oss.DeleteObjectRequest(bucket=bucket, key=key))
    assert not client.is_object_exist(bucket, key)


def test_listing_paginator_and_delimiter(client: oss.Client, bucket: str) -> None:
    keys = [f"p/{i:03d}" for i in range(25)] + ["q/x", "z"]
    for k in keys:
        client.put_object(oss.PutObjectRequest(bucket=bucket, key=k, body=b"."))
    pages = client.list_objects_v2_paginator(limit=7).iter_page(oss.ListObjectsV2Request(bucket=bucket))
    listed = [o.key for page in pages for o in page.contents or []]
    assert listed == sorted(keys)
    top = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, delimiter="/"))
    assert [p.prefix for p in top.common_prefixes] == ["p/", "q/"]
    assert [o.key for o in top.contents] == ["z"] and top.key_count == 3
    v1 = client.list_objects(oss.ListObjectsRequest(bucket=bucket, prefix="p/0", max_keys=5))
    assert v1.is_truncated and len(v1.contents) == 5


def test_uploader_downloader_multipart_with_crc(client: oss.Client, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(3 * 1024 * 1024 + 777)
    src.write_bytes(data)
    result = client.uploader(part_size=512 * 1024).upload_file(
        oss.PutObjectRequest(bucket=bucket, key="mp/obj"), filepath=str(src)
    )
    assert result.etag.strip('"').endswith("-7")
    dst = tmp_path / "dst.bin"
    client.downloader(part_size=400 * 1024).download_file(
        oss.GetObjectRequest(bucket=bucket, key="mp/obj"), filepath=str(dst)
    )
    assert dst.read_bytes() == data
    client.get_object_to_file(oss.GetObjectRequest(bucket=bucket, key="mp/obj"), str(tmp_path / "whole.bin"))
    assert (tmp_path / "whole.bin").read_bytes() == data


def test_copy_and_batch_delete(client: oss.Client, bucket: str) -> None:
    client.put_object(oss.PutObjectRequest(bucket=bucket, key="a", body=b"copy me"))
    client.copy_object(oss.CopyObjectRequest(bucket=bucket, key="b", source_key="a"))
    assert client.get_object(oss.GetObjectRequest(bucket=bucket, key="b")).body.read() == b"copy me"
    deleted = client.delete_multiple_objects(
        oss.DeleteMultipleObjectsRequest(bucket=bucket, objects=[oss.DeleteObject(key="a"), oss.DeleteObject(key="b")])
    )
    assert sorted(d.key for d in deleted.deleted_objects) == ["a", "b"]


def test_presigned_urls(client: oss.Client, bucket: str) -> None:
    put = client.presign(oss.PutObjectRequest(bucket=bucket, key="pre/signed put"))
    # httpx sends no Content-Type for raw bytes; one would be signed-over and must then be presigned too.
    assert httpx.put(put.url, content=b"presigned body").status_code == 200
    get = client.presign(oss.GetObjectRequest(bucket=bucket, key="pre/signed put"))
    assert httpx.get(get.url).content == b"presigned body"
    typed = httpx.put(put.url, content=b"x", headers={"Content-Type": "text/plain"})
    assert typed.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in typed.content


def test_errors(store: StoreProcess, client: oss.Client, bucket: str) -> None:
    with pytest.raises(oss.exceptions.OperationError) as exc:
        client.get_object(oss.GetObjectRequest(bucket=bucket, key="missing"))
    err = service_error(exc)
    assert (err.status_code, err.code) == (404, "NoSuchKey") and len(err.request_id) == 24
    with pytest.raises(oss.exceptions.OperationError) as exc:
        client.head_object(oss.HeadObjectRequest(bucket=bucket, key="missing"))
    assert service_error(exc).code == "NoSuchKey"  # from x-oss-err on HEAD
    bad_key = make_client(store, "v4", key_id="LTAIunknownkey")
    with pytest.raises(oss.exceptions.OperationError) as exc:
        bad_key.head_object(oss.HeadObjectRequest(bucket=bucket, key="missing"))
    assert (service_error(exc).status_code, service_error(exc).code) == (403, "InvalidAccessKeyId")
    bad_secret = make_client(store, "v4", secret="not-the-secret")
    with pytest.raises(oss.exceptions.OperationError) as exc:
        bad_secret.put_object(oss.PutObjectRequest(bucket=bucket, key="k", body=b"x"))
    assert service_error(exc).code == "SignatureDoesNotMatch"
    assert not client.is_object_exist(bucket, "k")
    with pytest.raises(oss.exceptions.OperationError) as exc:
        client.get_object(oss.GetObjectRequest(bucket="no-such-bucket-xyz", key="k"))
    assert service_error(exc).code == "NoSuchBucket"
