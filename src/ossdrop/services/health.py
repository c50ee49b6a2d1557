"""Is the app server able to work? The database and the store must answer."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from ossdrop.client.oss import OssClient, StoreError


def check_health(engine: Engine, store: OssClient) -> list[str]:
    """What is wrong (empty when healthy)."""
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        problems.append(f"database: {type(exc).__name__}")
    try:
        store.ping()
    except StoreError as exc:
        problems.append(f"store: {exc}")
    return problems
