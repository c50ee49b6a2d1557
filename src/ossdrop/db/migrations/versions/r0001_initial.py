"""Initial schema: storage (the seed's table, extended), storage_objects, pending_uploads.

When a ``storage`` table already exists (a team that ran the seed's ``CREATE TABLE``), it is adopted: the
missing columns and indexes are added and its rows are kept. ``storage_objects`` is then filled with one row per
referenced object key. Downgrading drops all three tables, an adopted ``storage`` included.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _key_type() -> sa.types.TypeEngine[str]:
    # Object keys are case-sensitive; MySQL's default collation is not.
    return sa.String(256).with_variant(mysql.VARCHAR(256, collation="utf8mb4_bin"), "mysql", "mariadb")


def _extra_storage_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mime_type", sa.String(128), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("etag", sa.String(64), nullable=True),
        sa.Column("upload_id", sa.String(64), nullable=True),
    ]


def _create_storage() -> None:
    op.create_table(
        "storage",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("path", _key_type(), nullable=False),
        sa.Column("ext", sa.String(32), nullable=False, server_default=""),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Integer(), nullable=False, server_default="0"),
        *_extra_storage_columns(),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("md5", "storage", ["md5"])


def _adopt_storage(inspector: sa.Inspector) -> None:
    existing = {column["name"] for column in inspector.get_columns("storage")}
    for column in _extra_storage_columns():
        if column.name not in existing:
            op.add_column("storage", column)
    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("storage")}
    if ("md5",) not in indexed:
        op.create_index("md5", "storage", ["md5"])


def _create_storage_objects() -> None:
    op.create_table(
        "storage_objects",
        sa.Column("path", _key_type(), primary_key=True),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    # Adopted rows reference objects too; every referenced key gets its lock row.
    op.execute(
        "INSERT INTO storage_objects (path, md5, size, created_at) "
        "SELECT path, MIN(md5), MAX(size), MIN(created_at) FROM storage GROUP BY path"
    )


def _create_pending_uploads() -> None:
    op.create_table(
        "pending_uploads",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("upload_id", sa.String(64), nullable=False),
        sa.Column("object_key", _key_type(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("ext", sa.String(32), nullable=False, server_default=""),
        sa.Column("expected_size", sa.BigInteger(), nullable=True),
        sa.Column("expected_md5", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.Integer(), nullable=True),
        sa.Column("storage_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("upload_id", name="uq_pending_uploads_upload_id"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_pending_uploads_state_expires_at", "pending_uploads", ["state", "expires_at"])
    op.create_index("ix_pending_uploads_object_key", "pending_uploads", ["object_key"])


def upgrade() -> None:
    """Create (or adopt) ``storage``, then create ``storage_objects`` and ``pending_uploads``."""
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table("storage"):
        _adopt_storage(inspector)
    else:
        _create_storage()
    op.create_index("ix_storage_creator_id_id", "storage", ["creator_id", "id"])
    op.create_index("ix_storage_path", "storage", ["path"])
    op.create_index("uq_storage_upload_id", "storage", ["upload_id"], unique=True)
    _create_storage_objects()
    _create_pending_uploads()


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_table("pending_uploads")
    op.drop_table("storage_objects")
    op.drop_table("storage")
