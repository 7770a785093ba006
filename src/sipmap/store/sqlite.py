"""The embedded SQLite store (WAL).

Writes go through one connection with group commit (see writer.py). Reads run
inline on their own connection in WAL snapshot isolation; they never wait for the
writer.

Single-row reads by SID (`get`, the hot path of every fetch) are served from a cache
of rows that is valid only while `PRAGMA data_version` on the reading connection
stays the same. That number changes whenever any other connection — our own
writer, or another process such as the `sipmap` CLI — commits to the file, so a read
made after a write was acknowledged never sees the row from before it. Asking SQLite
costs a read transaction (~4 µs and two `fcntl` calls), so where possible the same
fact is read from the WAL-index header instead (wal_watch.py), in ~0.1 µs.

The same header lets reads share a transaction: beginning and ending one costs
SQLite two `fcntl` calls on the `-shm` file, more than a lookup of a cached page.
So the reading connection keeps one read transaction for the rest of the event
loop's turn (`_ReadSnapshot`) and every read of that turn uses it — for as long as
the header is unchanged, which is exactly when a fresh transaction would see the
same state. A commit by anyone changes the header, and the next read starts a new
transaction. Ending it by the next turn keeps the WAL checkpointable.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import apsw

from ..core.models import M
from .schema import KEYS, TABLES, TEXT_COLUMNS
from .sqltx import SQLITE, SqlTx, pending_migrations
from .wal_watch import WalWatch, open_watch
from .writer import Writer

R = TypeVar("R")

MAX_CACHED_ROWS = 5_000  # per model: seven models, so at most 35,000 rows in all
# The reading connection maps the file rather than read()ing each page it needs into
# a private cache: a fetch of a row not cached walks two B-trees, and with the file
# larger than SQLite's page cache (2 MiB) that was ~1.7 pread calls per fetch. The
# pages are the kernel's page cache, shared, so the mapping costs no memory of its
# own. (What is in the WAL and not yet checkpointed is still read.)
READ_MMAP_BYTES = 1 << 30


def _connect(path: str) -> apsw.Connection:
    # APSW, not the standard sqlite3 module: it begins no transaction of its own (we
    # issue BEGIN/COMMIT ourselves) and costs less around each statement — measured
    # on a lookup by SID, 19.4k instructions against 31.3k, and half the time to read
    # a page of rows (the standard module hands the GIL back and forth per column).
    # It brings its own SQLite, so the file is never opened through the system's
    # library in this process: two SQLite libraries in one process would drop each
    # other's POSIX locks (see docs/operations.md).
    conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteTx(SqlTx):
    dialect = SQLITE

    def __init__(self, conn: apsw.Connection) -> None:
        super().__init__(conn)
        self._reads = conn.cursor()

    def _changed(self, cursor: apsw.Cursor) -> int:
        # APSW's cursors have no rowcount: the connection counts the last statement's.
        return cursor.connection.changes()

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        # One cursor for every statement read whole, rather than a new one each time
        # (~0.3 µs of a lookup by SID's ~1.5). fetchall() ends each statement before
        # the next can begin, and a connection is used by one thread at a time, so none
        # ever overlap. (A scan, which streams, still makes a cursor of its own.)
        return self._reads.execute(sql, params).fetchall()


class _RowCache:
    """Rows by SID, one table per model — None for "no such row" — as of one version of
    the file.

    At most MAX_CACHED_ROWS per model, the least recently used dropped first: bounded
    whatever the tables' sizes, the rows in use stay, and a sweep of one kind of row
    (say, a client reading every IP record) does not push out another (the accounts
    credentials are checked against). Keyed by the SID alone rather than (model, SID):
    a miss makes and later frees one object fewer."""

    def __init__(self, conn: apsw.Connection, watch: WalWatch | None) -> None:
        self._conn = conn
        self._read_version: Callable[[], object] = (
            watch.stamp if watch is not None and watch.usable else self._data_version
        )
        self.version: object = None  # the file's version as current() last read it
        # Only models whose rows have one SID each: an ACL mapping's is its list's.
        self._tables: dict[type[Any], OrderedDict[str, Any]] = {
            model: OrderedDict() for model in TABLES if KEYS[model] == ("sid",)
        }

    def _data_version(self) -> int:
        # fetchall: stepping to the end closes the read transaction the pragma opened.
        version = self._conn.execute("PRAGMA data_version").fetchall()[0][0]
        assert isinstance(version, int)
        return version

    def current(self, model: type[Any]) -> OrderedDict[str, Any] | None:
        """`model`'s cached rows, all emptied first if anyone committed since they were
        read; None if `model`'s rows are not cached."""
        version = self._read_version()
        if version != self.version:
            for rows in self._tables.values():
                rows.clear()
            self.version = version
        return self._tables.get(model)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._tables.values())


