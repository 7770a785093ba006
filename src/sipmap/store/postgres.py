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

Every write transaction also learns the change-log position it reached (feed.py);
once a node follows the log, a write returns only after its own entries were applied
to the node's recogniser, and every so many positions the writer trims the log to the
newest LOG_KEEP entries.

The row cache. Once a node follows the log, `get` answers from rows kept in memory
(feed_cache.py) while the node holds its lease, and a write returns only once every
other node holding a lease has applied it too (leases.py): the leases live at the
moment of the commit are read in the COMMIT's own round trip. So a write acknowledged
by any node is seen by the next read on every node, cached or not.

Outages. Every call is bounded by `timeout` (--db-timeout): connecting, and waiting
for a read, a write or the feed. Past it, or on a connection error, the caller gets
DatabaseUnavailable (HTTP 503) — never a hang or a 500. Nothing needs restarting:
the next use connects again. The threads are bounded too: every round of statements
on a connection runs under a deadline of the same length (deadline.py), past which the
connection is cut — a server that hangs with its connections open answers nothing,
and no TCP timeout would end the wait.

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
import logging
import math
import os
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg

from ..core.errors import DatabaseUnavailable
from ..core.models import M, Model
from .batch import MAX_BATCH, Outcome, dispatch
from .deadline import UNBOUNDED, Deadline, Overran, Watchdog
from .feed import ChangeFeed, Publish, Rebuild
from .feed_cache import MISSING, FeedCache, cacheable, matches
from .leases import LIVE, Lease, Peer, live_of, peers
from .sqltx import POSTGRES, SqlTx, pending_migrations, run_isolated

R = TypeVar("R")

log = logging.getLogger("sipmap.store")
DEFAULT_TIMEOUT = 5.0  # seconds; --db-timeout
LOG_KEEP = 100_000  # change-log entries kept; a node further behind reloads in full
TRIM_EVERY = 1_000  # positions between trims
_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


class PostgresTx(SqlTx):
    """One transaction's operations: sqltx's SQL in PostgreSQL's dialect."""

    dialect = POSTGRES

    def __init__(
        self, conn: psycopg.Connection[tuple[Any, ...]], deadline: Deadline = UNBOUNDED
    ) -> None:
        super().__init__(conn)
        self._deadline = deadline  # renewed for each round trip of a scan

    def scan(self, model: type[Model], columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor, fetched SCAN_BATCH rows at a time: a plain one would
        # receive the whole result into client memory before the first row. A scan
        # may take long in all (a full load): the deadline covers each round trip
        # anew, and not the consumer's work in between — nor after the scan: the
        # caller renews it for its next statement.
        conn: psycopg.Connection[tuple[Any, ...]] = self._conn  # type: ignore[assignment]
        deadline = self._deadline
        try:
            with conn.cursor(name="sipmap_scan") as cursor:
                try:
                    deadline.renew()
                    cursor.execute(self._scan_sql(model, columns).encode())
                    while True:
                        deadline.renew()
                        rows = cursor.fetchmany(SCAN_BATCH)
                        if not rows:
                            break
                        deadline.pause()
                        yield from rows
                finally:
                    deadline.renew()  # for the CLOSE as the block ends
        finally:
            deadline.pause()


SCAN_BATCH = 10_000  # rows per round trip of Tx.scan
MAX_IDLE_READERS = 8  # read connections kept open between reads
# The first key of our advisory locks; the second is a hash of the schema's name, so
# stores in different schemas of one database do not wait for each other.
LOCK_CLASS = 0x5109  # "sip"
_SCHEMA_KEY = "hashtext(coalesce(current_schema(), ''))"
# Every statement the write lock is held for is a round trip during which the other
# nodes wait, so the batch's first and last two go out as one simple query each.
_BEGIN_WRITE = (
    "BEGIN ISOLATION LEVEL READ COMMITTED;"
    f" SELECT pg_advisory_xact_lock({LOCK_CLASS}, {_SCHEMA_KEY})"
)


# After the COMMIT, in the same round trip: the leases live once the write is visible.
_HEAD_AND_COMMIT = f"SELECT coalesce(max(pos), 0) FROM change_log; COMMIT; {LIVE}"
_IDLE_LIMIT = "SET idle_in_transaction_session_timeout = %d"
_TRIM = "DELETE FROM change_log WHERE pos <= %s"
_TRIMMED = "UPDATE settings SET value = %s WHERE key = 'change_log_trimmed' AND value::bigint < %s"


def _connect(dsn: str, timeout: float, role: str) -> psycopg.Connection[tuple[Any, ...]]:
    # autocommit: we issue BEGIN/COMMIT ourselves, as the SQLite store does.
    # libpq's connect_timeout is whole seconds, at least 2; tcp_user_timeout and the
    # keepalives make a connection whose server vanished fail rather than hang.
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=max(2, math.ceil(timeout)),
        tcp_user_timeout=int(timeout * 1000),
        keepalives=1,
        keepalives_idle=max(1, int(timeout)),
        keepalives_interval=1,
        keepalives_count=3,
        # Names the node (its process) and the connection's job in pg_stat_activity.
        application_name=f"sipmap {os.getpid()} {role}",
    )


