"""SIGKILL in the middle of large uploads: after restart nothing partial is visible and every acknowledged
object reads back with its MD5 (issue 2, storage engine)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest

from tests.conftest import StoreProcess, start_store

CHUNK = b"\xab" * (256 * 1024)


def _bucket(store: StoreProcess) -> oss2.Bucket:
    auth = oss2.Auth(store.access_key_id, store.access_key_secret)
    return oss2.Bucket(auth, store.endpoint, "crash-bucket", connect_timeout=5)


def _slow_body(started: threading.Event, total_chunks: int) -> Iterator[bytes]:
    for i in range(total_chunks):
        if i == 8:
            started.set()
        yield CHUNK


def _upload_until_killed(bucket: oss2.Bucket, key: str, started: threading.Event) -> None:
    try:
        bucket.put_object(key, _slow_body(started, 4000))  # 1 GB, chunked: cut long before the end
    except Exception:  # noqa: BLE001 - the store is killed under us; that is the point
        started.set()


@pytest.mark.slow
def test_sigkill_mid_upload_keeps_acknowledged_and_drops_partial(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = start_store(root)
    bucket = _bucket(store)
    bucket.create_bucket()
    acknowledged: dict[str, str] = {}
    for i in range(20):
        body = os.urandom(64 * 1024 + i)
        bucket.put_object(f"ack/{i}", body)
        acknowledged[f"ack/{i}"] = hashlib.md5(body).hexdigest()
    previous = os.urandom(100_000)
    bucket.put_object("overwritten", previous)
    acknowledged["overwritten"] = hashlib.md5(previous).hexdigest()

    events = [threading.Event() for _ in range(3)]
    keys = ["inflight/new-1", "inflight/new-2", "overwritten"]
    threads = [threading.Thread(target=_upload_until_killed, args=(bucket, k, e)) for k, e in zip(keys, events)]
    for t in threads:
        t.start()
    for e in events:
        assert e.wait(30)
    assert any((root / "tmp").iterdir())  # the uploads are really in flight, on disk
    store.stop(signal.SIGKILL)
    for t in threads:
        t.join(30)

    restarted = start_store(root)
    try:
        bucket = _bucket(restarted)
        listed = {o.key for o in oss2.ObjectIterator(bucket)}
        assert listed == set(acknowledged)
        for key, md5 in acknowledged.items():
            assert hashlib.md5(bucket.get_object(key).read()).hexdigest() == md5, key
        assert list((root / "tmp").iterdir()) == []  # partial uploads cleared at start
    finally:
        restarted.stop()
