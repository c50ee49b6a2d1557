"""ossdrop.services.files and ossdrop.services.keys: dedup per scope, verification, idempotent recording and
refcounted deletes, on SQLite, MariaDB and PostgreSQL, including concurrent threads with their own sessions.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ossdrop.db.models import PendingUpload, StorageRecord, StoredObject
from ossdrop.services import files
from ossdrop.services.files import (
    ContentMismatchError,
    UnknownUploadError,
    UnverifiableContentError,
    UploadFacts,
    UploadMismatchError,
)
from ossdrop.services.keys import (
    DedupScope,
    InvalidKeyError,
    ParsedKey,
    ext_of,
    parse_key,
    unhashed_key,
    upload_key,
)
from tests.db.conftest import (  # noqa: F401 - fixtures: db_engine, migrated_url, new_session, session
    fixture_db_engine,
    fixture_migrated_url,
    fixture_new_session,
    fixture_session,
)

T = TypeVar("T")
CONTENT = b"hello ossdrop"
MD5 = hashlib.md5(CONTENT).hexdigest()
OTHER_MD5 = hashlib.md5(b"something else").hexdigest()


def _begin(s: Session, creator: int = 1, *, scope: DedupScope = DedupScope.CREATOR, name: str = "Photo.JPG"):
    return files.begin_upload(
        s, creator_id=creator, name=name, md5=MD5, size=len(CONTENT), scope=scope, now=1000, ttl=60
    )


def _facts(key: str, *, md5: str | None = MD5, etag: str | None = None, size: int = len(CONTENT)) -> UploadFacts:
    return UploadFacts(key=key, size=size, md5=md5, etag=etag, mime_type="image/jpeg", width=4, height=3)


def _count(s: Session, model: type[StorageRecord] | type[StoredObject]) -> int:
    s.rollback()  # a fresh snapshot
    return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for i in 0..count-1 on ``count`` threads started together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


# ------------------------------------------------------------------------------------------------- keys


def test_key_scheme_per_scope() -> None:
    assert upload_key(MD5, "jpg", 7, DedupScope.CREATOR) == f"user-dirs/c7/{MD5[:2]}/{MD5}.jpg"
    assert upload_key(MD5, "", 7, DedupScope.GLOBAL, upload_dir="up/") == f"up/g/{MD5[:2]}/{MD5}"
    off = upload_key(MD5.upper(), "png", 7, DedupScope.OFF, nonce="abcd1234")
    assert off == f"user-dirs/c7/{MD5[:2]}/{MD5}-abcd1234.png"
    assert parse_key(off) == ParsedKey(MD5, "png", DedupScope.OFF, 7, "abcd1234")
    assert parse_key(f"up/g/{MD5[:2]}/{MD5}", upload_dir="up") == ParsedKey(MD5, "", DedupScope.GLOBAL, None, None)
    assert parse_key(f"user-dirs/c0/{MD5[:2]}/{MD5}.jpg").creator_id == 0


def test_unhashed_key_claims_no_md5() -> None:
    key = unhashed_key("jpg", 7, "abcd1234")
    assert key == "user-dirs/c7/u/abcd1234.jpg"
    assert parse_key(key) == ParsedKey(None, "jpg", DedupScope.OFF, 7, "abcd1234")
    assert parse_key(unhashed_key("", 0, "a" * 32, upload_dir="up/"), upload_dir="up").md5 is None
    with pytest.raises(InvalidKeyError, match="upload id"):
        unhashed_key("jpg", 7, "ABC")
    with pytest.raises(InvalidKeyError, match="extension"):
        unhashed_key("j.pg", 7, "abcd1234")


@pytest.mark.parametrize(
    "key",
    [
        "user-dirs/g/u/abcd1234.jpg",  # unhashed keys belong to a creator
        "user-dirs/c7/u/abc.jpg",  # upload id too short
        "user-dirs/c7/u/ABCD1234.jpg",
        f"other/c7/{MD5[:2]}/{MD5}.jpg",  # outside the upload dir
        f"user-dirs/c7/ff/{MD5}.jpg",  # shard does not match
        f"user-dirs/c7/{MD5[:2]}/{MD5.upper()}.jpg",  # not canonical
        f"user-dirs/c07/{MD5[:2]}/{MD5}.jpg",
        f"user-dirs/g/{MD5[:2]}/{MD5}-abcd1234.jpg",  # global keys have no nonce
        f"user-dirs/c7/{MD5[:2]}/{MD5}.j/pg",
        f"user-dirs/c7/{MD5[:2]}/../{MD5}.jpg",
    ],
)
def test_parse_key_refuses_non_canonical_keys(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        parse_key(key)


def test_key_inputs_are_checked() -> None:
    with pytest.raises(InvalidKeyError, match="MD5"):
        upload_key("xyz", "jpg", 1, DedupScope.CREATOR)
    with pytest.raises(InvalidKeyError, match="nonce"):
        upload_key(MD5, "jpg", 1, DedupScope.OFF)
    with pytest.raises(InvalidKeyError, match="nonce"):
        upload_key(MD5, "jpg", 1, DedupScope.CREATOR, nonce="abcd1234")
    with pytest.raises(InvalidKeyError, match="directory"):
        upload_key(MD5, "jpg", 1, DedupScope.CREATOR, upload_dir="a/../b")
    with pytest.raises(InvalidKeyError, match="extension"):
        upload_key(MD5, "j.pg", 1, DedupScope.CREATOR)


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("a.JPG", "jpg"),
        ("archive.tar.gz", "gz"),
        ("noext", ""),
        (".bashrc", ""),
        ("x.", ""),
        ("a.p%g", ""),
        ("dir/a.b/c", ""),
        ("a." + "x" * 17, ""),
        ("C:\\x\\y.Png", "png"),
    ],
)
def test_ext_of(name: str, ext: str) -> None:
    assert ext_of(name) == ext


# ------------------------------------------------------------------------------------------------- recording


def test_record_upload_stores_the_facts(session: Session) -> None:
    pending = _begin(session, 7)
    assert pending.object_key == f"user-dirs/c7/{MD5[:2]}/{MD5}.jpg"
    assert (pending.state, pending.expires_at, pending.expected_size) == ("pending", 1060, len(CONTENT))
    record = files.record_upload(
        session, pending.upload_id, _facts(pending.object_key, etag=f'"{MD5.upper()}"'), now=1010
    )
    session.expunge_all()
    got = session.get(StorageRecord, record.id)
    assert got is not None
    assert (got.name, got.path, got.ext, got.md5, got.creator_id, got.created_at) == (
        "Photo.JPG",
        pending.object_key,
        "jpg",
        MD5,
        7,
        1010,
    )
    assert (got.size, got.mime_type, got.width, got.height, got.etag, got.upload_id) == (
        len(CONTENT),
        "image/jpeg",
        4,
        3,
        MD5.upper(),
        pending.upload_id,
    )
    done = session.scalars(select(PendingUpload)).one()
    assert (done.state, done.storage_id, done.completed_at) == ("completed", record.id, 1010)


def test_repeated_callback_gives_the_same_record(session: Session) -> None:
    pending = _begin(session)
    first = files.record_upload(session, pending.upload_id, _facts(pending.object_key), now=1001)
    second = files.record_upload(session, pending.upload_id, _facts(pending.object_key), now=1002)
    assert second.id == first.id
    assert second.created_at == 1001
    assert _count(session, StorageRecord) == 1


def test_concurrent_repeated_callbacks_give_one_record(session: Session, new_session: sessionmaker[Session]) -> None:
    pending = _begin(session)

    def callback(_: int) -> int:
        with new_session() as s:
            return files.record_upload(s, pending.upload_id, _facts(pending.object_key), now=1001).id

    ids = _in_threads(8, callback)
    assert len(set(ids)) == 1
    assert _count(session, StorageRecord) == 1


def test_etag_stands_in_for_md5_but_not_a_multipart_etag(session: Session) -> None:
    pending = _begin(session)
    with pytest.raises(UnverifiableContentError):
        files.record_upload(session, pending.upload_id, _facts(pending.object_key, md5=None, etag='"ABC-2"'), now=1)
    record = files.record_upload(session, pending.upload_id, _facts(pending.object_key, md5=None, etag=MD5), now=1)
    assert record.md5 == MD5


def test_upload_without_md5_records_the_real_md5(session: Session) -> None:
    pending = files.begin_upload(
        session, creator_id=3, name="a.BIN", md5=None, size=len(CONTENT), scope=DedupScope.CREATOR, now=1, ttl=60
    )
    assert pending.object_key == f"user-dirs/c3/u/{pending.upload_id}.bin" and pending.expected_md5 == ""
    with pytest.raises(ContentMismatchError) as caught:  # the size announced at policy time still counts
        files.record_upload(session, pending.upload_id, _facts(pending.object_key, size=1), now=2)
    assert caught.value.claimed_md5 is None and caught.value.remove_object
    again = files.begin_upload(
        session, creator_id=3, name="b.bin", md5=None, size=None, scope=DedupScope.GLOBAL, now=1, ttl=60
    )
    record = files.record_upload(session, again.upload_id, _facts(again.object_key, md5=None, etag=MD5), now=2)
    assert record.md5 == MD5 and record.path == again.object_key
    found = files.find_duplicate(session, md5=MD5, size=len(CONTENT), creator_id=3, scope=DedupScope.CREATOR)
    assert found is not None and found.id == record.id


def test_content_that_differs_from_the_claim_is_not_recorded(session: Session) -> None:
    pending = _begin(session)
    with pytest.raises(ContentMismatchError) as caught:
        files.record_upload(session, pending.upload_id, _facts(pending.object_key, md5=OTHER_MD5), now=1)
    assert (caught.value.claimed_md5, caught.value.actual_md5, caught.value.remove_object) == (MD5, OTHER_MD5, True)
    assert _count(session, StorageRecord) == 0
    assert _count(session, StoredObject) == 0
    assert session.scalars(select(PendingUpload.state)).one() == "expired"


def test_bad_content_over_a_used_key_must_not_remove_the_object(session: Session) -> None:
    good, bad = _begin(session), _begin(session)
    files.record_upload(session, good.upload_id, _facts(good.object_key), now=1)
    with pytest.raises(ContentMismatchError) as caught:
        files.record_upload(session, bad.upload_id, _facts(bad.object_key, md5=OTHER_MD5), now=2)
    assert caught.value.remove_object is False
    assert _count(session, StorageRecord) == 1


def test_wrong_size_is_a_mismatch(session: Session) -> None:
    pending = _begin(session)
    with pytest.raises(ContentMismatchError):
        files.record_upload(session, pending.upload_id, _facts(pending.object_key, size=len(CONTENT) + 1), now=1)
    assert _count(session, StorageRecord) == 0


def test_unknown_upload_and_wrong_key(session: Session) -> None:
    pending = _begin(session)
    with pytest.raises(UnknownUploadError):
        files.record_upload(session, "f" * 32, _facts(pending.object_key), now=1)
    other_key = upload_key(MD5, "jpg", 2, DedupScope.CREATOR)
    with pytest.raises(UploadMismatchError):
        files.record_upload(session, pending.upload_id, _facts(other_key), now=1)
    assert session.scalars(select(PendingUpload.state)).one() == "pending"


def test_expired_upload_is_still_recorded_and_stale_listing(session: Session) -> None:
    late, lost = _begin(session), _begin(session)
    assert files.stale_uploads(session, now=1059) == []
    assert [p.upload_id for p in files.stale_uploads(session, now=1060)] == [late.upload_id, lost.upload_id]
    assert files.expire_upload(session, lost.upload_id, now=1061) is True
    assert files.expire_upload(session, lost.upload_id, now=1062) is False
    assert files.expire_upload(session, late.upload_id, now=1062) is True
    record = files.record_upload(session, late.upload_id, _facts(late.object_key), now=2000)
    assert record.upload_id == late.upload_id
    assert files.stale_uploads(session, now=5000) == []


# ------------------------------------------------------------------------------------------------- dedup


def test_creator_scope_dedups_only_within_a_creator(session: Session) -> None:
    mine = _begin(session, 1)
    files.record_upload(session, mine.upload_id, _facts(mine.object_key), now=1)
    found = files.find_duplicate(session, md5=MD5.upper(), size=len(CONTENT), creator_id=1, scope=DedupScope.CREATOR)
    assert found is not None
    assert found.path == mine.object_key
    assert files.find_duplicate(session, md5=MD5, size=len(CONTENT), creator_id=2, scope=DedupScope.CREATOR) is None
    assert files.find_duplicate(session, md5=MD5, size=99, creator_id=1, scope=DedupScope.CREATOR) is None
    theirs = _begin(session, 2)
    assert theirs.object_key != mine.object_key
    copy = files.record_copy(session, found, creator_id=1, name="again.png", now=5)
    assert copy is not None
    assert (copy.path, copy.name, copy.ext, copy.md5, copy.size, copy.width) == (
        mine.object_key,
        "again.png",
        "png",
        MD5,
        len(CONTENT),
        4,
    )
    assert _count(session, StoredObject) == 1


def test_global_scope_shares_across_creators_and_off_never_dedups(session: Session) -> None:
    first = _begin(session, 1, scope=DedupScope.GLOBAL)
    assert first.object_key == f"user-dirs/g/{MD5[:2]}/{MD5}.jpg"
    files.record_upload(session, first.upload_id, _facts(first.object_key), now=1)
    found = files.find_duplicate(session, md5=MD5, size=len(CONTENT), creator_id=2, scope=DedupScope.GLOBAL)
    assert found is not None
    assert found.creator_id == 1
    assert files.find_duplicate(session, md5=MD5, size=len(CONTENT), creator_id=1, scope=DedupScope.OFF) is None
    off_a, off_b = _begin(session, 1, scope=DedupScope.OFF), _begin(session, 1, scope=DedupScope.OFF)
    assert off_a.object_key != off_b.object_key
    assert parse_key(off_a.object_key).md5 == MD5


def test_record_copy_is_idempotent_and_refuses_a_deleted_object(session: Session) -> None:
    pending = _begin(session)
    original = files.record_upload(session, pending.upload_id, _facts(pending.object_key), now=1)
    one = files.record_copy(session, original, creator_id=1, name="b.jpg", now=2, upload_id="i1")
    two = files.record_copy(session, original, creator_id=1, name="b.jpg", now=3, upload_id="i1")
    assert one is not None and two is not None
    assert one.id == two.id
    assert files.delete_file(session, one.id).remove_object is False
    assert files.delete_file(session, original.id).remove_object is True
    assert files.record_copy(session, original, creator_id=1, name="c.jpg", now=4) is None
    assert _count(session, StorageRecord) == 0
    assert _count(session, StoredObject) == 0


def test_proof_of_possession() -> None:
    rng = random.Random(7)
    data = bytes(range(256)) * 1024
    first, last = files.proof_range(len(data), rng=rng)
    assert 0 <= first <= last < len(data)
    assert 32 * 1024 <= last - first + 1 <= 64 * 1024
    chunk = data[first : last + 1]
    assert files.proof_matches(chunk, hashlib.md5(chunk).hexdigest().upper()) is True
    assert files.proof_matches(chunk, hashlib.md5(data).hexdigest()) is False
    assert files.proof_range(10, rng=rng) == (0, 9)
    with pytest.raises(ValueError):
        files.proof_range(0)


# ------------------------------------------------------------------------------------------------- deletes


def _shared_records(session: Session, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        pending = _begin(session)
        ids.append(files.record_upload(session, pending.upload_id, _facts(pending.object_key), now=1).id)
    return ids


def test_delete_removes_the_object_with_the_last_reference(session: Session) -> None:
    first, second = _shared_records(session, 2)
    assert files.delete_file(session, first, creator_id=2) == files.DeleteResult(False, False, None)
    key = upload_key(MD5, "jpg", 1, DedupScope.CREATOR)
    assert files.delete_file(session, first, creator_id=1) == files.DeleteResult(True, False, key)
    assert files.delete_file(session, first) == files.DeleteResult(False, False, None)
    assert files.delete_file(session, second) == files.DeleteResult(True, True, key)
    assert _count(session, StoredObject) == 0


def test_concurrent_deletes_remove_the_object_exactly_once(
    session: Session, new_session: sessionmaker[Session]
) -> None:
    ids = _shared_records(session, 12)

    def delete(i: int) -> files.DeleteResult:
        with new_session() as s:
            return files.delete_file(s, ids[i])

    results = _in_threads(len(ids), delete)
    assert [r.deleted for r in results] == [True] * 12
    assert sum(r.remove_object for r in results) == 1
    assert _count(session, StorageRecord) == 0
    assert _count(session, StoredObject) == 0


def test_concurrent_deletes_of_one_record(session: Session, new_session: sessionmaker[Session]) -> None:
    (only,) = _shared_records(session, 1)

    def delete(_: int) -> files.DeleteResult:
        with new_session() as s:
            return files.delete_file(s, only)

    results = _in_threads(6, delete)
    assert sum(r.deleted for r in results) == 1
    assert sum(r.remove_object for r in results) == 1
    assert _count(session, StoredObject) == 0


def test_fifty_concurrent_uploads_of_the_same_content(session: Session, new_session: sessionmaker[Session]) -> None:
    pendings = [_begin(session) for _ in range(50)]
    assert len({p.object_key for p in pendings}) == 1

    def upload(i: int) -> tuple[int, str | None]:
        with new_session() as s:
            record = files.record_upload(s, pendings[i].upload_id, _facts(pendings[i].object_key), now=1000 + i)
            return record.id, record.upload_id

    results = _in_threads(50, upload)
    assert len({rid for rid, _ in results}) == 50
    assert [uid for _, uid in results] == [p.upload_id for p in pendings]
    assert _count(session, StorageRecord) == 50
    assert session.scalars(select(StoredObject.path)).all() == [pendings[0].object_key]
    assert set(session.scalars(select(PendingUpload.state))) == {"completed"}


def test_concurrent_copies_and_deletes_keep_lock_rows_consistent(
    session: Session, new_session: sessionmaker[Session]
) -> None:
    """Copies racing the deletes of every existing reference: afterwards a stored-object row exists exactly for
    the keys that records reference, and each deleted-last object was reported once.
    """
    ids = _shared_records(session, 10)
    source = session.get(StorageRecord, ids[0])
    assert source is not None
    session.expunge(source)  # a detached snapshot the threads can read

    def work(i: int) -> object:
        with new_session() as s:
            if i % 2:
                return files.delete_file(s, ids[i // 2])
            return files.record_copy(s, source, creator_id=1, name="c.jpg", now=5)

    results = _in_threads(20, work)
    copies = [r for r in results if isinstance(r, StorageRecord)]
    removed = sum(1 for r in results if isinstance(r, files.DeleteResult) and r.remove_object)
    assert _count(session, StorageRecord) == len(copies)
    objects = session.scalars(select(StoredObject.path)).all()
    assert objects == ([source.path] if copies else [])
    assert removed == (0 if copies else 1)
