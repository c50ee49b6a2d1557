"""Run the packaged Alembic migrations programmatically (``ossdrop db upgrade`` calls :func:`upgrade`).

The migrations live in ``ossdrop/db/migrations`` inside the package, so this works from an installed wheel: no
``alembic.ini`` and no working-directory assumptions. The URL is handed to ``env.py`` through
``Config.attributes`` rather than the ini option, because ini interpolation would mangle a ``%`` in a password.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ossdrop.db.session import create_engine

SCRIPT_LOCATION = "ossdrop.db:migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the packaged migrations against ``database_url``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at ``database_url`` up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database at ``database_url`` down to ``revision`` (default: nothing of ossdrop left)."""
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or ``None`` when it was never migrated."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest packaged revision."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
