"""Opening the store a `--db` value names: a PostgreSQL URL, or else an SQLite file path."""

from __future__ import annotations

from pathlib import Path

from .base import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(POSTGRES_SCHEMES)


def open_store(db: str | Path) -> Store:
    if is_postgres(db):
        from .postgres import PostgresStore  # psycopg is loaded only when used

        return PostgresStore(str(db))
    from .sqlite import SqliteStore

    return SqliteStore(db)
