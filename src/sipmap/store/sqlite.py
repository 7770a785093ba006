"""The embedded SQLite store (WAL).

Writes go through one connection with group commit (see writer.py). Reads run
inline on their own connection in WAL snapshot isolation; they never wait for the
writer.

Single-row reads by SID (`get`, the hot path of every fetch) are served from a cache
of rows that is valid only while `PRAGMA data_version` on the reading connection
stays the same. That number changes whenever any other connection — our own
writer, or another process such as the `sipmap` CLI — commits to the file, so a read
made after a write was acknowledged never sees the row from before it. The check is
itself a (tiny) read transaction, which is what makes the answer current.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import InvalidPageToken
from ..core.models import M, Model
from ..core.paging import Page, PageRequest
from .schema import COLUMNS, KEYS, SCOPES, TABLES, TEXT_COLUMNS, from_row, to_db, to_row
from .writer import Writer

R = TypeVar("R")

MAX_CACHED_ROWS = 10_000


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


_SCALAR_CLAUSES: dict[tuple[str, ...], str] = {}


def _where(where: dict[str, Any]) -> tuple[str, list[Any]]:
    # Hot path: every value a plain string (SIDs) — one cached clause per key set.
    if all(type(v) is str for v in where.values()):
        names = tuple(where)
        clause = _SCALAR_CLAUSES.get(names)
        if clause is None:
            clause = " AND ".join(f"{n} = ?" for n in names) or "1"
            _SCALAR_CLAUSES[names] = clause
        return clause, list(where.values())
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in where.items():
        if isinstance(value, list | tuple | set | frozenset):
            values = list(value)
            if not values:
                clauses.append("0")
                continue
            clauses.append(f"{name} IN ({','.join('?' * len(values))})")
            params.extend(to_db(v) for v in values)
        elif value is None:
            clauses.append(f"{name} IS NULL")
        else:
            clauses.append(f"{name} = ?")
            params.append(to_db(value))
    return (" AND ".join(clauses) or "1"), params


_INSERT_SQL = {
    model: f"INSERT INTO {table} ({','.join(COLUMNS[model])}) "
    f"VALUES ({','.join('?' * len(COLUMNS[model]))})"
    for model, table in TABLES.items()
}
_SELECT_SQL: dict[tuple[str, str, str], str] = {}


def _select_sql(model: type[Any], clause: str, tail: str) -> str:
    # Statements are few and repeat on every request: build each string once.
    key = (TABLES[model], clause, tail)
    sql = _SELECT_SQL.get(key)
    if sql is None:
        sql = f"SELECT {','.join(COLUMNS[model])} FROM {key[0]} WHERE {clause} {tail}"
        if len(_SELECT_SQL) < 1024:
            _SELECT_SQL[key] = sql
    return sql


class SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _select(
        self, model: type[M], where: dict[str, Any], tail: str = "", *extra: Any
    ) -> list[M]:
        clause, params = _where(where)
        rows = self._conn.execute(_select_sql(model, clause, tail), [*params, *extra]).fetchall()
        return [from_row(model, row) for row in rows]

    def insert(self, obj: Model) -> None:
        model = type(obj)
        self._conn.execute(_INSERT_SQL[model], to_row(obj))

    def update(self, obj: Model) -> None:
        model = type(obj)
        keys = KEYS[model]
        cols = [c for c in COLUMNS[model] if c not in keys]
        sql = (
            f"UPDATE {TABLES[model]} SET {','.join(f'{c} = ?' for c in cols)} "
            f"WHERE {' AND '.join(f'{k} = ?' for k in keys)}"
        )
        self._conn.execute(sql, [to_db(getattr(obj, c)) for c in (*cols, *keys)])

    def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        rows = self._select(model, {"sid": sid, **where}, "LIMIT 1")
        return rows[0] if rows else None

    def find(self, model: type[M], **where: Any) -> list[M]:
        return self._select(model, where, "ORDER BY seq")

    def count(self, model: type[Model], **where: Any) -> int:
        clause, params = _where(where)
        row = self._conn.execute(
            f"SELECT count(*) FROM {TABLES[model]} WHERE {clause}", params
        ).fetchone()
        return int(row[0])

    def delete(self, model: type[Model], **where: Any) -> int:
        table = TABLES[model]
        clause, params = _where(where)
        self._conn.execute(
            f"INSERT OR IGNORE INTO tombstones (tbl, sid, seq, scope) "
            f"SELECT ?, sid, seq, {SCOPES[model]} FROM {table} WHERE {clause}",
            [table, *params],
        )
        return self._conn.execute(f"DELETE FROM {table} WHERE {clause}", params).rowcount

    def _seq_of(self, model: type[Any], sid: str, where: dict[str, Any]) -> int:
        table = TABLES[model]
        # The token's SID is matched on its own: merged into `where`, a filter on `sid`
        # (a subaccount listing accounts) would replace it.
        clause, params = _where(where)
        row = self._conn.execute(
            f"SELECT seq FROM {table} WHERE {clause} AND sid = ?", [*params, sid]
        ).fetchone()
        if row is None:
            sql = "SELECT max(seq) FROM tombstones WHERE tbl = ? AND sid = ?"
            args: list[Any] = [table, sid]
            if SCOPES[model] in where:
                sql += " AND scope = ?"
                args.append(where[SCOPES[model]])
            row = self._conn.execute(sql, args).fetchone()
        if row is None or row[0] is None:
            raise InvalidPageToken()
        return int(row[0])

    def page(self, model: type[M], request: PageRequest, **where: Any) -> Page[M]:
        size = request.page_size
        if request.after_sid is not None:
            seq = self._seq_of(model, request.after_sid, where)
            items = self._select(
                model, {**where}, "AND seq > ? ORDER BY seq LIMIT ?", seq, size + 1
            )
        elif request.before_sid is not None:
            seq = self._seq_of(model, request.before_sid, where)
            items = self._select(model, where, "AND seq < ? ORDER BY seq DESC LIMIT ?", seq, size)
            items.reverse()
            # The item named by the token (or its successor) follows this page.
            return Page(items, request, has_next=True)
        else:
            items = self._select(
                model, where, "ORDER BY seq LIMIT ? OFFSET ?", size + 1, request.page * size
            )
        has_next = len(items) > size
        return Page(items[:size], request, has_next)

    def get_setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class _RowCache:
    """Rows by (model, SID) — None for "no such row" — as of one `data_version`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._version: int | None = None
        self._rows: dict[tuple[type[Any], str], Any] = {}

    def current(self) -> dict[tuple[type[Any], str], Any]:
        """The cached rows, emptied first if anyone committed since they were read."""
        # fetchall: stepping to the end closes the read transaction the pragma opened.
        version = self._conn.execute("PRAGMA data_version").fetchall()[0][0]
        if version != self._version or len(self._rows) >= MAX_CACHED_ROWS:
            self._rows.clear()
            self._version = version
        return self._rows