class _ReadSnapshot:
    """One read transaction on `conn` for the rest of the loop's turn, while the
    file's version (the WAL-index header) stays what it was when it began."""

    def __init__(self, conn: apsw.Connection, stamp: Callable[[], bytes]) -> None:
        self._conn = conn
        self._stamp = stamp
        self._version: object = None  # None: no transaction open

    def enter(self, version: object = None) -> None:
        """Make the connection's next statement read the file's current state:
        `version`, if the caller has just read it, else read now."""
        if version is None:
            version = self._stamp()
        if self._version == version:
            return
        if self._version is None:
            asyncio.get_running_loop().call_soon(self.end)
        else:
            self._conn.execute("COMMIT")
        # The stamp was read before the transaction's first read: what it sees is at
        # least as new as `version` (wal_watch.py says why).
        self._conn.execute("BEGIN")
        self._version = version

    def end(self) -> None:
        if self._version is not None:
            self._version = None
            self._conn.execute("COMMIT")


_MISSING = object()


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        write_conn = _connect(self.path)
        migrate(write_conn)
        self._read_conn = _connect(self.path)
        self._read_conn.execute(f"PRAGMA mmap_size={READ_MMAP_BYTES}")
        self._read_tx = SqliteTx(self._read_conn)
        # The WAL index exists once a connection has read the file (the migrations did).
        self._watch = open_watch(self.path)
        self._cache = _RowCache(self._read_conn, self._watch)
        # Without a usable header every read makes its own transaction, as SQLite does.
        self._snapshot = (
            _ReadSnapshot(self._read_conn, self._watch.stamp)
            if self._watch is not None and self._watch.usable
            else None
        )
        self._writer = Writer(write_conn, SqliteTx(write_conn))

    # -- reads --------------------------------------------------------------

    def _read(self, conn: apsw.Connection, fn: Callable[[SqliteTx], R]) -> R:
        conn.execute("BEGIN")  # one snapshot for every query fn makes
        try:
            return fn(SqliteTx(conn))
        finally:
            conn.execute("COMMIT")

    async def read(self, fn: Callable[[SqliteTx], R]) -> R:
        # Inline on the loop: an indexed SQLite read takes microseconds, far less
        # than a hop to a thread pool and back.
        if self._snapshot is None:
            return self._read(self._read_conn, fn)
        self._snapshot.enter()  # one snapshot for every query fn makes
        return fn(self._read_tx)

    def _get(self, model: type[M], sid: str, **where: Any) -> M | None:
        if self._snapshot is not None:
            self._snapshot.enter()
        return self._read_tx.get(model, sid, **where)

    async def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        # The hot path of every fetch: skip the BEGIN/COMMIT pair a read() would add.
        if where:
            for name, value in where.items():
                # Filters a cached row can be checked against in Python exactly as SQL
                # would: equality of text columns.
                if name not in TEXT_COLUMNS[model] or type(value) is not str:
                    return self._get(model, sid, **where)
        rows = self._cache.current(model)
        if rows is None:
            return self._get(model, sid, **where)
        # The row is cached by SID alone and `where` applied to it, so one entry
        # answers every filter.
        found = rows.get(sid, _MISSING)
        if found is _MISSING:
            # After current(): a row read now is at least as new as the version it is
            # filed under. (The snapshot takes that version rather than read it again:
            # if it is already the open snapshot's, the row is as of it exactly.)
            if self._snapshot is not None:
                self._snapshot.enter(self._cache.version)
            found = rows[sid] = self._read_tx.get(model, sid)
            if len(rows) > MAX_CACHED_ROWS:
                rows.popitem(last=False)
        else:
            rows.move_to_end(sid)
        if found is None or not where:
            return found  # type: ignore[no-any-return]
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
        self._close_reads()

    def close_blocking(self) -> None:
        self._writer.close_blocking()
        self._close_reads()

    def _close_reads(self) -> None:
        if self._snapshot is not None:
            self._snapshot.end()
        self._read_conn.close()
        if self._watch is not None:
            self._watch.release()  # after the connections: see wal_watch.py


def migrate(conn: apsw.Connection) -> None:
    """Apply the numbered migrations not yet applied, each in its own transaction."""
    for version, script in pending_migrations(conn, SQLITE):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Statements one by one: executescript() would commit our transaction.
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
