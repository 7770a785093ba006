"""Node leases, and writes acknowledged only once every live node has applied them.

Why. Each node keeps rows in memory (feed_cache.py) and its recogniser; both follow
the change feed. For a write acknowledged by node A to be visible at once on node B —
in a fetch and in recognition — A must not answer before B has applied it. But B may
be dead or cut off, and then A must not wait for ever. Leases settle both.

How. Every node holds a row in `node_leases` (migration 0006): the log position it has
applied and a lease that runs LEASE seconds by the database's clock. Its feed thread
renews it at least every RENEW seconds, and right after the loop has applied a batch
from the log (an acknowledgement: the same statement, which also NOTIFYs every node
of "<id> <position>"). A writer, in the round trip of its COMMIT, reads the leases
live at that moment (`Peer`s); it answers its client only once each of them has
acknowledged the write's position or its lease has run out (checked again in the
database when it is due). A dead or cut-off node delays writes by at most LEASE.
(Past --db-timeout a writer answers anyway and logs it; with the guard below, a node
that renews also acknowledges, so that is not expected.) A node sends an
acknowledgement per batch only while it hears other nodes renew; alone, its heartbeat
renewals are enough (a node that joins is heard at its first renewal).

A node trusts its cache only while its own lease holds by its own monotonic clock,
counted from *before* it sent the renewal and MARGIN short, so it gives up before the
database deems it expired and writers stop waiting for it. If a renewal finds the
previous lease already expired in the database (or the node new), writes may have
been acknowledged without it: it then reads the log head in a statement *after* the
renewal committed, and trusts its cache again only once it has applied that far.
(A writer that missed the renewal took its snapshot before it committed, so the head
read after it covers that writer's position.) A node whose event loop stops applying
what the feed hands it (STALL) stops renewing, so nobody waits for it either.
Recognition keeps answering from memory throughout: exact while the lease holds,
available but possibly behind once it has lapsed. This assumes the database's clock and
the nodes' monotonic clocks run at the same rate, and that the database's clock does not
jump by more than MARGIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import psycopg

LEASE = 3.0  # seconds a renewal holds, by the database's clock
RENEW = 1.0  # seconds between renewals when nothing is applied
MARGIN = 0.5  # seconds a node gives up its own lease before the database does
STALL = 1.0  # seconds the loop may leave a hand-off unapplied before renewals stop
FORGET = 3600  # seconds after which an expired node's row is deleted

_NEVER = float("inf")

ACK_CHANNEL = "SELECT 'sipmap_ack_' || md5(coalesce(current_schema(), ''))"
# One statement, one transaction: the lease, the position and the notification.
# `continuous`: the previous lease had not yet run out (a new row: it had).
_RENEW = (
    "WITH renewed AS ("
    " INSERT INTO node_leases (id, applied, lease_until, continuous)"
    " VALUES (%(id)s, %(applied)s, now() + make_interval(secs => %(lease)s), FALSE)"
    " ON CONFLICT (id) DO UPDATE SET applied = excluded.applied,"
    " lease_until = excluded.lease_until, continuous = node_leases.lease_until > now()"
    " RETURNING continuous)"
    " SELECT continuous, pg_notify('sipmap_ack_' || md5(coalesce(current_schema(), '')),"
    " %(id)s || ' ' || %(applied)s) FROM renewed"
)
_FORGET = "DELETE FROM node_leases WHERE lease_until < now() - make_interval(secs => %s)"
# Appended to a write's COMMIT (same round trip, a snapshot taken after the commit).
LIVE = (
    "SELECT id, applied, extract(epoch FROM lease_until - now())::float8"
    " FROM node_leases WHERE lease_until > now()"
)
_LIVE_OF = LIVE + " AND id = ANY(%s)"


class Peer(NamedTuple):
    id: str
    applied: int
    expires: float  # on this process's monotonic clock, no earlier than in the database


def peers(rows: Sequence[tuple[Any, ...]]) -> tuple[Peer, ...]:
    """LIVE's rows, their remaining time turned into deadlines on our clock (late,
    never early: the database's now() was taken before we received it)."""
    now = time.monotonic()
    return tuple(Peer(str(i), int(a), now + float(r)) for i, a, r in rows)


