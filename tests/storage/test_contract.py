"""The storage seam's contract: every backend must pass this suite (see ``storage/base.py``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ossdrop.core.checksums import crc64, etag_of, multipart_etag
from ossdrop.core.errors import OSSError
from ossdrop.storage.base import Bucket, ObjectAttrs, ObjectRecord, Storage, Upload
from ossdrop.storage.filesystem import FilesystemStorage, new_upload_id


@pytest.fixture(params=["filesystem"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend = FilesystemStorage(str(tmp_path / "root"))
    backend.create_bucket(Bucket("b", 1.0, "cn-hangzhou"))
    yield backend
    backend.close()


def put(storage: Storage, key: str, data: bytes, *, forbid: bool = False, bucket: str = "b") -> ObjectRecord:
    writer = storage.new_blob()
    writer.write(data)
    blob = writer.finish()
    record = ObjectRecord(bucket, key, blob.blob_id, blob.size, etag_of(blob.md5), blob.crc64, "", 2.0, ObjectAttrs())
    try:
        storage.put_object(record, forbid_overwrite=forbid)
    except OSSError:
        storage.remove_blob(blob.blob_id)
        raise
    return record


def read(storage: Storage, bucket: str, key: str) -> bytes:
    return Path(storage.blob_path(storage.head_object(bucket, key).blob_id)).read_bytes()


def test_buckets(storage: Storage) -> None:
    assert [b.name for b in storage.list_buckets()] == ["b"]
    with pytest.raises(OSSError) as err:
        storage.create_bucket(Bucket("b", 1.0, "cn-hangzhou"))
    assert err.value.code == "BucketAlreadyExists"
    storage.update_bucket("b", acl="public-read")
    assert storage.get_bucket("b").acl == "public-read"
    put(storage, "k", b"x")
    with pytest.raises(OSSError) as err:
        storage.delete_bucket("b")
    assert err.value.code == "BucketNotEmpty"
    storage.delete_object("b", "k")
    storage.delete_bucket("b")
    with pytest.raises(OSSError) as err:
        storage.get_bucket("b")
    assert err.value.code == "NoSuchBucket"


def test_put_overwrite_forbid_and_delete(storage: Storage) -> None:
    first = put(storage, "k", b"one")
    assert first.etag == hashlib.md5(b"one").hexdigest().upper() and first.crc64 == crc64(b"one")
    put(storage, "k", b"two")
    assert read(storage, "b", "k") == b"two"
    assert not os.path.exists(storage.blob_path(first.blob_id))  # the replaced blob is gone
    with pytest.raises(OSSError) as err:
        put(storage, "k", b"three", forbid=True)
    assert err.value.code == "FileAlreadyExists"
    assert read(storage, "b", "k") == b"two"
    assert storage.delete_object("b", "k") is True
    assert storage.delete_object("b", "k") is False
    with pytest.raises(OSSError) as err:
        storage.head_object("b", "k")
    assert err.value.code == "NoSuchKey"
    with pytest.raises(OSSError) as err:
        put(storage, "k", b"x", bucket="missing")
    assert err.value.code == "NoSuchBucket"


def test_any_key_is_just_a_key(storage: Storage) -> None:
    keys = ["a", "a/b", "a/b/", "../x", "sp ace", "plus+%", "中文", "\x01ctl", "é" * 300]
    for k in keys:
        put(storage, k, k.encode())
    for k in keys:
        assert read(storage, "b", k) == k.encode()


def test_listing_prefix_delimiter_marker_in_byte_order(storage: Storage) -> None:
    keys = ["a/1", "a/2", "a/b/3", "b", "c/", "c/d", "é", "z/1", "z/2"]
    for k in keys:
        put(storage, k, b".")
    page = storage.list_objects("b", max_keys=1000)
    assert [o.key for o in page.objects] == sorted(keys, key=lambda s: s.encode())
    page = storage.list_objects("b", delimiter="/", max_keys=1000)
    assert [o.key for o in page.objects] == ["b", "é"] and page.prefixes == ["a/", "c/", "z/"]
    page = storage.list_objects("b", prefix="a/", delimiter="/")
    assert [o.key for o in page.objects] == ["a/1", "a/2"] and page.prefixes == ["a/b/"]
    first = storage.list_objects("b", delimiter="/", max_keys=2)
    assert first.truncated and first.prefixes == ["a/"] and [o.key for o in first.objects] == ["b"]
    assert first.next_marker == "b"
    second = storage.list_objects("b", delimiter="/", marker=first.next_marker, max_keys=2)
    # Byte order: "é" (0xC3 0xA9) sorts after "z/".
    assert second.prefixes == ["c/", "z/"] and second.objects == [] and second.truncated
    third = storage.list_objects("b", delimiter="/", marker=second.next_marker, max_keys=2)
    assert [o.key for o in third.objects] == ["é"] and third.prefixes == [] and not third.truncated
    after_prefix = storage.list_objects("b", delimiter="/", marker="c/", max_keys=10)
    assert after_prefix.prefixes == ["z/"] and [o.key for o in after_prefix.objects] == ["é"]


def test_multipart_complete_and_abort(storage: Storage) -> None:
    upload = Upload(new_upload_id(), "b", "mp", 3.0, ObjectAttrs(content_type="video/mp4"))
    storage.create_upload(upload)
    chunks = [os.urandom(1000), os.urandom(2000), os.urandom(10)]
    parts = []
    for i, data in enumerate(chunks, 1):
        w = storage.new_blob()
        w.write(data)
        parts.append(storage.put_part(upload, i, w.finish()))
    assert [p.number for p in storage.list_parts(upload)] == [1, 2, 3]
    etag = multipart_etag([p.etag for p in parts])
    record = storage.complete_upload(upload, parts, etag=etag)
    whole = b"".join(chunks)
    assert read(storage, "b", "mp") == whole
    assert record.crc64 == crc64(whole) and record.size == len(whole) and record.object_type == "Multipart"
    assert record.attrs.content_type == "video/mp4"
    with pytest.raises(OSSError) as err:
        storage.get_upload("b", "mp", upload.upload_id)
    assert err.value.code == "NoSuchUpload"
    other = Upload(new_upload_id(), "b", "mp2", 3.0, ObjectAttrs())
    storage.create_upload(other)
    assert [u.key for u in storage.list_uploads("b")] == ["mp2"]
    storage.abort_upload(other)
    assert storage.list_uploads("b") == []


def test_clone_blob_survives_source_delete(storage: Storage) -> None:
    src = put(storage, "src", b"payload")
    clone = storage.clone_blob(src.blob_id)
    storage.delete_object("b", "src")
    assert Path(storage.blob_path(clone)).read_bytes() == b"payload"


def test_discarded_writer_leaves_nothing(storage: Storage, tmp_path: Path) -> None:
    w = storage.new_blob()
    w.write(b"partial")
    w.discard()
    assert os.listdir(tmp_path / "root" / "tmp") == []
    assert storage.list_objects("b").objects == []


def test_state_survives_reopen(tmp_path: Path) -> None:
    first = FilesystemStorage(str(tmp_path / "r"))
    first.create_bucket(Bucket("b", 1.0, "cn-hangzhou"))
    put(first, "k", b"durable")
    first.close()
    again = FilesystemStorage(str(tmp_path / "r"))
    assert read(again, "b", "k") == b"durable"
    again.close()
