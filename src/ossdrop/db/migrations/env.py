"""Alembic environment: runs the revisions on the URL or connection that :mod:`ossdrop.db.migrate` passes in.

Nothing here reads the environment or an ini file: the caller puts ``database_url`` (or an open ``connection``)
into ``config.attributes``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ossdrop.db.models import Base
from ossdrop.db.session import create_engine, normalize_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = create_engine(attributes["database_url"])
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run_offline() -> None:
    url = normalize_url(context.config.attributes["database_url"])
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
