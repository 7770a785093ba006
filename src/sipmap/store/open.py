"""Opening the store a `--db` value names: a PostgreSQL URL, or else an SQLite file path."""

from __future__ import annotations

from pathlib import Path

from .base import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(POSTGRES_SCHEMES)


def open_store(db: str | Path, *, timeout: float | None = None) -> Store:
    """`timeout`: --db-timeout, for PostgreSQL (SQLite waits for its file lock instead)."""
    if is_postgres(db):
        from .postgres import DEFAULT_TIMEOUT, PostgresStore  # psycopg is loaded only when used

        return PostgresStore(str(db), timeout=timeout or DEFAULT_TIMEOUT)
    from .sqlite import SqliteStore

    return SqliteStore(db)
