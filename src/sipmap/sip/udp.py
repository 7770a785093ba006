"""The SIP edge's UDP socket: datagrams read in batches, the common requests answered in C.

On each readiness event the C fast path (`_fast.FastPath.pump`) reads up to `BATCH`
waiting datagrams with one recvmmsg(), so HTTP keeps its turns between batches. A
request it fully understands (sip_scan.c: plain headers, no Route, an ordinary Via) is
decided here in Python - recognition, the shedding of unrecognised sources, the
responder's rules (`Responder.verdict`), the counters - and answered from C with one
sendmmsg() per batch. Everything else (responses, forwarding, in-dialog requests,
malformed or unusual messages) goes to `Edge.datagram`, the Python path, unchanged.
The replies are byte for byte what the Python path sends (tests/sip/test_fast.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from ._fast import FastPath
from .responder import Answer, Drop, Responder, Source

if TYPE_CHECKING:
    from .transport import Edge

log = logging.getLogger("sipmap.sip")

BATCH = 32  # datagrams per readiness event, at most
HANDLED = -1  # decide's answer when nothing is left for C to send


def wire_answers(responder: Responder) -> list[tuple[tuple[bytes, bytes, bool], ...]]:
    """The responder's answers as the fast path builds them: per response, the status
    line, the fixed headers after CSeq (Server, then the answer's extra headers) and
    whether To gets our tag (final responses), as responder._reply writes them."""
    from .responder import SERVER
    from .serializer import reason_phrase

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
        self.fast = FastPath(wire_answers(responder), edge.max_message, BATCH)
        self._index: dict[Answer, int] = {a: i for i, a in enumerate(responder.answers)}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, address)
        except OSError:  # a full send buffer, an unreachable network: UDP may drop
            self.edge.counters.count_dropped("send_failed")

    def _readable(self) -> None:
        _, unsent = self.fast.pump(self.sock.fileno(), self._decide, self._slow)
        for _ in range(unsent):
            self.edge.counters.count_dropped("send_failed")

    def _slow(self, data: bytes, address: tuple[Any, ...]) -> None:
        try:
            self.edge.datagram(data, address)
        except Exception:  # a bug must not stop the socket; it is logged and counted
            log.exception("SIP datagram from %s", address[0])
            self.edge.counters.count_dropped("internal_error")

    def _decide(self, data: bytes, address: tuple[Any, ...], uri: str, method: str) -> int:
        """A request the fast path read: what Edge.datagram would do, counted the same;
        the index of the answer for C to build, or HANDLED."""
        edge = self.edge
        counters = edge.counters
        try:
            recognition = edge.responder.recognize(address[0], uri)
            if not recognition.recognized:
                reason = edge.shed_reason()
                if reason:
                    counters.count_received(method, "udp")
                    counters.count_dropped(reason)
                    return HANDLED
            verdict = edge.responder.verdict(method, uri, False, recognition)
            if verdict is None:  # to be proxied: the Python path, with this recognition
                edge.parsed_datagram(data, Source(address[0], address[1], "udp"), recognition)
                return HANDLED
            counters.count_received(method, "udp")
            if isinstance(verdict, Drop):
                counters.count_dropped(verdict.reason)
                return HANDLED
            for status in verdict.statuses:
                counters.count_answered(status)
            return self._index[verdict]
        except Exception:  # as in _slow
            log.exception("SIP datagram from %s", address[0])
            counters.count_dropped("internal_error")
            return HANDLED
