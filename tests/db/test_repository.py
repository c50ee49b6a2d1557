"""ossdrop.db.repository and ossdrop.db.session on each real database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ossdrop.db import repository as repo
from ossdrop.db.models import PendingUpload, StorageRecord, StoredObject, UploadState
from ossdrop.db.session import UnsupportedDatabaseError, normalize_url

MD5_A = "0cc175b9c0f1b6a831c399e269772661"
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"


def _record(path: str, *, creator: int = 1, md5: str = MD5_A, size: int = 1, name: str = "a.txt") -> StorageRecord:
    return StorageRecord(name=name, path=path, ext="txt", md5=md5, creator_id=creator, created_at=1000, size=size)


def _add(session: Session, path: str, **kwargs: object) -> StorageRecord:
    record = _record(path, **kwargs)  # type: ignore[arg-type]
    repo.lock_object(session, path=path, md5=record.md5, size=record.size, now=1000)
    repo.add_record(session, record)
    session.commit()
    return record


def _pending(upload_id: str, *, expires_at: int, key: str = "user-dirs/c1/0c/x.txt") -> PendingUpload:
    return PendingUpload(
        upload_id=upload_id,
        object_key=key,
        creator_id=1,
        name="x.txt",
        ext="txt",
        expected_size=5,
        expected_md5=MD5_A,
        state=UploadState.PENDING.value,
        created_at=100,
        expires_at=expires_at,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+pysqlite:///x.db"),
        ("mysql://root@h:3306/db", "mysql+pymysql://root@h:3306/db?charset=utf8mb4"),
        ("mariadb://root@h/db?charset=latin1", "mysql+pymysql://root@h/db?charset=latin1"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_normalize_url_maps_plain_spellings_to_drivers(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_normalize_url_refuses_other_databases() -> None:
    with pytest.raises(UnsupportedDatabaseError, match="oracle"):
        normalize_url("oracle://u@h/db")


def test_connections_are_tuned_per_database(db_engine: Engine) -> None:
    """SQLite: WAL, foreign keys, busy timeout; servers: READ COMMITTED (see ossdrop.db.session)."""
    with db_engine.connect() as conn:
        if db_engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        else:
            assert conn.get_isolation_level() == "READ COMMITTED"


def test_add_and_get_record(session: Session) -> None:
    record = _add(session, "user-dirs/c1/0c/a.txt", name="照片 📷.txt")
    assert record.id > 0
    session.expunge_all()
    got = repo.get_record(session, record.id)
    assert got is not None
    assert (got.name, got.path, got.md5, got.creator_id, got.created_at, got.size) == (
        "照片 📷.txt",
        "user-dirs/c1/0c/a.txt",
        MD5_A,
        1,
        1000,
        1,
    )
    assert repo.get_record(session, record.id + 1000) is None


def test_object_keys_are_case_sensitive(session: Session) -> None:
    repo.lock_object(session, path="user-dirs/A.txt", md5=MD5_A, size=1, now=1)
    repo.lock_object(session, path="user-dirs/a.txt", md5=MD5_B, size=2, now=1)
    session.commit()
    paths = session.scalars(select(StoredObject.path).order_by(StoredObject.md5)).all()
    assert paths == ["user-dirs/A.txt", "user-dirs/a.txt"]


def test_list_by_creator_pages_newest_first(session: Session) -> None:
    mine = [_add(session, f"user-dirs/k{i}", creator=1).id for i in range(5)]
    _add(session, "user-dirs/other", creator=2)
    first = repo.list_by_creator(session, 1, limit=2)
    assert [r.id for r in first.items] == [mine[4], mine[3]]
    assert first.next_cursor == mine[3]
    second = repo.list_by_creator(session, 1, limit=2, before_id=first.next_cursor)
    assert [r.id for r in second.items] == [mine[2], mine[1]]
    third = repo.list_by_creator(session, 1, limit=2, before_id=second.next_cursor)
    assert [r.id for r in third.items] == [mine[0]]
    assert third.next_cursor is None
    exact = repo.list_by_creator(session, 1, limit=5)
    assert exact.next_cursor is None
    assert len(exact.items) == 5
    assert repo.list_by_creator(session, 3, limit=10).items == []
    with pytest.raises(ValueError, match="limit"):
        repo.list_by_creator(session, 1, limit=0)


def test_find_by_md5_respects_creator_size_and_live_objects(session: Session) -> None:
    older = _add(session, "user-dirs/c1/a", creator=1)
    newer = _add(session, "user-dirs/c1/b", creator=1)
    other = _add(session, "user-dirs/c2/a", creator=2)
    _add(session, "user-dirs/c1/other", creator=1, md5=MD5_B)
    found = repo.find_by_md5(session, MD5_A, size=1, creator_id=1)
    assert found is not None
    assert found.id == newer.id
    assert found.id != older.id
    anybody = repo.find_by_md5(session, MD5_A, size=None, creator_id=None)
    assert anybody is not None
    assert anybody.id == other.id
    assert repo.find_by_md5(session, MD5_A, size=2, creator_id=1) is None
    assert repo.find_by_md5(session, MD5_A, size=1, creator_id=3) is None
    # A record whose object row is gone (being deleted) is no dedup candidate.
    session.execute(text("DELETE FROM storage_objects WHERE path = 'user-dirs/c2/a'"))
    session.commit()
    assert repo.find_by_md5(session, MD5_A, size=1, creator_id=2) is None


def test_lock_object_creates_once_and_counts_references(session: Session) -> None:
    first = repo.lock_object(session, path="user-dirs/x", md5=MD5_A, size=3, now=50)
    again = repo.lock_object(session, path="user-dirs/x", md5=MD5_B, size=9, now=60)
    assert (again.path, again.md5, again.size, again.created_at) == ("user-dirs/x", MD5_A, 3, 50)
    assert first is again
    assert repo.count_references(session, "user-dirs/x") == 0
    repo.add_record(session, _record("user-dirs/x"))
    repo.add_record(session, _record("user-dirs/x"))
    assert repo.count_references(session, "user-dirs/x") == 2
    session.commit()
    assert session.scalar(select(text("count(*)")).select_from(StoredObject)) == 1


def test_delete_record_and_object(session: Session) -> None:
    record = _add(session, "user-dirs/y")
    obj = repo.lock_object(session, path="user-dirs/y", md5=MD5_A, size=1, now=1)
    repo.delete_record(session, record)
    repo.delete_object(session, obj)
    session.commit()
    assert repo.get_record(session, record.id) is None
    assert repo.get_object(session, "user-dirs/y") is None


def test_upload_id_is_unique(session: Session) -> None:
    first = _record("user-dirs/z")
    first.upload_id = "u1"
    repo.add_record(session, first)
    session.commit()
    second = _record("user-dirs/z")
    second.upload_id = "u1"
    with pytest.raises(IntegrityError):
        repo.add_record(session, second)
    session.rollback()
    found = repo.get_record_by_upload_id(session, "u1")
    assert found is not None
    assert found.id == first.id


def test_pending_upload_lifecycle(session: Session) -> None:
    repo.add_pending(session, _pending("late", expires_at=300))
    repo.add_pending(session, _pending("early", expires_at=200))
    repo.add_pending(session, _pending("future", expires_at=900))
    done = repo.add_pending(session, _pending("done", expires_at=100))
    session.commit()
    repo.complete_pending(session, done, storage_id=42, now=150)
    session.commit()
    assert [p.upload_id for p in repo.list_stale_pending(session, now=300, limit=10)] == ["early", "late"]
    assert [p.upload_id for p in repo.list_stale_pending(session, now=300, limit=1)] == ["early"]
    early = repo.get_pending(session, "early", lock=True)
    assert early is not None
    repo.expire_pending(session, early, now=310)
    session.commit()
    session.expunge_all()
    states = {p.upload_id: (p.state, p.storage_id, p.completed_at) for p in session.scalars(select(PendingUpload))}
    assert states == {
        "late": ("pending", None, None),
        "early": ("expired", None, 310),
        "future": ("pending", None, None),
        "done": ("completed", 42, 150),
    }
    assert repo.get_pending(session, "nope") is None
    with pytest.raises(IntegrityError):
        repo.add_pending(session, _pending("late", expires_at=1))
