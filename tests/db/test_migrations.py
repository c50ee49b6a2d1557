"""The packaged Alembic migrations on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, Integer, String, inspect, text
from sqlalchemy.engine import make_url

from ossdrop.db import migrate
from ossdrop.db.models import Base
from ossdrop.db.session import create_engine

SEED_COLUMNS = ["id", "name", "path", "ext", "md5", "creator_id", "created_at"]
OSSDROP_TABLES = {"storage", "storage_objects", "pending_uploads"}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_seed_columns_and_md5_index(fresh_url: str) -> None:
    migrate.upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        insp = inspect(engine)
        assert set(insp.get_table_names()) == OSSDROP_TABLES | {"alembic_version"}
        columns = {c["name"]: c for c in insp.get_columns("storage")}
        assert list(columns)[:7] == SEED_COLUMNS
        for name, length in [("name", 256), ("path", 256), ("ext", 32), ("md5", 32)]:
            assert isinstance(columns[name]["type"], String)
            assert columns[name]["type"].length == length
        for name in ["id", "creator_id", "created_at"]:
            assert isinstance(columns[name]["type"], Integer)
        assert isinstance(columns["size"]["type"], BigInteger)
        assert insp.get_pk_constraint("storage")["constrained_columns"] == ["id"]
        indexes = {i["name"]: (i["column_names"], bool(i["unique"])) for i in insp.get_indexes("storage")}
        assert indexes["md5"] == (["md5"], False)
        assert indexes["uq_storage_upload_id"] == (["upload_id"], True)
        assert indexes["ix_storage_creator_id_id"] == (["creator_id", "id"], False)
    finally:
        engine.dispose()
    assert migrate.current_revision(fresh_url) == "0001"
    assert migrate.head_revision() == "0001"


def test_models_match_migrations(fresh_url: str) -> None:
    """Autogenerate finds nothing to change: the models and the revision describe the same schema."""
    migrate.upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_downgrade_then_upgrade_again(fresh_url: str) -> None:
    migrate.upgrade(fresh_url)
    migrate.downgrade(fresh_url)
    assert _tables(fresh_url) == {"alembic_version"}
    assert migrate.current_revision(fresh_url) is None
    migrate.upgrade(fresh_url)
    assert _tables(fresh_url) == OSSDROP_TABLES | {"alembic_version"}
    assert migrate.current_revision(fresh_url) == "0001"


def _seed_ddl(backend: str) -> str:
    if backend == "mysql":  # the seed's statement, minus the schema name and MySQL 8's VISIBLE keyword
        return (
            "CREATE TABLE IF NOT EXISTS `storage` (`id` INT NOT NULL AUTO_INCREMENT,"
            "`name` VARCHAR(256) NOT NULL COMMENT '文件名称', `path` VARCHAR(256) NOT NULL COMMENT 'OOS 路径',"
            "`ext` VARCHAR(32) NOT NULL DEFAULT 0 COMMENT '拓展名称', `md5` VARCHAR(32) NOT NULL COMMENT '资源的MD5 ',"
            "`creator_id` INT(16) NOT NULL DEFAULT 0 COMMENT '创建人id', `created_at` INT(10) NOT NULL DEFAULT 0,"
            "PRIMARY KEY (`id`), INDEX `md5` (`md5` ASC)) ENGINE = InnoDB"
        )
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if backend == "sqlite" else "SERIAL PRIMARY KEY"
    return (
        f"CREATE TABLE storage (id {serial}, name VARCHAR(256) NOT NULL, path VARCHAR(256) NOT NULL,"
        " ext VARCHAR(32) NOT NULL DEFAULT '0', md5 VARCHAR(32) NOT NULL, creator_id INT NOT NULL DEFAULT 0,"
        " created_at INT NOT NULL DEFAULT 0)"
    )


def test_upgrade_adopts_an_existing_seed_table(fresh_url: str) -> None:
    """A team with the seed's table keeps its rows; the new columns and the lock rows are added."""
    engine = create_engine(fresh_url)
    backend = make_url(fresh_url).get_backend_name()
    rows = [
        ("a.jpg", "user-dirs/a.jpg", "jpg", "0" * 32, 7, 100),
        ("b.jpg", "user-dirs/a.jpg", "jpg", "0" * 32, 8, 101),
        ("c.png", "user-dirs/c.png", "png", "1" * 32, 7, 102),
    ]
    try:
        with engine.begin() as conn:
            conn.execute(text(_seed_ddl(backend)))
            if backend != "mysql":
                conn.execute(text("CREATE INDEX md5 ON storage (md5)"))
            for row in rows:
                conn.execute(
                    text(
                        "INSERT INTO storage (name, path, ext, md5, creator_id, created_at) VALUES (:a,:b,:c,:d,:e,:f)"
                    ),
                    dict(zip("abcdef", row, strict=True)),
                )
        migrate.upgrade(fresh_url)
        with engine.connect() as conn:
            kept = conn.execute(
                text("SELECT name, path, ext, md5, creator_id, created_at, size, upload_id FROM storage ORDER BY id")
            ).all()
            objects = conn.execute(text("SELECT path, md5, created_at FROM storage_objects ORDER BY path")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in kept] == [(*row, None, None) for row in rows]
    assert [tuple(r) for r in objects] == [("user-dirs/a.jpg", "0" * 32, 100), ("user-dirs/c.png", "1" * 32, 102)]