_MISSING = object()
# The filters a cached row can be checked against in Python exactly as SQL would:
# equality of text columns. None: the SID alone does not name one row (AclMapping).
_CACHE_FILTERS: dict[type[Any], frozenset[str] | None] = {
    model: TEXT_COLUMNS[model] if KEYS[model] == ("sid",) else None for model in TABLES
}


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        write_conn = _connect(self.path)
        migrate(write_conn)
        self._read_conn = _connect(self.path)
        self._read_tx = SqliteTx(self._read_conn)
        self._cache = _RowCache(self._read_conn)
        self._writer = Writer(write_conn, SqliteTx(write_conn))

    # -- reads --------------------------------------------------------------

    def _read(self, conn: sqlite3.Connection, fn: Callable[[SqliteTx], R]) -> R:
        conn.execute("BEGIN")  # one snapshot for every query fn makes
        try:
            return fn(SqliteTx(conn))
        finally:
            conn.execute("COMMIT")

    async def read(self, fn: Callable[[SqliteTx], R]) -> R:
        # Inline on the loop: an indexed SQLite read takes microseconds, far less
        # than a hop to a thread pool and back.
        return self._read(self._read_conn, fn)

    async def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        # The hot path of every fetch: skip the BEGIN/COMMIT pair a read() would add.
        text = _CACHE_FILTERS[model]
        if text is None or not all(
            name in text and type(value) is str for name, value in where.items()
        ):
            return self._read_tx.get(model, sid, **where)
        # The row is cached by SID alone and `where` applied to it, so one entry
        # answers every filter.
        rows = self._cache.current()
        key = (model, sid)
        found = rows.get(key, _MISSING)
        if found is _MISSING:
            # After current(): a row read now is at least as new as the version it is filed under.
            found = rows[key] = self._read_tx.get(model, sid)
        if found is None:
            return None
        for name, value in where.items():
            if getattr(found, name) != value:
                return None
        return found  # type: ignore[no-any-return]

    def read_blocking(self, fn: Callable[[SqliteTx], R]) -> R:
        conn = _connect(self.path)
        try:
            return self._read(conn, fn)
        finally:
            conn.close()

    # -- writes -------------------------------------------------------------

    async def write(self, fn: Callable[[SqliteTx], R]) -> R:
        return await self._writer.write(fn)

    async def close(self) -> None:
        await self._writer.close()
        self._read_conn.close()

    def close_blocking(self) -> None:
        self._writer.close_blocking()
        self._read_conn.close()


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the numbered migrations not yet applied, each in its own transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    folder = resources.files("sipmap.store") / "migrations" / "sqlite"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        version = int(entry.name.split("_", 1)[0])
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Statements one by one: executescript() would commit our transaction.
            for statement in _statements(entry.read_text()):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
