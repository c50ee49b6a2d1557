"""Multipart rules through oss2: part replacement, ETag rule, Complete validation, listing (oss-protocol.md §5.3)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import oss2
import pytest

from tests.conftest import StoreProcess
from tests.signer import v1_headers

PART = 100 * 1024


@pytest.fixture
def bucket(store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    b = oss2.Bucket(oss2.Auth(store.access_key_id, store.access_key_secret), store.endpoint, bucket_name)
    b.create_bucket()
    yield b
    for up in oss2.MultipartUploadIterator(b):
        b.abort_multipart_upload(up.key, up.upload_id)
    for obj in oss2.ObjectIterator(b):
        b.delete_object(obj.key)
    b.delete_bucket()


def upload_parts(bucket: oss2.Bucket, key: str, upload_id: str, chunks: list[bytes]) -> list[oss2.models.PartInfo]:
    infos = []
    for n, data in enumerate(chunks, 1):
        result = bucket.upload_part(key, upload_id, n, data)
        assert result.etag == hashlib.md5(data).hexdigest().upper()
        infos.append(oss2.models.PartInfo(n, result.etag, size=len(data), part_crc=result.crc))
    return infos


def test_complete_follows_the_oss_etag_rule_and_keeps_init_attributes(bucket: oss2.Bucket) -> None:
    init = bucket.init_multipart_upload(
        "mp/video.mp4", headers={"x-oss-meta-src": "cam", "x-oss-object-acl": "public-read"}
    )
    chunks = [os.urandom(PART), os.urandom(PART), b"tail"]
    infos = upload_parts(bucket, "mp/video.mp4", init.upload_id, chunks)
    bucket.upload_part("mp/video.mp4", init.upload_id, 2, chunks[1])  # re-upload replaces, same bytes
    listed = bucket.list_parts("mp/video.mp4", init.upload_id)
    assert [p.part_number for p in listed.parts] == [1, 2, 3] and listed.parts[2].size == 4
    done = bucket.complete_multipart_upload("mp/video.mp4", init.upload_id, infos)
    joined = "".join(hashlib.md5(c).hexdigest().upper() for c in chunks)
    assert done.etag == hashlib.md5(joined.encode()).hexdigest().upper() + "-3"
    obj = bucket.get_object("mp/video.mp4")
    assert obj.read() == b"".join(chunks)
    assert obj.headers["x-oss-meta-src"] == "cam" and obj.headers["Content-Type"] == "video/mp4"
    assert bucket.get_object_acl("mp/video.mp4").acl == "public-read"
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("mp/video.mp4", init.upload_id)


def test_complete_validation(store: StoreProcess, bucket: oss2.Bucket) -> None:
    init = bucket.init_multipart_upload("v")
    infos = upload_parts(bucket, "v", init.upload_id, [os.urandom(1000), os.urandom(PART)])
    with pytest.raises(oss2.exceptions.ServerError) as small:
        bucket.complete_multipart_upload("v", init.upload_id, infos)
    assert small.value.code == "EntityTooSmall"
    # oss2 sorts parts itself, so send an out-of-order body by hand.
    body = (
        "<CompleteMultipartUpload>"
        + "".join(
            f'<Part><PartNumber>{p.part_number}</PartNumber><ETag>"{p.etag}"</ETag></Part>' for p in reversed(infos)
        )
        + "</CompleteMultipartUpload>"
    )
    resource = f"/{bucket.bucket_name}/v?uploadId={init.upload_id}"
    headers = v1_headers("POST", resource, store.access_key_id, store.access_key_secret)
    order = httpx.post(f"{store.endpoint}{resource}", content=body.encode(), headers=headers)
    assert order.status_code == 400 and "<Code>InvalidPartOrder</Code>" in order.text
    wrong = [oss2.models.PartInfo(1, "0" * 32)]
    with pytest.raises(oss2.exceptions.ServerError) as bad:
        bucket.complete_multipart_upload("v", init.upload_id, wrong)
    assert bad.value.code == "InvalidPart"
    assert not bucket.object_exists("v")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("v", "0" * 32, 1, b"x")
    with pytest.raises(oss2.exceptions.ServerError) as number:
        bucket.upload_part("v", init.upload_id, 10001, b"x")
    assert number.value.code == "InvalidArgument"
    bucket.abort_multipart_upload("v", init.upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload("v", init.upload_id)


def test_complete_all_and_uploads_listing(bucket: oss2.Bucket) -> None:
    ids = [bucket.init_multipart_upload(k).upload_id for k in ("a/1", "a/2", "b")]
    listed = list(oss2.MultipartUploadIterator(bucket))
    assert [(u.key, u.upload_id) for u in listed] == sorted(zip(["a/1", "a/2", "b"], ids))
    rolled = bucket.list_multipart_uploads(delimiter="/")
    assert rolled.prefix_list == ["a/"] and [u.key for u in rolled.upload_list] == ["b"]
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        bucket.delete_bucket()  # unfinished uploads count (§5.3 DeleteBucket)
    bucket.upload_part("b", ids[2], 1, b"only part")
    # oss2 would compare the server CRC with one computed over the (empty) part list it sent: turn that off.
    no_crc = oss2.Bucket(bucket.auth, bucket.endpoint, bucket.bucket_name, enable_crc=False)
    done = no_crc.complete_multipart_upload("b", ids[2], [], headers={"x-oss-complete-all": "yes"})
    assert done.status == 200 and bucket.get_object("b").read() == b"only part"
    stat = bucket.get_bucket_stat()
    assert stat.object_count == 1 and stat.storage_size_in_bytes == len(b"only part")
