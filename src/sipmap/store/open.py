"""Opening the store a `--db` value names: a PostgreSQL URL, or else an SQLite file path.

Whatever makes a `--db` unusable — no such file or directory, a directory, a file
that is not a database, a database the process may not write, a server that does not
answer — is reported as one `StoreUnavailable`, before anything is served.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .base import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreUnavailable(Exception):
    """The database `--db` names cannot be used; the message says why, in one line."""


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith(POSTGRES_SCHEMES)


def shown(db: str | Path) -> str:
    """`db` as it may be printed: a URL's password replaced by `***`."""
    text = str(db)
    if not is_postgres(text):
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_store(db: str | Path, *, create: bool = True, writable: bool = True) -> Store:
    """The store `db` names. `create`: a missing SQLite file may be created;
    `writable`: refuse a database this process cannot write (checked by trying)."""
    if is_postgres(db):
        import psycopg  # loaded only when used

        from .postgres import PostgresStore

        try:
            return PostgresStore(str(db))
        except psycopg.Error as error:
            raise StoreUnavailable(_first_line(error)) from None
    path = Path(db)
    _check_sqlite(path, create=create, writable=writable)
    from .sqlite import SqliteStore

    try:
        return SqliteStore(path)
    except sqlite3.Error as error:
        raise StoreUnavailable(_first_line(error)) from None


def _check_sqlite(path: Path, *, create: bool, writable: bool) -> None:
    if path.is_dir():
        raise StoreUnavailable("is a directory, not a database file")
    if not path.exists():
        if not path.parent.is_dir():
            raise StoreUnavailable(f"directory {path.parent} does not exist")
        if not create:
            raise StoreUnavailable("no such database file")
        return
    mode = "rw" if writable else "ro"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30)
    except sqlite3.Error as error:
        raise StoreUnavailable(_first_line(error)) from None
    try:
        conn.isolation_level = None
        conn.execute("PRAGMA schema_version").fetchall()  # reads the header: is it SQLite?
        if writable:
            # Opened read-write, SQLite falls back to read-only on a write-protected
            # file without saying so; only a write tells. Rolled back: nothing changes.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE sipmap_write_probe (x)")
            finally:
                conn.execute("ROLLBACK")
    except sqlite3.Error as error:
        if getattr(error, "sqlite_errorname", "") == "SQLITE_READONLY":
            raise StoreUnavailable("is read-only, and this command writes to it") from None
        if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise StoreUnavailable("is not an SQLite database") from None
        raise StoreUnavailable(_first_line(error)) from None
    finally:
        conn.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
