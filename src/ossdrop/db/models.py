"""SQLAlchemy models: the ``storage`` table of the seed (extended), stored objects and pending uploads.

``storage`` keeps the seed's columns with their names and meaning (``id``, ``name``, ``path``, ``ext``, ``md5``,
``creator_id``, ``created_at`` unix seconds, index ``md5``) so a team that already has the seed's MySQL table can
adopt ossdrop; the other columns are nullable or defaulted, and the first migration adds them to such a table.

``storage_objects`` has one row per object key that at least one ``storage`` row references. Its row is the lock
that serialises everything touching one object: recording a new reference and deleting the last one both lock it
first (``SELECT ... FOR UPDATE``), so "is anybody else still using this object?" has one true answer.

``pending_uploads`` has one row per issued upload policy, so an upload whose callback never arrived can be found
and reconciled against the store later.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

# Object keys are case-sensitive in OSS; MySQL's default collation is not, so keys compare byte-wise there.
_KEY_TYPE: TypeEngine[str] = String(256).with_variant(mysql.VARCHAR(256, collation="utf8mb4_bin"), "mysql", "mariadb")
_MYSQL_TABLE_ARGS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


class Base(DeclarativeBase):
    """Declarative base of all ossdrop tables (``Base.metadata`` is what the migrations describe)."""


class UploadState(StrEnum):
    """Lifecycle of a pending upload: ``pending`` until recorded (``completed``) or given up (``expired``)."""

    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"


class StorageRecord(Base):
    """One file as a user sees it: a name pointing at an object key (``path``).

    Several records may share one ``path`` (deduplicated content); ``upload_id`` is the pending upload that
    produced the record (``None`` for instant uploads and adopted rows) and is unique, which makes callback
    recording idempotent.
    """

    __tablename__ = "storage"
    __table_args__ = (
        Index("md5", "md5"),
        Index("ix_storage_creator_id_id", "creator_id", "id"),
        Index("ix_storage_path", "path"),
        Index("uq_storage_upload_id", "upload_id", unique=True),
        _MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    path: Mapped[str] = mapped_column(_KEY_TYPE)
    ext: Mapped[str] = mapped_column(String(32), default="", server_default="")
    md5: Mapped[str] = mapped_column(String(32))
    creator_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    size: Mapped[int | None] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(String(128))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)
    etag: Mapped[str | None] = mapped_column(String(64))
    upload_id: Mapped[str | None] = mapped_column(String(64))


class StoredObject(Base):
    """One object in the store that records reference; the row exists exactly while references exist."""

    __tablename__ = "storage_objects"
    __table_args__ = (_MYSQL_TABLE_ARGS,)

    path: Mapped[str] = mapped_column(_KEY_TYPE, primary_key=True)
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(Integer)


class PendingUpload(Base):
    """An issued upload policy: where the object must land, for whom, and what it is expected to be.

    ``expected_size``/``expected_md5`` are the client's claims at policy time; ``expires_at`` (unix seconds) is
    when the policy stops being usable; ``storage_id`` is the record made on completion.
    """

    __tablename__ = "pending_uploads"
    __table_args__ = (
        Index("ix_pending_uploads_state_expires_at", "state", "expires_at"),
        Index("ix_pending_uploads_object_key", "object_key"),
        UniqueConstraint("upload_id", name="uq_pending_uploads_upload_id"),
        _MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(_KEY_TYPE)
    creator_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    ext: Mapped[str] = mapped_column(String(32), default="", server_default="")
    expected_size: Mapped[int | None] = mapped_column(BigInteger)
    expected_md5: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=UploadState.PENDING.value)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    completed_at: Mapped[int | None] = mapped_column(Integer)
    storage_id: Mapped[int | None] = mapped_column(Integer)
