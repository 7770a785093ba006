"""The SQLite store's writes: group commit, with the fsync off the event loop.

Strategy. Every write goes through one connection, so a rule a write function
checks still holds when it commits (Datasette's pattern). Writes that arrive while
a commit is in flight wait, then share the next transaction — isolated from each
other's failures (run_isolated: one that fails takes none of the others down) —
and one fsync.

The work is split between the event loop and one thread. The loop runs a batch's
write functions itself: each is a few indexed statements, microseconds, whereas on
a thread every statement would hand the GIL to the loop and back. The thread runs
only the COMMIT, whose fsync is the slow part, with the GIL released; a write's
future resolves after that returns, so a write is durable before anyone learns it
succeeded. A batch gets LOOP_BUDGET of the loop's time: a write function can be slow
(a mapping whose network holds many of the caller's own mappings scans them all), and
a batch of such writes, from one tenant, would otherwise hold up every request and
SIP message for all of them. Past the budget, the thread runs the rest of the batch
in the same transaction, so the loop waits for one write function at most.

The loop must never wait for a lock held by another process (the CLI, another
node): it tries BEGIN IMMEDIATE without waiting, and when the database is busy the
whole batch goes to the thread, which waits for the lock and runs it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import apsw

from .batch import MAX_BATCH, Outcome, dispatch, settle
from .sqltx import run_isolated

if TYPE_CHECKING:
    from .sqlite import SqliteTx

R = TypeVar("R")

BUSY_TIMEOUT_MS = 30_000

_Batch = list[tuple[Callable[["SqliteTx"], Any], "asyncio.Future[Any]"]]
_Outcomes = list[Outcome]
# Seconds of write functions a batch may run on the event loop before the thread
# takes over the rest (checked after each one).
LOOP_BUDGET = 0.002


class Writer:
    def __init__(self, conn: apsw.Connection, tx: SqliteTx) -> None:
        self._conn = conn
        self._tx = tx  # over conn
        conn.execute("PRAGMA busy_timeout=0")  # the loop's BEGIN must not wait
        self._lock = threading.Lock()  # guards _pending and _busy
        self._pending: _Batch = []
        self._busy = False  # a batch is running or committing
        self._idle = threading.Event()
        self._idle.set()
        # (loop, jobs to run first or None, outcomes so far, whether the transaction
        # is already open); None stops the thread
        self._work: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, _Batch | None, _Outcomes, bool] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._commit_loop, name="sipmap-writer", daemon=True)
        self._thread.start()

    async def write(self, fn: Callable[[SqliteTx], R]) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._lock:
            self._pending.append((fn, future))
            start = not self._busy
            if start:
                self._busy = True
                self._idle.clear()
        if start:
            # Soon, not now: writes made in this turn of the loop join the batch.
            loop.call_soon(self._start_batch, loop)
        return await future

    def _run_jobs(self, batch: _Batch, until: float | None = None) -> _Outcomes:
        return run_isolated(self._conn, self._tx, batch, counter=self._conn, until=until)

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            if isinstance(exc, apsw.BusyError):  # another process writes: wait for it on the thread
                self._work.put((loop, batch, [], False))
            else:
                self._finish(loop, [(future, None, exc) for _, future in batch])
            return
        try:
            outcomes = self._run_jobs(batch, until=time.perf_counter() + LOOP_BUDGET)
        except BaseException as exc:  # the transaction itself broke: nothing was written
            with contextlib.suppress(apsw.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            self._finish(loop, [(future, None, exc) for _, future in batch])
            return
        rest = batch[len(outcomes) :]  # over the budget: the thread runs these
        self._work.put((loop, rest or None, outcomes, True))

    def _commit_loop(self) -> None:
        conn = self._conn
        while (item := self._work.get()) is not None:
            loop, batch, done, begun = item
            outcomes = done
            try:
                if not begun:
                    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                    conn.execute("BEGIN IMMEDIATE")
                if batch is not None:
                    outcomes = done + self._run_jobs(batch)
                conn.execute("COMMIT")
            except BaseException as exc:  # nothing was written
                # Guarded: if this thread died, every later write would wait forever.
                with contextlib.suppress(apsw.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                futures = [f for f, _, _ in done] + [f for _, f in batch or []]
                outcomes = [(future, None, exc) for future in futures]
            finally:
                if not begun:
                    with contextlib.suppress(apsw.Error):
                        conn.execute("PRAGMA busy_timeout=0")
            try:
                loop.call_soon_threadsafe(self._finish, loop, outcomes)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self._finish_without_loop()
        conn.close()

    def _finish(self, loop: asyncio.AbstractEventLoop, outcomes: _Outcomes) -> None:
        settle(o for o in outcomes if o[0].get_loop() is loop)
        dispatch(o for o in outcomes if o[0].get_loop() is not loop)  # other stores' callers
        with self._lock:
            more = bool(self._pending)
            if not more:
                self._busy = False
                self._idle.set()
        if more:  # what queued up during the commit is the next batch
            self._start_batch(loop)

    def _finish_without_loop(self) -> None:
        with self._lock:
            self._pending = []
            self._busy = False
            self._idle.set()

    async def close(self) -> None:
        await asyncio.to_thread(self._idle.wait)
        self._work.put(None)
        await asyncio.to_thread(self._thread.join)

    def close_blocking(self) -> None:
        self._work.put(None)
        self._thread.join()
