"""The PostgreSQL store's writes: one connection on one thread, group commit under a lock.

Writes that queue up while a commit is in flight share the next transaction, each in
its own SAVEPOINT so one that fails takes none of the others down. Every write
transaction starts with `pg_advisory_xact_lock` on a key derived from the schema it
writes to, so writes are serialised across processes too — two sipmap nodes on one
database take turns, and a rule a write function checks (one mapping per IP record,
one domain per network) still holds when it commits. We use the lock rather than
SERIALIZABLE because SERIALIZABLE aborts conflicting transactions, and a batch of
unrelated writes would then have to be retried as a whole; the lock makes them wait
instead, never fail. The writer runs at READ COMMITTED: each statement after the lock
sees every write committed before it (a REPEATABLE READ snapshot would be taken before
the lock was granted). The lock is also why `seq` order is commit order, which keyset
page tokens rely on.

Every write transaction also learns the change-log position it reached (feed.py) and
the nodes holding a lease once it is visible (leases.py), and every so many positions
the writer trims the log to the newest `log_keep` entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from .batch import MAX_BATCH, Outcome, dispatch
from .deadline import Overran, Watchdog
from .leases import LIVE, Peer, peers
from .postgres_tx import LOCK_CLASS, SCHEMA_KEY, PostgresTx, connect
from .sqltx import run_isolated

R = TypeVar("R")

TRIM_EVERY = 1_000  # positions between trims
# Every statement the write lock is held for is a round trip during which the other
# nodes wait, so the batch's first and last two go out as one simple query each.
_BEGIN_WRITE = (
    "BEGIN ISOLATION LEVEL READ COMMITTED;"
    f" SELECT pg_advisory_xact_lock({LOCK_CLASS}, {SCHEMA_KEY})"
)
# After the COMMIT, in the same round trip: the leases live once the write is visible.
_HEAD_AND_COMMIT = f"SELECT coalesce(max(pos), 0) FROM change_log; COMMIT; {LIVE}"
_IDLE_LIMIT = "SET idle_in_transaction_session_timeout = %d"
_TRIM = "DELETE FROM change_log WHERE pos <= %s"
_TRIMMED = "UPDATE settings SET value = %s WHERE key = 'change_log_trimmed' AND value::bigint < %s"


_Job = tuple[Callable[[PostgresTx], Any], "asyncio.Future[Any]"]


class PostgresWriter:
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
        conn = connect(self._dsn, self._timeout, "writer")
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
