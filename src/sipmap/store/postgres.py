"""The PostgreSQL store: the same contract as SQLite's, for several nodes sharing one database.

Strategy. psycopg's connections are synchronous, so every statement runs on a thread,
never on the event loop (each one is a network round trip).

Writes go through one writer connection on one thread, with group commit: writes that
queue up while a commit is in flight share the next transaction, each in its own
SAVEPOINT so one that fails takes none of the others down. Every write transaction
starts with `pg_advisory_xact_lock` on a key derived from the schema it writes to, so
writes are serialised across processes too — two sipmap nodes on one database take
turns, and a rule a write function checks (one mapping per IP record, one domain per
network) still holds when it commits. We use the lock rather than SERIALIZABLE because
SERIALIZABLE aborts conflicting transactions, and a batch of unrelated writes would then
have to be retried as a whole; the lock makes them wait instead, never fail. The writer
runs at READ COMMITTED: each statement after the lock sees every write committed
before it (a REPEATABLE READ snapshot would be taken before the lock was granted). The
lock is also why `seq` order is commit order, which keyset page tokens rely on.

Reads run on pooled connections in worker threads: `read` in one REPEATABLE READ, READ
ONLY transaction (one snapshot for every query), `get` as a single autocommit statement.
Nothing is cached: another node may commit at any time.

Migrations run on open under a session-level advisory lock, so nodes starting together
apply each one exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar

import psycopg

from ..core.errors import InvalidPageToken
from ..core.models import M, Model
from ..core.paging import Page, PageRequest
from .schema import COLUMNS, KEYS, SCOPES, TABLES, from_row, to_db, to_row

R = TypeVar("R")

MAX_BATCH = 256  # writes per transaction
MAX_IDLE_READERS = 8  # read connections kept open between reads
# The first key of our advisory locks; the second is a hash of the schema's name, so
# stores in different schemas of one database do not wait for each other.
LOCK_CLASS = 0x5109  # "sip"
_WRITE_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))"


def _connect(dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
    # autocommit: we issue BEGIN/COMMIT ourselves, as the SQLite store does.
    return psycopg.connect(dsn, autocommit=True)


def _where(where: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in where.items():
        if isinstance(value, list | tuple | set | frozenset):
            values = list(value)
            if not values:
                clauses.append("FALSE")
                continue
            clauses.append(f"{name} IN ({','.join(['%s'] * len(values))})")
            params.extend(to_db(v) for v in values)
        elif value is None:
            clauses.append(f"{name} IS NULL")
        else:
            clauses.append(f"{name} = %s")
            params.append(to_db(value))
    return (" AND ".join(clauses) or "TRUE"), params


_INSERT_SQL = {
    model: f"INSERT INTO {table} ({','.join(COLUMNS[model])}) "
    f"VALUES ({','.join(['%s'] * len(COLUMNS[model]))})"
    for model, table in TABLES.items()
}


def _update_sql(model: type[Any]) -> tuple[str, tuple[str, ...]]:
    keys = KEYS[model]
    cols = tuple(c for c in COLUMNS[model] if c not in keys)
    sql = (
        f"UPDATE {TABLES[model]} SET {','.join(f'{c} = %s' for c in cols)} "
        f"WHERE {' AND '.join(f'{k} = %s' for k in keys)}"
    )
    return sql, (*cols, *keys)


_UPDATE_SQL = {model: _update_sql(model) for model in TABLES}


class PostgresTx:
    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def _select(
        self, model: type[M], where: dict[str, Any], tail: str = "", *extra: Any
    ) -> list[M]:
        clause, params = _where(where)
        sql = f"SELECT {','.join(COLUMNS[model])} FROM {TABLES[model]} WHERE {clause} {tail}"
        rows = self._conn.execute(sql, [*params, *extra]).fetchall()
        return [from_row(model, row) for row in rows]

    def insert(self, obj: Model) -> None:
        self._conn.execute(_INSERT_SQL[type(obj)], to_row(obj))

    def update(self, obj: Model) -> None:
        sql, names = _UPDATE_SQL[type(obj)]
        self._conn.execute(sql, [to_db(getattr(obj, name)) for name in names])

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
        assert row is not None
        return int(row[0])

    def delete(self, model: type[Model], **where: Any) -> int:
        table = TABLES[model]
        clause, params = _where(where)
        self._conn.execute(
            f"INSERT INTO tombstones (tbl, sid, seq, scope) "
            f"SELECT %s, sid, seq, {SCOPES[model]} FROM {table} WHERE {clause} "
            "ON CONFLICT DO NOTHING",
            [table, *params],
        )
        return self._conn.execute(f"DELETE FROM {table} WHERE {clause}", params).rowcount

    def _seq_of(self, model: type[Any], sid: str, where: dict[str, Any]) -> int:
        table = TABLES[model]
        # The token's SID is matched on its own: merged into `where`, a filter on `sid`
        # (a subaccount listing accounts) would replace it.
        clause, params = _where(where)
        row = self._conn.execute(
            f"SELECT seq FROM {table} WHERE {clause} AND sid = %s", [*params, sid]
        ).fetchone()
        if row is None:
            sql = "SELECT max(seq) FROM tombstones WHERE tbl = %s AND sid = %s"
            args: list[Any] = [table, sid]
            if SCOPES[model] in where:
                sql += " AND scope = %s"
                args.append(where[SCOPES[model]])
            row = self._conn.execute(sql, args).fetchone()
        if row is None or row[0] is None:
            raise InvalidPageToken()
        return int(row[0])

    def page(self, model: type[M], request: PageRequest, **where: Any) -> Page[M]:
        size = request.page_size
        if request.after_sid is not None:
            seq = self._seq_of(model, request.after_sid, where)
            items = self._select(model, where, "AND seq > %s ORDER BY seq LIMIT %s", seq, size + 1)
        elif request.before_sid is not None:
            seq = self._seq_of(model, request.before_sid, where)
            items = self._select(model, where, "AND seq < %s ORDER BY seq DESC LIMIT %s", seq, size)
            items.reverse()
            # The item named by the token (or its successor) follows this page.
            return Page(items, request, has_next=True)
        else:
            items = self._select(
                model, where, "ORDER BY seq LIMIT %s OFFSET %s", size + 1, request.page * size
            )
        return Page(items[:size], request, len(items) > size)

    def get_setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO settings (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


_Job = tuple[Callable[[PostgresTx], Any], "asyncio.Future[Any]"]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Writer:
    """One connection on one thread; queued writes share a transaction (group commit)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn = _connect(dsn)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sipmap-pg-writer", daemon=True)
        self._thread.start()

    async def write(self, fn: Callable[[PostgresTx], R]) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._jobs.put((fn, future))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            for future, result, error in self._commit(batch):
                # RuntimeError: that loop is closed, so nobody is waiting any more.
                with contextlib.suppress(RuntimeError):
                    future.get_loop().call_soon_threadsafe(_settle, future, result, error)
        self._conn.close()

    def _commit(
        self, batch: list[_Job]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        if self._conn.broken:  # the server went away: the next batch gets a new session
            self._conn = _connect(self._dsn)
        conn, tx = self._conn, PostgresTx(self._conn)
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            conn.execute(_WRITE_LOCK, (LOCK_CLASS,))
            for fn, future in batch:
                conn.execute("SAVEPOINT job")
                try:
                    result = fn(tx)
                except BaseException as exc:  # the job's own failure, reported to its caller
                    conn.execute("ROLLBACK TO SAVEPOINT job")
                    outcomes.append((future, None, exc))
                else:
                    conn.execute("RELEASE SAVEPOINT job")
                    outcomes.append((future, result, None))
            conn.execute("COMMIT")
        except Exception as exc:  # the transaction itself broke: nothing was written
            if not conn.broken:
                conn.execute("ROLLBACK")
            return [(future, None, exc) for _, future in batch]
        return outcomes

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class PostgresStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        with _connect(dsn) as conn:
            migrate(conn)
        self._idle: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._idle_lock = threading.Lock()
        self._writer = _Writer(dsn)

    # -- reads --------------------------------------------------------------

    def _borrow(self) -> psycopg.Connection[tuple[Any, ...]]:
        with self._idle_lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.broken:
                    return conn
                conn.close()
        return _connect(self.dsn)

    def _give_back(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        with self._idle_lock:
            if len(self._idle) < MAX_IDLE_READERS and not conn.broken:
                self._idle.append(conn)
                return
        conn.close()

    def _read(self, conn: psycopg.Connection[tuple[Any, ...]], fn: Callable[[PostgresTx], R]) -> R:
        # One snapshot for every query fn makes.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return fn(PostgresTx(conn))
        finally:
            if not conn.broken:
                conn.execute("ROLLBACK")  # nothing to keep: the transaction only read

    def _pooled(self, fn: Callable[[PostgresTx], R]) -> R:
        conn = self._borrow()
        try:
            return self._read(conn, fn)
        finally:
            self._give_back(conn)

    async def read(self, fn: Callable[[PostgresTx], R]) -> R:
        return await asyncio.to_thread(self._pooled, fn)

    def _get(self, model: type[M], sid: str, where: dict[str, Any]) -> M | None:
        conn = self._borrow()
        try:
            return PostgresTx(conn).get(model, sid, **where)
        finally:
            self._give_back(conn)

    async def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        # A single statement in autocommit: its own snapshot, no BEGIN/COMMIT round trips.
        return await asyncio.to_thread(self._get, model, sid, where)

    def read_blocking(self, fn: Callable[[PostgresTx], R]) -> R:
        with _connect(self.dsn) as conn:
            return self._read(conn, fn)

    # -- writes -------------------------------------------------------------

    async def write(self, fn: Callable[[PostgresTx], R]) -> R:
        return await self._writer.write(fn)

    def _close_readers(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.stop)
        self._close_readers()

    def close_blocking(self) -> None:
        self._writer.stop()
        self._close_readers()


def migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Apply the numbered migrations not yet applied, each in its own transaction.

    A session-level advisory lock is held throughout, so of several nodes starting at
    once one migrates and the others, once it is done, find nothing left to do.
    """
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(current_schema()))", (LOCK_CLASS + 1,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        folder = resources.files("sipmap.store") / "migrations" / "postgres"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".sql"):
                continue
            version = int(entry.name.split("_", 1)[0])
            if version in done:
                continue
            with conn.transaction():
                # No parameters: psycopg sends the script as one simple query.
                conn.execute(entry.read_text().encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (LOCK_CLASS + 1,))
