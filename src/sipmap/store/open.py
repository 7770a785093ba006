"""Opening the store a `--db` value names: a PostgreSQL URL, or else an SQLite file path.

Whatever makes a `--db` unusable — no such file or directory, a directory, a file
that is not a database, a database the process may not write, a server that does not
answer — is reported as one `StoreUnavailable`, before anything is served.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import apsw

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


def open_store(
    db: str | Path, *, create: bool = True, writable: bool = True, timeout: float | None = None
) -> Store:
    """The store `db` names. `create`: a missing SQLite file may be created;
    `writable`: refuse a database this process cannot write (checked by trying);
    `timeout`: --db-timeout, for PostgreSQL (SQLite waits for its file lock instead)."""
    if is_postgres(db):
        import psycopg  # loaded only when used

        from .postgres import DEFAULT_TIMEOUT, PostgresStore

        try:
            return PostgresStore(str(db), timeout=timeout or DEFAULT_TIMEOUT)
        except psycopg.Error as error:
            raise StoreUnavailable(_first_line(error)) from None
    path = Path(db)
    _check_sqlite(path, create=create, writable=writable)
    from .sqlite import SqliteStore

    try:
        return SqliteStore(path)
    except apsw.Error as error:
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
    mode = apsw.SQLITE_OPEN_READWRITE if writable else apsw.SQLITE_OPEN_READONLY
    try:
        conn = apsw.Connection(str(path), flags=mode)
    except apsw.Error as error:
        raise StoreUnavailable(_first_line(error)) from None
    try:
        conn.set_busy_timeout(30_000)
        conn.execute("PRAGMA schema_version").fetchall()  # reads the header: is it SQLite?
        if writable:
            # Opened read-write, SQLite falls back to read-only on a write-protected
            # file without saying so; only a write tells. Rolled back: nothing changes.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE sipmap_write_probe (x)")
            finally:
                conn.execute("ROLLBACK")
    except apsw.ReadOnlyError:
        raise StoreUnavailable("is read-only, and this command writes to it") from None
    except apsw.NotADBError:
        raise StoreUnavailable("is not an SQLite database") from None
    except apsw.Error as error:
        raise StoreUnavailable(_first_line(error)) from None
    finally:
        conn.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
