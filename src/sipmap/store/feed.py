"""The change feed on PostgreSQL: every node's writes, in commit order, into this node.

Triggers append each committed change that recognition depends on to `change_log`
in the writing transaction, and NOTIFY the schema's channel (migration 0004 says why
a log position is commit order). Each node follows the log on one dedicated
connection, in one thread: LISTEN, then after every notification — and every
HEARTBEAT seconds in case one was missed or the connection died quietly — it reads
the entries after the last position it fetched, decodes them to the same Events the
service layer makes, and hands them to the event loop, which applies a whole fetch
in one step (`publish`), so a reader never sees half of it.

It is the only way changes reach the recogniser on PostgreSQL, the node's own writes
included: a write is acknowledged once the feed applied its entries (`reached`).
Applying a node's own events in-process as well would be wrong, not just redundant —
they could land after a later write from another node to the same row, and undo it.

With a Lease (leases.py) the feed thread also renews this node's lease, and after the
loop has applied a batch acknowledges its position to every node; it hears the others'
acknowledgements on the same connection. And every change to a cached table also goes
to `observe` (the row cache, feed_cache.py) in the same step as the recogniser's.

A lost connection is retried; on return the feed first catches up from the last
position it applied. If the log was trimmed past that position (postgres_writer.py
keeps the newest LOG_KEEP entries), it rebuilds in full from one snapshot of the
tables and the log position of that snapshot: `rebuild` runs here, off the loop, and
returns the swap the loop then makes. Until then recognition answers from the last
consistent state, and `behind_seconds` says for how long it has not been known current.

Every round of statements runs under a deadline (`bound`, store/deadline.py): a server
that hangs with the connection open answers nothing and no TCP timeout fires, so
without one this thread would wait forever while the node reported itself current.
Cut, the connection counts as lost; `behind_seconds` then counts from the start of the
last catch-up that succeeded, the last moment the node is known to have been current.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ..core import events as ev
from ..core.models import AclMapping, IpAddress, SipDomain, SourceIpMapping
from .base import Tx
from .deadline import Deadline
from .feed_cache import Change, decode_change
from .leases import ACK_CHANNEL, RENEW, STALL, Lease
from .postgres_tx import PostgresTx
from .schema import COLUMNS, from_row

log = logging.getLogger("sipmap.feed")

HEARTBEAT = 1.0  # seconds between catch-ups when no notification comes
RETRY = 0.2  # seconds between attempts to reconnect
FETCH = 5000  # entries per read

Publish = Callable[[Sequence[ev.Event]], None]
# Builds a fresh state from a read-only snapshot of the tables (in the feed's thread)
# and returns the swap to make on the loop. The small interface a live rebuild of the
# recogniser has to offer.
Rebuild = Callable[[Tx], Callable[[], None]]
# A deadline for a round of statements on a connection (the store's --db-timeout).
Bound = Callable[[psycopg.Connection[Any]], AbstractContextManager[Deadline]]
# Every change to a cached table, and the position applied with it; None: a full
# reload, so forget everything. Called on the loop, in the same step as `publish`.
Observe = Callable[[Sequence[Change] | None, int], None]

# table -> (model, event when saved, event when deleted)
_TABLES: dict[str, tuple[type[Any], Callable[[Any], ev.Event], Callable[[Any], ev.Event]]] = {
    "source_ip_mappings": (SourceIpMapping, ev.MappingSaved, ev.MappingDeleted),
    "sip_domains": (SipDomain, ev.DomainSaved, ev.DomainDeleted),
    "acl_mappings": (AclMapping, ev.AclMappingSaved, ev.AclMappingDeleted),
    "ip_addresses": (IpAddress, ev.IpAddressSaved, ev.IpAddressDeleted),
}

_CHANNEL = "SELECT 'sipmap_' || md5(coalesce(current_schema(), ''))"
_TRIMMED = "SELECT value FROM settings WHERE key = 'change_log_trimmed'"
_HEAD = "SELECT coalesce(max(pos), 0) FROM change_log"
_ENTRIES = "SELECT pos, tbl, deleted, row FROM change_log WHERE pos > %s ORDER BY pos LIMIT %s"
# _TRIMMED and _ENTRIES in one snapshot and one round trip (a simple query: no parameters).
_QUICK = (
    f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {_TRIMMED};"
    " SELECT pos, tbl, deleted, row FROM change_log WHERE pos > {after} ORDER BY pos"
    f" LIMIT {FETCH}; COMMIT"
)


def _scalar(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None  # every query here returns one row
    return row[0]


def decode(table: str, deleted: bool, row: dict[str, Any]) -> ev.Event | None:
    """A log entry as the Event the service layer would have published for it; None
    for a table recognition does not use (logged for the row cache, migration 0006)."""
    if table == "accounts":  # only its status is logged (migration 0005)
        return ev.AccountStatusChanged(row["sid"], row["status"])
    if table == "credentials":  # only the SID is logged (migration 0007)
        return ev.CredentialsChanged(row["sid"])
    if table not in _TABLES:
        return None
    model, saved, gone = _TABLES[table]
    obj = from_row(model, tuple(row[column] for column in COLUMNS[model]))
    return gone(obj) if deleted else saved(obj)


def snapshot(
    conn: psycopg.Connection[Any], rebuild: Rebuild, deadline: Deadline
) -> tuple[Callable[[], None], int]:
    """`rebuild` over one snapshot of the tables, and the log position it reflects
    (run inside a REPEATABLE READ transaction); each fetch renews `deadline`."""
    swap = rebuild(PostgresTx(conn, deadline))
    deadline.renew()  # the scans paused it
    head = int(_scalar(conn, _HEAD))
    trimmed = int(_scalar(conn, _TRIMMED))
    return swap, max(head, trimmed)


@dataclass(frozen=True, slots=True)
class FeedStatus:
    position: int  # the last log position applied
    connected: bool
    behind_seconds: float  # 0 while known current; else since when it was last

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "connected": self.connected,
            "behind_seconds": round(self.behind_seconds, 3),
        }


class ChangeFeed:
    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        bound: Bound,
        publish: Publish,
        rebuild: Rebuild,
        *,
        observe: Observe | None = None,
        lease: Lease | None = None,
    ) -> None:
        self._connect = connect
        self._bound = bound
        self._publish = publish
        self._rebuild = rebuild
        self._observe = observe
        self.lease = lease
        self._loop_applied = threading.Event()  # set by the loop after each step
        # (position, when) of each hand-off the loop may not have applied yet
        self._handed: deque[tuple[int, float]] = deque()
        self._fetched = -1  # the feed thread's position; -1: nothing loaded yet
        self._applied = -1  # the loop's
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap by position
        self._tiebreak = itertools.count()
        self._connected = False
        self._stale_since: float | None = time.monotonic()  # None: known current
        self._current_at = time.monotonic()  # when the last catch-up that succeeded began
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.reloads = 0  # full rebuilds after the first load (trimmed past)
        self.backend_pid: int | None = None  # the listening connection's server process

    # -- the loop's side ----------------------------------------------------------

    async def start(self) -> None:
        """Load in full, then follow; returns once the first load is applied.

        The first load's failure (the database unreachable) is raised here."""
        self._loop = asyncio.get_running_loop()
        self._stop.clear()  # started again after close(): it goes on from its position
        conn = await asyncio.to_thread(self._connect)
        try:
            await asyncio.to_thread(self._catch_up, conn)
        except BaseException:
            conn.close()
            raise
        self._thread = threading.Thread(
            target=self._follow, args=(conn,), name="sipmap-feed", daemon=True
        )
        self._thread.start()
        await self.reached(self._fetched, None)

    async def reached(self, position: int, timeout: float | None) -> bool:
        """Wait until everything up to `position` is applied; False if `timeout` passed.

        Before `start` there is nothing to wait for: its full load will include it."""
        if self._applied >= position or self._loop is None:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (position, next(self._tiebreak), future))
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            return False
        return True

    def status(self) -> FeedStatus:
        since = self._stale_since
        behind = 0.0 if since is None else time.monotonic() - since
        return FeedStatus(self._applied, self._connected, behind)

    @property
    def applied(self) -> int:
        """The last log position applied (on the loop)."""
        return self._applied

    def lease_held(self) -> bool:
        """Whether this node holds its lease and has caught up: its cache is trusted."""
        return self.lease is not None and self.lease.serving(self._applied)

    def _apply(self, events: Sequence[ev.Event] | None, swap: Callable[[], None] | None,
               position: int, changes: Sequence[Change] | None = ()) -> None:  # fmt: skip
        if swap is not None:
            swap()
        if events:
            self._publish(events)
        if self._observe is not None:
            self._observe(None if swap is not None else changes, position)
        self._applied = position
        self._loop_applied.set()
        while self._waiters and self._waiters[0][0] <= position:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        self._stop.set()
        if self.lease is not None:
            self.lease.lapse()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # -- the feed thread ------------------------------------------------------------

    def _hand(self, events: Sequence[ev.Event] | None, swap: Callable[[], None] | None,
              position: int, changes: Sequence[Change] | None = ()) -> None:  # fmt: skip
        assert self._loop is not None
        if self.lease is not None:  # for _wait_for_loop
            while self._handed and self._handed[0][0] <= self._applied:
                self._handed.popleft()
            self._handed.append((position, time.monotonic()))
        try:
            self._loop.call_soon_threadsafe(self._apply, events, swap, position, changes)
        except RuntimeError:  # the loop is closed: nobody is following any more
            self._stop.set()

    def _follow(self, conn: psycopg.Connection[Any] | None) -> None:
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                    self._catch_up(conn)  # before anything else: the gap while away
                self._listen(conn)
            except Exception as error:  # a database error; anything else is logged too
                if self.lease is not None:
                    self.lease.lapse()  # nobody can acknowledge anything without us
                if not isinstance(error, psycopg.Error):
                    log.exception("change feed: failed; starting again")
                elif self._connected or self._stale_since is None:
                    log.warning("change feed: connection lost (%s); reconnecting", error)
                self._connected = False
                if self._stale_since is None:
                    self._stale_since = self._current_at
                self._stop.wait(RETRY)
            finally:
                if conn is not None:
                    conn.close()
                    conn = None

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        with self._bound(conn):
            channel = _scalar(conn, _CHANNEL)
            conn.execute(f'LISTEN "{channel}"')
            acks = _scalar(conn, ACK_CHANNEL) if self.lease is not None else None
            if acks is not None:
                conn.execute(f'LISTEN "{acks}"')
        self.backend_pid = conn.info.backend_pid
        # Entries committed between the last catch-up and LISTEN sent no notification here.
        self._catch_up(conn)
        self._renew(conn)
        self._connected = True
        self._stale_since = None
        beat = time.monotonic() + HEARTBEAT
        while not self._stop.is_set():
            changed = False
            wait = max(0.0, beat - time.monotonic())
            for notice in conn.notifies(timeout=wait, stop_after=1):
                if notice.channel == acks:
                    assert self.lease is not None
                    self.lease.heard(notice.payload)
                else:
                    changed = True
            due = time.monotonic() >= beat
            if not (changed or due):
                continue  # only acknowledgements came
            before = self._fetched
            self._catch_up(conn)
            # An acknowledgement after each batch only matters if another node may be
            # waiting for it; else the heartbeat's renewal is enough.
            lease = self.lease
            if due or (self._fetched != before and lease is not None and lease.has_peers()):
                self._renew(conn)
            if due:
                beat = time.monotonic() + min(HEARTBEAT, RENEW)

    def _renew(self, conn: psycopg.Connection[Any]) -> None:
        """Once the loop has applied what was handed to it, renew the lease with that
        position (an acknowledgement); after a lapse, catch up to a head read after it."""
        lease = self.lease
        if lease is None:
            return
        if not self._wait_for_loop():
            log.warning("change feed: the event loop is not applying changes; lease not renewed")
            return
        with self._bound(conn):
            renewed = lease.renew(conn, self._applied)
        if not renewed:
            self._catch_up(conn)  # a snapshot taken after the renewal committed
            lease.caught_up(self._fetched)
            if self._wait_for_loop():  # and acknowledge what that brought
                with self._bound(conn):
                    lease.renew(conn, self._applied)

    def _wait_for_loop(self) -> bool:
        """Wait (up to STALL after the hand-off) until the loop applied all it was handed."""
        while self._applied < self._fetched:
            self._loop_applied.clear()
            if self._applied >= self._fetched:
                break
            while self._handed and self._handed[0][0] <= self._applied:
                self._handed.popleft()
            oldest = self._handed[0][1] if self._handed else time.monotonic()
            left = oldest + STALL - time.monotonic()
            if left <= 0:
                return False
            self._loop_applied.wait(left)
        self._handed.clear()  # all applied
        return True

    def _catch_up(self, conn: psycopg.Connection[Any]) -> None:
        """Read and hand over everything after the fetched position, in one snapshot."""
        began = time.monotonic()
        with self._bound(conn) as deadline:
            if self._fetched < 0 or not self._quick_catch_up(conn):
                self._read_after(conn, deadline)
        self._current_at = began
        if self._connected:
            self._stale_since = None

    def _read_after(self, conn: psycopg.Connection[Any], deadline: Deadline) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            trimmed = int(_scalar(conn, _TRIMMED))
            if self._fetched < 0 or trimmed > self._fetched:
                if self._fetched >= 0:
                    log.warning("change feed: trimmed past %d; reloading", self._fetched)
                    self.reloads += 1
                swap, head = snapshot(conn, self._rebuild, deadline)
                self._hand(None, swap, head)
                self._fetched = head
            while True:
                deadline.renew()  # a long backlog: each fetch in time
                entries = conn.execute(_ENTRIES, (self._fetched, FETCH)).fetchall()
                self._hand_entries(entries)
                if len(entries) < FETCH:
                    break
        finally:
            if not conn.broken:
                deadline.renew()
                conn.execute("ROLLBACK")

    def _quick_catch_up(self, conn: psycopg.Connection[Any]) -> bool:
        """The usual case in one round trip (every acknowledgement waits for it): the
        log not trimmed past us, fewer than FETCH new entries. False: nothing was
        handed over, take the long way."""
        try:
            cursor = conn.execute(_QUICK.format(after=int(self._fetched)).encode())
            cursor.nextset()  # past BEGIN
            row = cursor.fetchone()
            trimmed = int(row[0]) if row else 0
            cursor.nextset()
            entries = cursor.fetchall()
        except BaseException:
            if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            raise
        if trimmed > self._fetched or len(entries) >= FETCH:
            return False
        self._hand_entries(entries)
        return True

    def _hand_entries(self, entries: list[tuple[Any, ...]]) -> None:
        if not entries:
            return
        events = [e for *_, t, d, r in entries if (e := decode(t, d, r)) is not None]
        changes: list[Change] = []
        if self._observe is not None:
            changes = [c for *_, t, d, r in entries if (c := decode_change(t, d, r)) is not None]
        self._fetched = entries[-1][0]
        self._hand(events, None, self._fetched, changes)
