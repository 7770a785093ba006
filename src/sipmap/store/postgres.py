"""The PostgreSQL store: the same contract as SQLite's, for several nodes sharing one database.

Strategy. psycopg's connections are synchronous, so every statement runs on a thread,
never on the event loop (each one is a network round trip).

Writes go through one writer connection on one thread, with group commit, serialised
across nodes by an advisory lock (postgres_writer.py).

Reads run on pooled connections in worker threads: `read` in one REPEATABLE READ, READ
ONLY transaction (one snapshot for every query), `get` as a single autocommit statement.

Once a node follows the change log (feed.py), a write returns only after its own
entries were applied to the node's recogniser.

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
sqltx.py, shared with SQLite; PostgreSQL's side of it is postgres_tx.py.

Migrations run on open under a session-level advisory lock, so nodes starting together
apply each one exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from ..core.errors import DatabaseUnavailable
from ..core.models import M
from .deadline import Deadline, Overran, Watchdog
from .feed import ChangeFeed, Publish, Rebuild
from .feed_cache import MISSING, FeedCache, cacheable, matches
from .leases import Lease, Peer, live_of
from .postgres_tx import LOCK_CLASS, SCHEMA_KEY, PostgresTx, connect
from .postgres_writer import PostgresWriter
from .sqltx import POSTGRES, pending_migrations

R = TypeVar("R")

log = logging.getLogger("sipmap.store")
DEFAULT_TIMEOUT = 5.0  # seconds; --db-timeout
LOG_KEEP = 100_000  # change-log entries kept; a node further behind reloads in full
MAX_IDLE_READERS = 8  # read connections kept open between reads
_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


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
            self._writer = PostgresWriter(dsn, timeout, log_keep, self._watchdog)
        except BaseException:
            self._watchdog.close()
            raise
        self._idle: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._idle_lock = threading.Lock()
        self.feed: ChangeFeed | None = None
        self.cache: FeedCache | None = None  # once following the feed

    def _connect(self, role: str = "reader") -> psycopg.Connection[tuple[Any, ...]]:
        return connect(self.dsn, self.timeout, role)

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
    conn.execute(f"SELECT pg_advisory_lock(%s, {SCHEMA_KEY})", (LOCK_CLASS + 1,))
    try:
        for version, script in pending_migrations(conn, POSTGRES):
            with conn.transaction():
                # No parameters: psycopg sends the script as one simple query.
                conn.execute(script.encode())
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
    finally:
        conn.execute(f"SELECT pg_advisory_unlock(%s, {SCHEMA_KEY})", (LOCK_CLASS + 1,))
