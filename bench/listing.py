"""Listing stays fast with a million objects: time per ListObjects page at 1k and 1M objects, in one run.

Rows are inserted straight into the metadata database (the blobs are irrelevant to listing), under a
``dir-NNN/file-NNNNNN`` layout with 1000 top-level prefixes. Prints each figure with the 1k-object baseline and the
ratio. Usage: ``python bench/listing.py [--objects 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from ossdrop.storage.base import Bucket, ObjectAttrs, ObjectRecord
from ossdrop.storage.filesystem import FilesystemStorage
from ossdrop.storage.metadb import OBJECT_COLUMNS, object_row


def populate(storage: FilesystemStorage, count: int) -> None:
    storage.create_bucket(Bucket("bench", 0.0, "cn-hangzhou"))
    template = object_row(ObjectRecord("bench", "k", "0" * 32, 1, "E" * 32, 0, "", 0.0, ObjectAttrs()))
    rows = ((template[0], f"dir-{i % 1000:03d}/file-{i:07d}".encode(), *template[2:]) for i in range(count))
    with storage._db.write() as db:  # noqa: SLF001 - bulk load for the benchmark only
        db.executemany(f"INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)


def time_ms(fn: object, repeat: int = 20) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        storage = FilesystemStorage(str(Path(tmp) / "root"))
        populate(storage, count)
        cases = {
            "flat page of 1000": lambda: storage.list_objects("bench", max_keys=1000),
            "delimiter '/' at root, 1000 prefixes": lambda: storage.list_objects("bench", delimiter="/", max_keys=1000),
            "prefix dir-500/ page of 100": lambda: storage.list_objects("bench", prefix="dir-500/", max_keys=100),
            "deep marker page of 100": lambda: storage.list_objects("bench", marker="dir-900/", max_keys=100),
        }
        result = {name: time_ms(fn) for name, fn in cases.items()}
        storage.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1_000_000)
    args = parser.parse_args()
    small, large = measure(1000), measure(args.objects)
    print(f"{'listing':42} {'1k objects':>12} {f'{args.objects:,} objects':>18} {'ratio':>7}")
    for name in small:
        print(f"{name:42} {small[name]:10.2f}ms {large[name]:16.2f}ms {large[name] / small[name]:7.2f}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "listing.json").write_text(json.dumps({"small": small, "large": large, "objects": args.objects}, indent=2))


if __name__ == "__main__":
    main()
