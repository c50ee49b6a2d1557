"""Prefix/delimiter listing as a sequence of index seeks (oss-protocol.md §5.3 ListObjects semantics).

Each common prefix costs one seek past everything under it, so listing ``dir/`` style trees stays fast with a
million objects.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator

from ossdrop.storage.base import ObjectPage, ObjectRecord
from ossdrop.storage.metadb import OBJECT_COLUMNS, object_from_row, successor


def list_page(
    conn: sqlite3.Connection, bucket: str, prefix: str, delimiter: str, marker: str, max_keys: int
) -> ObjectPage:
    """Keys under ``prefix`` strictly after ``marker``, rolled up at ``delimiter``, at most ``max_keys`` entries."""
    p, d, m = prefix.encode(), delimiter.encode(), marker.encode()
    upper = successor(p) if p else None
    lower, inclusive = (p, True) if m < p else (m, False)
    objects: list[ObjectRecord] = []
    prefixes: list[str] = []
    while len(objects) + len(prefixes) < max_keys:
        rows = _fetch(conn, bucket, lower, inclusive, upper, max_keys - len(objects) - len(prefixes))
        first = next(rows, None)
        if first is None:
            return ObjectPage(objects, prefixes, False, "")
        for row in itertools.chain([first], rows):
            key = row[1]
            assert isinstance(key, bytes)
            cut = key.find(d, len(p)) if d else -1
            if cut < 0:
                objects.append(object_from_row(row))
                lower, inclusive = key, False
                continue
            common = key[: cut + len(d)]
            if common > m:  # a prefix equal to the marker was returned on the previous page
                prefixes.append(common.decode("utf-8"))
            nxt = successor(common)
            if nxt is None:
                return ObjectPage(objects, prefixes, False, "")
            lower, inclusive = nxt, True
            break
    truncated = next(_fetch(conn, bucket, lower, inclusive, upper, 1), None) is not None
    last = _last_name(objects, prefixes)
    return ObjectPage(objects, prefixes, truncated, last if truncated else "")


def _last_name(objects: list[ObjectRecord], prefixes: list[str]) -> str:
    names = [o.key for o in objects[-1:]] + prefixes[-1:]
    return max(names, key=lambda s: s.encode()) if names else ""


def _fetch(
    conn: sqlite3.Connection, bucket: str, lower: bytes, inclusive: bool, upper: bytes | None, limit: int
) -> Iterator[tuple[object, ...]]:
    """Rows in key order, fetched lazily: after a common prefix the caller stops reading and seeks past it."""
    op = ">=" if inclusive else ">"
    sql = f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key {op} ?"  # noqa: S608 - fixed fragments
    args: list[object] = [bucket, lower]
    if upper is not None:
        sql += " AND key < ?"
        args.append(upper)
    sql += " ORDER BY key LIMIT ?"
    args.append(limit)
    return iter(conn.execute(sql, args))
