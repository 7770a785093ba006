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
succeeded. The loop must never wait for a lock held by another process (the CLI,
another node): it tries BEGIN IMMEDIATE without waiting, and when the database is
busy the whole batch goes to the thread, which waits for the lock and runs it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .batch import MAX_BATCH, Outcome, dispatch, settle
from .sqltx import run_isolated

if TYPE_CHECKING:
    from .sqlite import SqliteTx

R = TypeVar("R")

BUSY_TIMEOUT_MS = 30_000

_Batch = list[tuple[Callable[["SqliteTx"], Any], "asyncio.Future[Any]"]]
_Outcomes = list[Outcome]


def _is_busy(error: sqlite3.Error) -> bool:
    return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


class Writer:
    def __init__(self, conn: sqlite3.Connection, tx: SqliteTx) -> None:
        self._conn = conn
        self._tx = tx  # over conn
        conn.execute("PRAGMA busy_timeout=0")  # the loop's BEGIN must not wait
        self._lock = threading.Lock()  # guards _pending and _busy
        self._pending: _Batch = []
        self._busy = False  # a batch is running or committing
        self._idle = threading.Event()
        self._idle.set()
        # (loop, jobs to run first or None, outcomes so far); None stops the thread
        self._work: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, _Batch | None, _Outcomes] | None
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

    def _run_jobs(self, batch: _Batch) -> _Outcomes:
        return run_isolated(self._conn, self._tx, batch, counter=self._conn)

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if _is_busy(exc):  # another process writes: wait for it on the thread
                self._work.put((loop, batch, []))
            else:
                self._finish(loop, [(future, None, exc) for _, future in batch])
            return
        try:
            outcomes = self._run_jobs(batch)
        except BaseException as exc:  # the transaction itself broke: nothing was written
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            self._finish(loop, [(future, None, exc) for _, future in batch])
            return
        self._work.put((loop, None, outcomes))

    def _commit_loop(self) -> None:
        conn = self._conn
        while (item := self._work.get()) is not None:
            loop, batch, outcomes = item
            try:
                if batch is not None:
                    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                    conn.execute("BEGIN IMMEDIATE")
                    outcomes = self._run_jobs(batch)
                conn.execute("COMMIT")
            except BaseException as exc:  # nothing was written
                # Guarded: if this thread died, every later write would wait forever.
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                futures = (
                    [f for _, f in batch] if batch is not None else [f for f, _, _ in outcomes]
                )
                outcomes = [(future, None, exc) for future in futures]
            finally:
                if batch is not None:
                    with contextlib.suppress(sqlite3.Error):
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
