"""Alembic migrations of the app server's tables, shipped inside the package (see :mod:`ossdrop.db.migrate`)."""
