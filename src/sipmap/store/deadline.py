"""Deadlines for blocking database calls: a call that overruns has its connection cut.

A psycopg call waits in the kernel for the server's answer. When the server hangs with
its connections open — its processes stopped, a frozen VM — that wait has no end: on
the same host the kernel keeps acknowledging what the client sends, so neither TCP
keepalives nor tcp_user_timeout ever fire, and a server-side statement_timeout runs
in the very server that hangs. (Across a network that drops packets they do fire, at
their own pace.) A thread so stuck is lost to the node, and a stop waits for it forever.

So every call on a node's connections runs under a deadline, kept by one watchdog
thread. A call that passes its deadline has its socket shut down — shutdown(2), not
close(2): the descriptor stays the caller's, so it cannot be reused under it — which
ends the wait at once with an OperationalError and leaves the connection broken, to be
replaced. Whatever the server did with the request is unknown to the client: a write's
COMMIT may still be applied when the server goes on (docs/operations.md, Outages).

Registering a call costs a lock and a set insertion; the watchdog wakes only at the
earliest deadline, not per call.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from typing import Any

import psycopg


class Overran(psycopg.OperationalError):
    """What a call cut by its deadline raises (rather than the "server closed the
    connection" the cut itself makes libpq report)."""


class Deadline:
    """One call's deadline on one connection; a context manager (Watchdog.deadline)."""

    __slots__ = ("_fd", "_seconds", "_watchdog", "at", "cut")

    def __init__(self, watchdog: Watchdog | None, fd: int, seconds: float) -> None:
        self._watchdog = watchdog
        self._fd = fd
        self._seconds = seconds
        self.at = math.inf
        self.cut = False  # the watchdog shut the connection down: the call overran

    def __enter__(self) -> Deadline:
        if self._watchdog is not None:
            self._watchdog._add(self, time.monotonic() + self._seconds)
        return self

    def __exit__(self, kind: object, error: BaseException | None, _: object) -> None:
        # Once this returns the watchdog cannot touch the descriptor, which the
        # caller may close (and the kernel reuse) at once.
        if self._watchdog is not None:
            self._watchdog._remove(self)
        overran = self.cut and isinstance(error, psycopg.OperationalError)
        if overran and not isinstance(error, Overran):
            message = f"the database did not answer within {self._seconds:g} s"
            raise Overran(message) from error

    def renew(self) -> None:
        """As long again from now: for a long call made of many round trips (a full
        scan), each of which must answer in time."""
        if self._watchdog is not None:
            self._watchdog._move(self, time.monotonic() + self._seconds)

    def pause(self) -> None:
        """No deadline until the next renewal: the caller works, the server is not
        being waited for (a scan's consumer, between fetches)."""
        if self._watchdog is not None:
            self._watchdog._move(self, math.inf)


UNBOUNDED = Deadline(None, -1, math.inf)  # for calls another deadline already covers


class Watchdog:
    def __init__(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._live: set[Deadline] = set()
        self._next = math.inf  # when the watchdog will look next
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sipmap-pg-watchdog", daemon=True)
        self._thread.start()

    def deadline(self, conn: psycopg.Connection[Any], seconds: float) -> Deadline:
        """`with watchdog.deadline(conn, s):` cuts `conn` if the block has not ended
        `seconds` after it began (or after a renewal)."""
        return Deadline(self, conn.fileno(), seconds)

    def _add(self, deadline: Deadline, at: float) -> None:
        with self._wake:
            self._live.add(deadline)
            self._set(deadline, at)

    def _remove(self, deadline: Deadline) -> None:
        with self._wake:
            self._live.discard(deadline)
            if self._closed and not self._live:
                self._wake.notify()

    def _move(self, deadline: Deadline, at: float) -> None:
        with self._wake:
            self._set(deadline, at)

    def _set(self, deadline: Deadline, at: float) -> None:
        deadline.at = at
        if at < self._next:  # sooner than the watchdog looks: wake it
            self._next = at
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            # Closed, it still keeps the deadlines of the calls in flight (a request
            # cancelled at shutdown leaves its thread running), then ends.
            while not self._closed or self._live:
                now = time.monotonic()
                for deadline in [d for d in self._live if d.at <= now]:
                    self._live.discard(deadline)
                    deadline.cut = True
                    _shut_down(deadline._fd)
                self._next = min((d.at for d in self._live), default=math.inf)
                self._wake.wait(None if self._next == math.inf else self._next - now)

    def close(self) -> None:
        """Stop once the calls in flight have ended (each within its deadline)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()


def _shut_down(fd: int) -> None:
    # A duplicate of the descriptor, closed right after: shutdown acts on the socket
    # both share, the caller's descriptor stays open (and broken).
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)
