"""The SIP edge's UDP socket: datagrams read in batches, the common requests answered in C.

On each readiness event the C fast path (`_fast.FastPath.pump`, called by the event
loop directly) reads up to `BATCH` waiting datagrams with one recvmmsg(), so HTTP
keeps its turns between batches. A request it fully understands (sip_scan.c: plain
headers, no Route, an ordinary Via) is decided by `_decide` here - recognition, the
shedding of unrecognised sources, the responder's rules (`Responder.verdict`), the
counters - and answered from C, every reply of the batch in one sendmmsg().
Everything else (responses, forwarding, in-dialog requests, malformed or unusual
messages) goes to `Edge.datagram`, the Python path, unchanged. The replies are byte
for byte what the Python path sends (tests/sip/test_fast.py).

Decisions that depend only on the source IP, the method, the Request-URI's host and
the recogniser's state (not proxied, and no answer budget involved: a recognised
source, or any with --sip-drop-unrecognized) are cached in C (sip_cache.c) until the
recogniser's `generation` changes, with the counters they increment: a cache hit runs
no Python at all. What hits count is kept in C and handed to the Prometheus counters
before each collection (`_flush`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from ._fast import FastPath
from .counters import BUCKET_BOUNDS, Inc
from .responder import SERVER, Answer, Drop, Responder, Source
from .serializer import reason_phrase

if TYPE_CHECKING:
    from .transport import Edge

log = logging.getLogger("sipmap.sip")

BATCH = 32  # datagrams per readiness event, at most
HANDLED = -1  # decide's answer when nothing is left for C to send
MAX_COUNTERS = 1024  # counter ids the C side keeps counts for


def wire_answers(responder: Responder) -> list[tuple[tuple[bytes, bytes, bool], ...]]:
    """The responder's answers as the fast path builds them: per response, the status
    line, the fixed headers after CSeq (Server, then the answer's extra headers) and
    whether To gets our tag (final responses), as responder._reply writes them."""
    wired = []
    for answer in responder.answers:
        headers = [("Server", SERVER), *answer.extra]
        fixed = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
        wired.append(
            tuple(
                (f"SIP/2.0 {status} {reason_phrase(status)}\r\n".encode(), fixed, status >= 200)
                for status in answer.statuses
            )
        )
    return wired


class UdpEndpoint:
    """One UDP socket of the edge: reads through the fast path, `sendto` for the rest."""

    def __init__(self, edge: Edge, sock: socket.socket) -> None:
        self.edge = edge
        self.sock = sock
        responder = edge.responder
        self.fast = FastPath(
            wire_answers(responder), edge.max_message, BATCH,
            recognizer=edge.recognizer, bounds=BUCKET_BOUNDS,
        )  # fmt: skip
        self._index: dict[Answer, int] = {a: i for i, a in enumerate(responder.answers)}
        # Counters a cached decision increments, by id (the C side counts by id).
        self._counters: list[Inc] = []
        self._counter_ids: dict[Inc, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        edge.counters.add_flush(self._flush)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        fd = self.sock.fileno()
        loop.add_reader(fd, self.fast.pump, fd, self._decide, self._slow, self._unsent)

    def close(self) -> None:
        if self._loop is not None and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, address)
        except OSError:  # a full send buffer, an unreachable network: UDP may drop
            self.edge.counters.count_dropped("send_failed")

    def _unsent(self, count: int) -> None:
        self.edge.counters.dropped_counter("send_failed")(count)

    def _flush(self) -> None:
        counts, buckets, seconds = self.fast.take()
        for counter_id, count in counts:
            self._counters[counter_id](count)
        if any(buckets):
            self.edge.counters.observe_recognitions(buckets, seconds)

    def _slow(self, data: bytes, address: tuple[Any, ...]) -> None:
        try:
            self.edge.datagram(data, address)
        except Exception:  # a bug must not stop the socket; it is logged and counted
            log.exception("SIP datagram from %s", address[0])
            self.edge.counters.count_dropped("internal_error")

    def _decide(
        self, data: bytes, address: tuple[Any, ...], uri: str, method: str
    ) -> int | tuple[int, tuple[int, ...]]:
        """A request the fast path read: what Edge.datagram would do, counted the same.
        The index of the answer for C to build, or HANDLED; with the counters it
        incremented when the decision may be cached (see the module's docstring)."""
        edge = self.edge
        counters = edge.counters
        try:
            recognition = edge.responder.recognize(address[0], uri)
            # An unrecognised source's answers are budgeted (a token bucket): decided
            # each time, unless --sip-drop-unrecognized drops them all anyway.
            cacheable = recognition.recognized or edge.responder.config.drop_unrecognized
            incs = [counters.received_counter(method, "udp")]
            if not recognition.recognized and (reason := edge.shed_reason()):
                incs.append(counters.dropped_counter(reason))
                index = HANDLED
            else:
                verdict = edge.responder.verdict(method, uri, False, recognition)
                if verdict is None:  # to be proxied: the Python path, with this recognition
                    source = Source(address[0], address[1], "udp")
                    edge.parsed_datagram(data, source, recognition)
                    return HANDLED
                if isinstance(verdict, Drop):
                    incs.append(counters.dropped_counter(verdict.reason))
                    index = HANDLED
                else:
                    incs.extend(counters.answered_counter(status) for status in verdict.statuses)
                    index = self._index[verdict]
            for inc in incs:
                inc()
            if not cacheable:
                return index
            ids = tuple(self._counter_id(inc) for inc in incs)
            return (index, ids) if all(i >= 0 for i in ids) else index
        except Exception:  # as in _slow
            log.exception("SIP datagram from %s", address[0])
            counters.count_dropped("internal_error")
            return HANDLED

    def _counter_id(self, inc: Inc) -> int:
        found = self._counter_ids.get(inc)
        if found is None:
            if len(self._counters) == MAX_COUNTERS:
                return -1  # (label sets are fixed, so this is never reached)
            found = self._counter_ids[inc] = len(self._counters)
            self._counters.append(inc)
        return found