_Job = tuple[Callable[[PostgresTx], Any], "asyncio.Future[Any]"]


class _Writer:
    """One connection on one thread; queued writes share a transaction (group commit)."""

    def __init__(self, dsn: str, timeout: float, log_keep: int, watchdog: Watchdog) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._watchdog = watchdog
        self._log_keep = log_keep
        self._next_trim = 0
        self._head = 0  # the log position the last commit reached
        self._conn = self._open()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sipmap-pg-writer", daemon=True)
        self._thread.start()

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = _connect(self._dsn, self._timeout, "writer")
        # A node that hangs inside a write transaction (its process stopped, its VM
        # frozen) would hold the lock every node's writes take for as long as its TCP
        # connection lives. The server ends such a transaction once it sat idle for
        # --db-timeout: by then this node's callers have given up on it anyway.
        try:
            with self._watchdog.deadline(conn, self._timeout):
                conn.execute(_IDLE_LIMIT % max(1, round(self._timeout * 1000)))
        except BaseException:
            conn.close()
            raise
        return conn

    async def write(self, fn: Callable[[PostgresTx], R]) -> tuple[R, int, tuple[Peer, ...]]:
        """fn's result, the change-log position its transaction reached, and the nodes
        holding a lease just after it committed."""
        future: asyncio.Future[tuple[R, int, tuple[Peer, ...]]] = (
            asyncio.get_running_loop().create_future()
        )
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
            # A caller that stopped waiting (timed out) gave up on its write: skip it.
            batch = [job for job in batch if not job[1].done()]
            if batch:
                dispatch(self._commit(batch))
        self._conn.close()

    def _commit(self, batch: list[_Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            conn = self._begin()  # and the lock
            with self._watchdog.deadline(conn, self._timeout):
                tx = PostgresTx(conn)
                if len(batch) == 1:
                    outcomes = self._alone(conn, tx, batch[0])
                    if outcomes[0][2] is not None:
                        return outcomes  # rolled back: nothing to commit
                else:
                    outcomes = run_isolated(conn, tx, batch)
                if self._head >= self._next_trim:
                    self._trim(conn, self._head)
                cursor = conn.execute(_HEAD_AND_COMMIT)
                row = cursor.fetchone()
                cursor.nextset()  # COMMIT
                cursor.nextset()
                live = peers(cursor.fetchall())
            head = self._head = int(row[0]) if row else 0
        except Exception as exc:
            # The transaction itself failed, so every job in it does. Nothing was
            # written — unless the connection broke (or was cut, deadline.py) during
            # COMMIT: then only the database knows, once it answers again.
            if not self._conn.broken:
                with (
                    contextlib.suppress(psycopg.Error),
                    self._watchdog.deadline(self._conn, self._timeout),
                ):
                    self._conn.execute("ROLLBACK")
            return [(future, None, exc) for _, future in batch]
        return [
            (f, (result, head, live), None) if e is None else (f, None, e)
            for f, result, e in outcomes
        ]

    @staticmethod
    def _alone(
        conn: psycopg.Connection[tuple[Any, ...]], tx: PostgresTx, job: _Job
    ) -> list[Outcome]:
        # A job alone in its transaction needs no savepoint: if it fails, the whole
        # transaction is rolled back (two round trips fewer under the lock).
        fn, future = job
        try:
            return [(future, fn(tx), None)]
        except BaseException as exc:  # the job's own failure, reported to its caller
            conn.execute("ROLLBACK")
            return [(future, None, exc)]

    def _trim(self, conn: psycopg.Connection[tuple[Any, ...]], head: int) -> None:
        # Under the write lock, in the batch's transaction: the watermark and the
        # deletion commit together, so a reader sees both or neither.
        cut = head - self._log_keep
        if cut > 0:
            conn.execute(_TRIM, (cut,))
            conn.execute(_TRIMMED, (str(cut), cut))
        self._next_trim = head + min(TRIM_EVERY, self._log_keep)

    def _begin(self) -> psycopg.Connection[tuple[Any, ...]]:
        # A connection the server dropped while it sat idle fails at BEGIN, before any
        # job ran: the batch is safe to start again on a new one.
        # Not one cut by its deadline, though: the server hangs, a new one would too.
        # (Closed: the last attempt to replace it failed.)
        if not (self._conn.broken or self._conn.closed):
            try:
                with self._watchdog.deadline(self._conn, self._timeout):
                    self._conn.execute(_BEGIN_WRITE)
                return self._conn
            except psycopg.OperationalError as error:
                if not self._conn.broken or isinstance(error, Overran):
                    raise
        self._conn.close()
        self._conn = self._open()
        with self._watchdog.deadline(self._conn, self._timeout):
            self._conn.execute(_BEGIN_WRITE)
        return self._conn

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class PostgresStore:
    def __init__(
        self, dsn: str, *, timeout: float = DEFAULT_TIMEOUT, log_keep: int = LOG_KEEP
    ) -> None:
        self.dsn = dsn
        self.timeout = timeout
        with self._connect() as conn:
            migrate(conn)
        self._watchdog = Watchdog()
        try:
            self._writer = _Writer(dsn, timeout, log_keep, self._watchdog)
        except BaseException:
            self._watchdog.close()
            raise
        self._idle: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._idle_lock = threading.Lock()
        self.feed: ChangeFeed | None = None
        self.cache: FeedCache | None = None  # once following the feed

    def _connect(self, role: str = "reader") -> psycopg.Connection[tuple[Any, ...]]:
        return _connect(self.dsn, self.timeout, role)

    def follow(self, publish: Publish, rebuild: Rebuild) -> ChangeFeed:
        """The change feed into `publish` (start it); from then on writes wait for it
        and for the other nodes, and `get` may answer from the row cache."""
        self.cache = FeedCache()
        self.feed = ChangeFeed(
            lambda: self._connect("feed"),
            lambda conn: self._watchdog.deadline(conn, self.timeout),
            publish,
            rebuild,
            observe=self.cache.apply,
            lease=Lease(),
        )
        return self.feed

    async def _bounded(self, work: Awaitable[R]) -> R:
        try:
            async with asyncio.timeout(self.timeout):
                return await work
        except TimeoutError:
            raise DatabaseUnavailable() from None
        except _CONNECTION_ERRORS as error:
            raise DatabaseUnavailable() from error

    # -- reads --------------------------------------------------------------

    def _borrow(self) -> psycopg.Connection[tuple[Any, ...]]:
        with self._idle_lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.broken:
                    return conn
                conn.close()
        return self._connect()

    def _give_back(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        with self._idle_lock:
            if len(self._idle) < MAX_IDLE_READERS and not conn.broken:
                self._idle.append(conn)
                return
        conn.close()

    def _read(self, conn: psycopg.Connection[tuple[Any, ...]], fn: Callable[[PostgresTx], R],
              deadline: Deadline) -> R:  # fmt: skip
        # One snapshot for every query fn makes.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return fn(PostgresTx(conn, deadline))
        finally:
            if not conn.broken:
                deadline.renew()  # fn may have paused it (a scan)
                conn.execute("ROLLBACK")  # nothing to keep: the transaction only read

    def _pooled(self, work: Callable[[psycopg.Connection[tuple[Any, ...]], Deadline], R]) -> R:
        conn = self._borrow()
        try:
            with self._watchdog.deadline(conn, self.timeout) as deadline:
                return work(conn, deadline)
        except psycopg.OperationalError as error:
            # Dropped while idle in the pool (a server restart, an idle timeout): a read
            # changes nothing, so it runs again on a new connection. Not if it was cut
            # for overrunning its deadline: the server hangs, a new connection would too.
            if not conn.broken or isinstance(error, Overran):
                raise
        finally:
            self._give_back(conn)
        conn = self._connect()
        try:
            with self._watchdog.deadline(conn, self.timeout) as deadline:
                return work(conn, deadline)
        finally:
            self._give_back(conn)

    async def read(self, fn: Callable[[PostgresTx], R]) -> R:
        return await self._bounded(
            asyncio.to_thread(self._pooled, lambda conn, deadline: self._read(conn, fn, deadline))
        )

    async def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        cache, feed = self.cache, self.feed
        if cache is None or feed is None or not cacheable(model, where):
            return await self._get(model, sid, where)
        assert feed.lease is not None
        if feed.lease.serving(feed.applied):
            found = cache.lookup(model, sid)
            if found is not MISSING:
                return matches(found, where)  # type: ignore[no-any-return]
        # By SID alone, so that one entry answers every filter.
        since = cache.position
        row = await self._get(model, sid, {})
        cache.fill(model, sid, row, since)
        return matches(row, where)  # type: ignore[no-any-return]

    async def _get(self, model: type[M], sid: str, where: dict[str, Any]) -> M | None:
        # A single statement in autocommit: its own snapshot, no BEGIN/COMMIT round trips.
        return await self._bounded(
            asyncio.to_thread(
                self._pooled, lambda conn, _: PostgresTx(conn).get(model, sid, **where)
            )
        )

    def read_blocking(self, fn: Callable[[PostgresTx], R]) -> R:
        with self._connect() as conn, self._watchdog.deadline(conn, self.timeout) as deadline:
            return self._read(conn, fn, deadline)

    # -- writes -------------------------------------------------------------

    async def write(self, fn: Callable[[PostgresTx], R]) -> R:
        result, position, live = await self._bounded(self._writer.write(fn))
        feed = self.feed
        if feed is not None:
            # A feed that is reconnecting will catch up by itself: no point waiting.
            wait = self.timeout if feed.status().connected else 0
            if not await feed.reached(position, wait) and wait:
                # Committed, so acknowledged; this node's recognition catches up later.
                log.warning("write at log position %d not yet applied by the feed", position)
            await self._acknowledged(feed, position, live)
        return result

    async def _acknowledged(self, feed: ChangeFeed, position: int, live: tuple[Peer, ...]) -> None:
        """Wait for the other nodes holding a lease to apply `position` (leases.py)."""
        assert feed.lease is not None

        async def recheck(ids: list[str]) -> tuple[Peer, ...]:
            return await self._bounded(
                asyncio.to_thread(self._pooled, lambda conn, _: live_of(conn, ids))
            )

        try:
            done = await feed.lease.acknowledged(position, live, recheck, self.timeout)
        except DatabaseUnavailable:
            done = False
        if not done:
            # Committed, so acknowledged; a node that has not applied it may still be
            # serving from its cache until its lease runs out.
            log.warning("write at log position %d not acknowledged by every node", position)

    def _close_readers(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def close(self) -> None:
        if self.feed is not None:
            await self.feed.close()
        await asyncio.to_thread(self.close_blocking)

    def close_blocking(self) -> None:
        self._writer.stop()
        self._close_readers()
        self._watchdog.close()


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
