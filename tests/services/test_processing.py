"""The derived-result cache, the worker bound and saveas, without HTTP (services/processing.py, styles.py)."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ossdrop.core.errors import OSSError
from ossdrop.media.limits import Limits
from ossdrop.media.result import Processed
from ossdrop.protocol.process_spec import ProcessSpec, parse_process
from ossdrop.services import styles
from ossdrop.services.objects import commit_put
from ossdrop.services.processing import DerivedCache, Loader, ProcessingService, run_pipeline
from ossdrop.storage.base import Bucket, ObjectAttrs, ObjectRecord
from ossdrop.storage.filesystem import FilesystemStorage

SPEC = parse_process("image/resize,w_10")


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[FilesystemStorage]:
    store = FilesystemStorage(str(tmp_path / "root"))
    store.create_bucket(Bucket("b", 0.0, "cn-hangzhou"))
    yield store
    store.close()


def put(storage: FilesystemStorage, key: str, data: bytes) -> ObjectRecord:
    writer = storage.new_blob()
    writer.write(data)
    return commit_put(storage, "b", key, writer.finish(), ObjectAttrs(), now=1.0, promised_md5=None,
                      forbid_overwrite=False)  # fmt: skip


def jpeg(color: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), color).save(buffer, "JPEG")
    return buffer.getvalue()


class Counting:
    """A pipeline that records its runs and the most it saw running at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.runs = 0
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, path: str, spec: ProcessSpec, record: ObjectRecord, limits: Limits, load: Loader) -> Processed:
        with self._lock:
            self.runs += 1
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        return Processed(f"{record.etag}:{spec.canonical()}".encode(), "text/plain")


def service(storage: FilesystemStorage, tmp_path: Path, pipeline: Counting, **kwargs: int) -> ProcessingService:
    cache = DerivedCache(str(tmp_path / "derived"), kwargs.pop("max_bytes", 1 << 20))
    return ProcessingService(storage, cache, pipeline=pipeline, **kwargs)


def test_second_request_is_a_file_read(storage: FilesystemStorage, tmp_path: Path) -> None:
    pipeline = Counting()
    svc = service(storage, tmp_path, pipeline)
    record = put(storage, "k", b"source")
    first = asyncio.run(svc.render(record, SPEC))
    again = asyncio.run(svc.render(record, SPEC))
    assert pipeline.runs == 1 and first.read() == again.read() and again.body is None
    assert again.content_type == "text/plain"


def test_a_changed_source_is_never_stale(storage: FilesystemStorage, tmp_path: Path) -> None:
    pipeline = Counting()
    svc = service(storage, tmp_path, pipeline)
    old = asyncio.run(svc.render(put(storage, "k", b"one"), SPEC)).read()
    new = asyncio.run(svc.render(put(storage, "k", b"two"), SPEC)).read()
    assert pipeline.runs == 2 and old != new


def test_identical_concurrent_requests_share_one_run(storage: FilesystemStorage, tmp_path: Path) -> None:
    pipeline = Counting(delay=0.1)
    svc = service(storage, tmp_path, pipeline)
    record = put(storage, "k", b"x")

    async def burst() -> list[bytes]:
        return [d.read() for d in await asyncio.gather(*(svc.render(record, SPEC) for _ in range(8)))]

    assert len(set(asyncio.run(burst()))) == 1 and pipeline.runs == 1


def test_workers_are_bounded_and_the_loop_keeps_running(storage: FilesystemStorage, tmp_path: Path) -> None:
    pipeline = Counting(delay=0.05)
    svc = service(storage, tmp_path, pipeline, workers=2)
    records = [put(storage, f"k{n}", b"x") for n in range(6)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> None:
        await asyncio.gather(ticker(), *(svc.render(r, SPEC) for r in records))

    asyncio.run(main())
    assert pipeline.runs == 6 and pipeline.most == 2 and ticks == 10


def test_torn_file_is_a_miss(storage: FilesystemStorage, tmp_path: Path) -> None:
    pipeline = Counting()
    svc = service(storage, tmp_path, pipeline)
    record = put(storage, "k", b"x")
    derived = asyncio.run(svc.render(record, SPEC))
    with open(derived.path, "r+b") as fh:
        fh.truncate(derived.offset + 1)
    assert asyncio.run(svc.render(record, SPEC)).read() == derived.read()
    assert pipeline.runs == 2


def test_cache_size_is_bounded(storage: FilesystemStorage, tmp_path: Path) -> None:
    pipeline = Counting()
    svc = service(storage, tmp_path, pipeline, max_bytes=2000)
    for n in range(60):
        asyncio.run(svc.render(put(storage, f"k{n}", b"x"), SPEC))
    files = [p for p in (tmp_path / "derived").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 2000 and len(files) < 60


def test_errors_are_not_cached(storage: FilesystemStorage, tmp_path: Path) -> None:
    svc = ProcessingService(storage, DerivedCache(str(tmp_path / "d"), 1 << 20))
    record = put(storage, "k", b"not an image")
    for _ in range(2):
        with pytest.raises(OSSError):
            asyncio.run(svc.render(record, SPEC))
    assert svc.runs == 2


def test_real_pipeline_and_saveas(storage: FilesystemStorage, tmp_path: Path) -> None:
    svc = ProcessingService(storage, DerivedCache(str(tmp_path / "d"), 1 << 20), pipeline=run_pipeline)
    record = put(storage, "src.jpg", jpeg())
    spec = parse_process("image/resize,w_20/format,png|sys/saveas,o_ZHN0LnBuZw")
    size = asyncio.run(svc.save_as(record, spec, bucket="b", key="dst.png", now=5.0))
    saved = storage.head_object("b", "dst.png")
    assert saved.size == size and saved.attrs.content_type == "image/png"
    assert Image.open(storage.blob_path(saved.blob_id)).size == (20, 10)
    with pytest.raises(OSSError) as exc:
        asyncio.run(svc.save_as(record, spec, bucket="missing", key="x", now=5.0))
    assert exc.value.code == "NoSuchBucket"


def test_styles_resolve_and_limit(storage: FilesystemStorage) -> None:
    styles.put_style(storage, "b", "s", "image/resize,w_5", now=1.0)
    resolved = styles.resolve(storage, "b", parse_process("style/s|sys/saveas,o_eA"))
    assert resolved.canonical() == parse_process("image/resize,w_5").canonical()
    assert resolved.save_as is not None and resolved.save_as.key == "x"
    replaced = styles.put_style(storage, "b", "s", "image/resize,w_6", now=2.0)
    assert (replaced.created, replaced.modified) == (1.0, 2.0)
    with pytest.raises(OSSError) as exc:
        styles.put_style(storage, "b", "loop", "style/s", now=1.0)
    assert exc.value.code == "InvalidArgument"
    for n in range(49):
        styles.put_style(storage, "b", f"n{n}", "image/info", now=1.0)
    with pytest.raises(OSSError):
        styles.put_style(storage, "b", "one-too-many", "image/info", now=1.0)
    styles.delete_style(storage, "b", "s")
    with pytest.raises(OSSError) as exc:
        styles.get_style(storage, "b", "s")
    assert exc.value.code == "NoSuchStyle" and exc.value.status == 404
    assert len(styles.list_styles(storage, "b")) == 49
    assert not os.path.exists(os.path.join(storage.root, "derived"))
