"""``x-oss-process`` through the store over HTTP with both official SDKs (issue 5; oss-protocol.md §7, §8)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from PIL import Image

from ossdrop.core.operations import urlsafe_b64encode
from ossdrop.protocol.process_spec import parse_process
from ossdrop.services.processing import DerivedCache
from tests.conftest import StoreProcess
from tests.media.test_snapshot import encode_clip, frame_image, read_number
from tests.objectserver.test_sdk_v2 import make_client

RESIZE = "image/resize,m_{},w_150,h_80"


def jpeg(size: tuple[int, int] = (200, 100), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def decode(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.fixture(params=["v1", "v4"])
def bucket(request: pytest.FixtureRequest, store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    auth_class = oss2.Auth if request.param == "v1" else oss2.AuthV4
    b = oss2.Bucket(auth_class(store.access_key_id, store.access_key_secret), store.endpoint, bucket_name,
                    region="cn-hangzhou")  # fmt: skip
    b.create_bucket(oss2.BUCKET_ACL_PRIVATE)
    b.put_object("photo.jpg", jpeg())
    yield b
    for obj in oss2.ObjectIterator(b):
        b.delete_object(obj.key)
    for style in b.list_bucket_style().styles:
        b.delete_bucket_style(style.name)
    b.delete_bucket()


def error_code(response: requests.Response) -> str:
    return response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]


@pytest.mark.parametrize(("mode", "size"), [("lfit", (150, 75)), ("mfit", (160, 80)), ("fill", (150, 80)),
                                            ("pad", (150, 80)), ("fixed", (150, 80))])  # fmt: skip
def test_resize_worked_example(bucket: oss2.Bucket, mode: str, size: tuple[int, int]) -> None:
    got = bucket.get_object("photo.jpg", process=RESIZE.format(mode))
    assert got.headers["Content-Type"] == "image/jpeg"
    assert "x-oss-hash-crc64ecma" not in got.headers
    assert decode(got.read()).size == size


def test_processed_download_to_file_has_no_source_crc(bucket: oss2.Bucket, tmp_path: Path) -> None:
    target = tmp_path / "small.png"
    bucket.get_object_to_file("photo.jpg", str(target), process="image/resize,w_50/format,png")
    image = Image.open(target)
    assert image.format == "PNG" and image.size == (50, 25)


def test_info_reports_stored_file_size_as_json(bucket: oss2.Bucket) -> None:
    got = bucket.get_object("photo.jpg", process="image/info")
    assert got.headers["Content-Type"].startswith("application/json")
    info = json.loads(got.read())
    assert info["FileSize"]["value"] == str(bucket.head_object("photo.jpg").content_length)
    assert (info["ImageWidth"]["value"], info["ImageHeight"]["value"], info["Format"]["value"]) == ("200", "100", "jpg")
    hue = json.loads(bucket.get_object("photo.jpg", process="image/average-hue").read())
    assert hue["RGB"].startswith("0x")


BAD = ["image/resize,m_bogus,w_10", "image/resize,w_0", "image/quality,q_image", "image/nosuchaction,x_1",
       "image/resize,w_10,zz_1", "video/snapshot,t_-5"]  # fmt: skip


@pytest.mark.parametrize("process", BAD)
def test_bad_values_are_invalid_argument(bucket: oss2.Bucket, process: str) -> None:
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_object("photo.jpg", process=process)
    assert exc.value.status == 400 and exc.value.code == "InvalidArgument"


def test_style_api_and_style_processing(bucket: oss2.Bucket) -> None:
    bucket.put_bucket_style("thumb", "image/resize,m_fixed,w_40,h_30")
    bucket.put_bucket_style("half", "image/resize,p_50")
    got = bucket.get_bucket_style("thumb")
    assert (got.name, got.content) == ("thumb", "image/resize,m_fixed,w_40,h_30")
    assert got.create_time.endswith("GMT") and got.last_modify_time
    assert sorted(s.name for s in bucket.list_bucket_style().styles) == ["half", "thumb"]
    assert decode(bucket.get_object("photo.jpg", process="style/thumb").read()).size == (40, 30)
    assert decode(bucket.get_object("photo.jpg", process="style/half").read()).size == (100, 50)
    bucket.put_bucket_style("thumb", "image/resize,m_fixed,w_20,h_10")  # a changed style is a new result
    assert decode(bucket.get_object("photo.jpg", process="style/thumb").read()).size == (20, 10)
    bucket.delete_bucket_style("thumb")
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_bucket_style("thumb")
    assert exc.value.status == 404 and exc.value.code == "NoSuchStyle"
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_object("photo.jpg", process="style/thumb")
    assert exc.value.status == 404 and exc.value.code == "NoSuchStyle"


def test_style_content_is_validated(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_bucket_style("bad", "image/resize,m_bogus,w_1")
    assert exc.value.code == "InvalidArgument"
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.put_bucket_style("bad name!", "image/resize,w_1")
    assert exc.value.code == "InvalidArgument"


def test_at_most_fifty_styles(bucket: oss2.Bucket) -> None:
    for n in range(50):
        bucket.put_bucket_style(f"s{n}", "image/resize,w_10")
    bucket.put_bucket_style("s0", "image/resize,w_20")  # replacing one is fine
    with pytest.raises(oss2.exceptions.ServerError):
        bucket.put_bucket_style("s50", "image/resize,w_10")


def test_presigned_url_with_process(bucket: oss2.Bucket) -> None:
    url = bucket.sign_url("GET", "photo.jpg", 300, params={"x-oss-process": RESIZE.format("lfit")})
    response = requests.get(url)
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (150, 75)


def test_anonymous_processing_follows_the_acl(bucket: oss2.Bucket, store: StoreProcess) -> None:
    bucket.put_object("public.jpg", jpeg(), headers={"x-oss-object-acl": "public-read"})
    base = f"{store.endpoint}/{bucket.bucket_name}"
    response = requests.get(f"{base}/public.jpg", params={"x-oss-process": "image/resize,w_20"})
    assert response.status_code == 200 and decode(response.content).size == (20, 10)
    denied = requests.get(f"{base}/photo.jpg", params={"x-oss-process": "image/resize,w_20"})
    assert denied.status_code == 403 and error_code(denied) == "AccessDenied"


def test_saveas_stores_the_result(bucket: oss2.Bucket) -> None:
    target = "thumbs/photo 1.png"
    process = f"image/resize,w_60/format,png|sys/saveas,o_{urlsafe_b64encode(target)}"
    result = bucket.process_object("photo.jpg", process)
    assert (result.bucket, result.object, result.process_status) == (bucket.bucket_name, target, "OK")
    stored = bucket.get_object(target)
    body = stored.read()
    assert stored.headers["Content-Type"] == "image/png" and result.fileSize == len(body)
    assert decode(body).size == (60, 30)
    names = sorted(obj.key for obj in oss2.ObjectIterator(bucket))
    assert names == ["photo.jpg", target]  # derived results never show in the listing


def test_saveas_to_another_bucket_and_errors(bucket: oss2.Bucket) -> None:
    other = oss2.Bucket(bucket.auth, bucket.endpoint, bucket.bucket_name + "-to", region="cn-hangzhou")
    other.create_bucket()
    try:
        spec = f"image/resize,w_10|sys/saveas,o_{urlsafe_b64encode('x.jpg')},b_{urlsafe_b64encode(other.bucket_name)}"
        assert bucket.process_object("photo.jpg", spec).bucket == other.bucket_name
        assert decode(other.get_object("x.jpg").read()).size == (10, 5)
        with pytest.raises(oss2.exceptions.ServerError) as exc:
            bucket.process_object("photo.jpg", "image/resize,w_10")  # no saveas tail
        assert exc.value.code == "InvalidArgument"
        with pytest.raises(oss2.exceptions.NoSuchBucket):
            bucket.process_object("photo.jpg", f"image/resize,w_10|sys/saveas,o_eA,b_{urlsafe_b64encode('nope-b')}")
    finally:
        other.delete_object("x.jpg")
        other.delete_bucket()


def _derived_path(store: StoreProcess, bucket: oss2.Bucket, key: str, process: str) -> Path:
    etag = bucket.head_object(key).etag
    digest = DerivedCache.digest(bucket.bucket_name, key, etag, parse_process(process).canonical())
    return store.root / "derived" / digest[:2] / digest


def test_cache_hit_and_invalidation(bucket: oss2.Bucket, store: StoreProcess) -> None:
    process = "image/resize,w_32"
    first = bucket.get_object("photo.jpg", process=process).read()
    derived = _derived_path(store, bucket, "photo.jpg", process)
    assert derived.exists()
    stamp = derived.stat().st_mtime_ns
    assert bucket.get_object("photo.jpg", process=process).read() == first
    assert derived.stat().st_mtime_ns == stamp  # served from the file, not rewritten
    bucket.put_object("photo.jpg", jpeg((100, 100), (10, 200, 10)))  # new ETag -> new derived key
    changed = decode(bucket.get_object("photo.jpg", process=process).read())
    assert changed.size == (32, 32) and changed.getpixel((16, 16))[1] > 150  # type: ignore[index]
    assert _derived_path(store, bucket, "photo.jpg", process) != derived


def test_watermark_object_change_invalidates(bucket: oss2.Bucket) -> None:
    bucket.put_object("mark.png", jpeg((20, 20), (0, 0, 255)))
    mark = urlsafe_b64encode("mark.png")
    process = f"image/watermark,image_{mark},g_nw,x_0,y_0/format,png"
    blue = decode(bucket.get_object("photo.jpg", process=process).read()).convert("RGB").getpixel((5, 5))
    bucket.put_object("mark.png", jpeg((20, 20), (0, 255, 0)))
    green = decode(bucket.get_object("photo.jpg", process=process).read()).convert("RGB").getpixel((5, 5))
    assert blue[2] > 200 and green[1] > 200  # type: ignore[index]


def test_video_snapshot(bucket: oss2.Bucket, tmp_path: Path) -> None:
    clip = encode_clip(tmp_path / "n.mp4", [frame_image(n) for n in range(75)])
    bucket.put_object_from_file("clip.mp4", str(clip))
    got = bucket.get_object("clip.mp4", process="video/snapshot,t_2000,f_png,w_160")
    assert got.headers["Content-Type"] == "image/png" and "x-oss-hash-crc64ecma" not in got.headers
    image = decode(got.read())
    assert image.size == (160, 120) and read_number(image) == 50
    assert read_number(decode(bucket.get_object("clip.mp4", process="video/snapshot,t_1000,f_jpg").read())) == 25


def test_non_image_source_is_refused(bucket: oss2.Bucket) -> None:
    bucket.put_object("text.txt", b"not an image")
    with pytest.raises(oss2.exceptions.ServerError) as exc:
        bucket.get_object("text.txt", process="image/resize,w_10")
    assert exc.value.status == 400


# -- the V2 SDK ------------------------------------------------------------------------------------------------
@pytest.fixture(params=["v4", "v1"])
def v2(request: pytest.FixtureRequest, store: StoreProcess, bucket_name: str) -> Iterator[tuple[oss.Client, str]]:
    client = make_client(store, request.param)
    client.put_bucket(oss.PutBucketRequest(bucket=bucket_name))
    client.put_object(oss.PutObjectRequest(bucket=bucket_name, key="p.jpg", body=jpeg()))
    yield client, bucket_name
    for key in ("p.jpg", "saved.jpg"):
        client.delete_object(oss.DeleteObjectRequest(bucket=bucket_name, key=key))
    client.delete_bucket(oss.DeleteBucketRequest(bucket=bucket_name))


def test_v2_get_object_with_process_and_presign(v2: tuple[oss.Client, str]) -> None:
    client, name = v2
    got = client.get_object(oss.GetObjectRequest(bucket=name, key="p.jpg", process=RESIZE.format("mfit")))
    assert got.content_type == "image/jpeg" and decode(got.body.read()).size == (160, 80)
    signed = client.presign(oss.GetObjectRequest(bucket=name, key="p.jpg", process=RESIZE.format("pad")))
    response = requests.get(signed.url)
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (150, 80)


def test_v2_styles_and_process_object(v2: tuple[oss.Client, str]) -> None:
    client, name = v2
    style = oss.models.StyleContent(content="image/resize,w_30")
    client.put_style(oss.PutStyleRequest(bucket=name, style_name="small", style=style))
    got = client.get_style(oss.GetStyleRequest(bucket=name, style_name="small"))
    assert (got.style.name, got.style.content) == ("small", "image/resize,w_30")
    listed = client.list_style(oss.ListStyleRequest(bucket=name))
    assert [s.name for s in listed.style_list.styles] == ["small"]
    image = client.get_object(oss.GetObjectRequest(bucket=name, key="p.jpg", process="style/small"))
    assert decode(image.body.read()).size == (30, 15)
    saved = client.process_object(oss.ProcessObjectRequest(
        bucket=name, key="p.jpg", process=f"style/small|sys/saveas,o_{urlsafe_b64encode('saved.jpg')}"))  # fmt: skip
    assert (saved.bucket, saved.key, saved.process_status) == (name, "saved.jpg", "OK") and saved.file_size > 0
    client.delete_style(oss.DeleteStyleRequest(bucket=name, style_name="small"))
    with pytest.raises(oss.exceptions.OperationError) as exc:
        client.get_style(oss.GetStyleRequest(bucket=name, style_name="small"))
    inner = exc.value.unwrap()
    assert isinstance(inner, oss.exceptions.ServiceError) and inner.code == "NoSuchStyle"
