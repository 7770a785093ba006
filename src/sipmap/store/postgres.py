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

A connection the server dropped while it sat idle is noticed on its next use and
replaced, and that use repeated: any read, or a write batch that failed at its BEGIN
(before any job ran). A connection that breaks inside a write transaction fails that
batch; repeating it could apply a write twice. The SQL of each operation is in
sqltx.py, shared with SQLite.

Migrations run on open under a session-level advisory lock, so nodes starting together
apply each one exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg

from ..core.models import M, Model
from .batch import MAX_BATCH, Outcome, dispatch
from .sqltx import POSTGRES, SqlTx, pending_migrations, run_isolated

R = TypeVar("R")


class PostgresTx(SqlTx):
    """One transaction's operations: sqltx's SQL in PostgreSQL's dialect."""

    dialect = POSTGRES

    def scan(self, model: type[Model], columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor, fetched SCAN_BATCH rows at a time: a plain one would
        # receive the whole result into client memory before the first row.
        conn: psycopg.Connection[tuple[Any, ...]] = self._conn  # type: ignore[assignment]
        with conn.cursor(name="sipmap_scan") as cursor:
            cursor.itersize = SCAN_BATCH
            cursor.execute(self._scan_sql(model, columns).encode())
            yield from cursor


SCAN_BATCH = 10_000  # rows per round trip of Tx.scan
MAX_IDLE_READERS = 8  # read connections kept open between reads
# The first key of our advisory locks; the second is a hash of the schema's name, so
# stores in different schemas of one database do not wait for each other.
LOCK_CLASS = 0x5109  # "sip"
_SCHEMA_KEY = "hashtext(coalesce(current_schema(), ''))"
_BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"
_WRITE_LOCK = f"SELECT pg_advisory_xact_lock(%s, {_SCHEMA_KEY})"


def _connect(dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
    # autocommit: we issue BEGIN/COMMIT ourselves, as the SQLite store does.
    return psycopg.connect(dsn, autocommit=True)


_Job = tuple[Callable[[PostgresTx], Any], "asyncio.Future[Any]"]


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
            dispatch(self._commit(batch))
        self._conn.close()

    def _commit(self, batch: list[_Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            conn = self._begin()
            tx = PostgresTx(conn)
            conn.execute(_WRITE_LOCK, (LOCK_CLASS,))
            outcomes = run_isolated(conn, tx, batch)
            conn.execute("COMMIT")
        except Exception as exc:
            # The transaction itself failed, so every job in it does. Nothing was
            # written — unless the connection broke during COMMIT: then nobody knows.
            if not self._conn.broken:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("ROLLBACK")
            return [(future, None, exc) for _, future in batch]
        return outcomes

    def _begin(self) -> psycopg.Connection[tuple[Any, ...]]:
        # A connection the server dropped while it sat idle fails at BEGIN, before any
        # job ran: the batch is safe to start again on a new one.
        if not self._conn.broken:
            try:
                self._conn.execute(_BEGIN_WRITE)
                return self._conn
            except psycopg.OperationalError:
                if not self._conn.broken:
                    raise
        self._conn = _connect(self._dsn)
        self._conn.execute(_BEGIN_WRITE)
        return self._conn

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

    def _pooled(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], R]) -> R:
        conn = self._borrow()
        try:
            return work(conn)
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            # Dropped while idle in the pool (a server restart, an idle timeout): a read
            # changes nothing, so it runs again on a new connection.
        finally:
            self._give_back(conn)
        conn = _connect(self.dsn)
        try:
            return work(conn)
        finally:
            self._give_back(conn)

    async def read(self, fn: Callable[[PostgresTx], R]) -> R:
        return await asyncio.to_thread(self._pooled, lambda conn: self._read(conn, fn))

    async def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        # A single statement in autocommit: its own snapshot, no BEGIN/COMMIT round trips.
        return await asyncio.to_thread(
            self._pooled, lambda conn: PostgresTx(conn).get(model, sid, **where)
        )

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
    conn.execute(f"SELECT pg_advisory_lock(%s, {_SCHEMA_KEY})", (LOCK_CLASS + 1,))
    try:
        for version, script in pending_migrations(conn, POSTGRES):
            with conn.transaction():
                # No parameters: psycopg sends the script as one simple query.
                conn.execute(script.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
    finally:
        conn.execute(f"SELECT pg_advisory_unlock(%s, {_SCHEMA_KEY})", (LOCK_CLASS + 1,))