def live_of(conn: psycopg.Connection[Any], ids: list[str]) -> tuple[Peer, ...]:
    return peers(conn.execute(_LIVE_OF, (ids,)).fetchall())


class Lease:
    """This node's lease (renewed in the feed's thread, read on the loop) and the
    acknowledgements it hears from the others."""

    def __init__(self, lease: float = LEASE) -> None:
        self.id = uuid.uuid4().hex
        self.length = lease
        # (when the lease ends on our monotonic clock, the position to reach before
        # trusting the cache); replaced whole, so the loop never sees half of it.
        self._state: tuple[float, float] = (0.0, _NEVER)
        self._registered = False
        self.lapses = 0  # renewals that found the lease expired (the first one included)
        self._acked: dict[str, int] = {}
        self._peer_heard = -_NEVER  # when another node's renewal was last heard
        self._wakers: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the feed thread ----------------------------------------------------------

    def renew(self, conn: psycopg.Connection[Any], applied: int) -> bool:
        """Renew (or take) the lease, acknowledging `applied`. False if the node must
        catch up first (its lease had lapsed in the database, now or at an earlier
        renewal not yet followed by `caught_up`): then call `caught_up` with the head
        read after this returned."""
        if not self._registered:
            conn.execute(_FORGET, (FORGET,))
        sent = time.monotonic()
        row = conn.execute(
            _RENEW, {"id": self.id, "applied": applied, "lease": self.length}
        ).fetchone()
        continuous = bool(row and row[0])
        self._registered = True
        ends = sent + self.length - MARGIN
        if continuous:
            self._state = (ends, self._state[1])
        else:
            self.lapses += 1
            self._state = (ends, _NEVER)
        return self._state[1] != _NEVER

    def caught_up(self, head: int) -> None:
        """After a lapse: the cache may be trusted once `head` is applied."""
        self._state = (self._state[0], head)

    def lapse(self) -> None:
        """Stop trusting the cache now (the node stops, or its feed is lost). If the
        database still counts the lease, every write goes on waiting for this node, so
        a renewal in time needs no catching up."""
        self._state = (0.0, self._state[1])

    def heard(self, payload: str) -> None:
        """An acknowledgement NOTIFY: '<node id> <position>'."""
        node, _, position = payload.partition(" ")
        try:
            value = int(position)
        except ValueError:
            return
        if value > self._acked.get(node, -1):
            self._acked[node] = value
        if node != self.id:
            self._peer_heard = time.monotonic()
        loop = self._loop
        if self._wakers and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._wake)

    def has_peers(self) -> bool:
        """Whether another node renewed its lease lately, so may wait for our
        acknowledgements. (A node that joins is heard at its first renewal, before
        any write it makes; one that is not heard yet waits at most for our heartbeat.)"""
        return time.monotonic() - self._peer_heard < 2 * self.length

    # -- the loop -------------------------------------------------------------------

    def serving(self, applied: int) -> bool:
        """Whether this node may answer from its cache, having applied `applied`."""
        ends, ready = self._state
        return applied >= ready and time.monotonic() < ends

    def _wake(self) -> None:
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            if not waker.done():
                waker.set_result(None)

    async def acknowledged(
        self,
        position: int,
        live: Sequence[Peer],
        recheck: Callable[[list[str]], Awaitable[tuple[Peer, ...]]],
        limit: float,
    ) -> bool:
        """Wait until every other node of `live` has applied `position` or lost its
        lease; False if `limit` seconds passed first."""
        self._loop = asyncio.get_running_loop()
        started = time.monotonic()
        waiting = {p.id: p.expires for p in live if p.id != self.id and p.applied < position}
        while waiting:
            waker = self._loop.create_future()
            self._wakers.append(waker)  # before looking: an ack heard after is not lost
            for node in [n for n in waiting if self._acked.get(n, -1) >= position]:
                del waiting[node]
            if not waiting:
                break
            now = time.monotonic()
            due = min(waiting.values())
            if now >= due:
                # Expired by our clock: ask the database, whose clock the lease runs on.
                renewed = await recheck(list(waiting))
                waiting = {p.id: p.expires for p in renewed if p.applied < position}
                continue
            if now - started >= limit:
                return False
            try:
                async with asyncio.timeout(min(due, started + limit) - now):
                    await waker
            except TimeoutError:
                pass
        return True
