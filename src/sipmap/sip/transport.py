"""The asyncio rim of the SIP edge: UDP and TCP sockets in, parser → responder → actions out.

Everything protocol-related happens in the parser and the responder; this module only
moves bytes and enforces resource bounds, because any peer reaching the port may be
hostile:
- UDP (udp.py): one datagram, one bounded piece of work (parse, one recognition, one
  reply); a bounded batch is read per turn, so HTTP requests keep their turns.
  A datagram whose first line shows an unrecognised request is dropped unparsed with
  --sip-drop-unrecognized, or beyond `unrecognized_answers` answers a second.
- TCP: a connection cap (beyond it, new connections are closed at once), and a
  tenth of it per source IP; each
  connection buffers at most `max_message` bytes of an incomplete message; a message
  must complete within MESSAGE_TIMEOUT of its first byte and a connection that sends
  nothing for `idle_timeout` is closed (a sweep, not a timer per connection, so
  thousands of idle connections cost nothing per byte); a peer that does not read
  its responses is cut off once WRITE_LIMIT bytes are waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, Protocol, cast

from ..recognize.recognizer import Recognition
from .counters import SipCounters
from .parser import ParseError, StreamParser, parse_datagram
from .responder import Action, Drop, Forward, Reply, Responder, Source, Target
from .udp import UdpEndpoint

log = logging.getLogger("sipmap.sip")

MESSAGE_TIMEOUT = 10.0  # seconds from a message's first byte to its last (slowloris),
# or the idle timeout if shorter
WRITE_LIMIT = 1 << 20  # bytes queued for a peer that does not read
SWEEP_INTERVAL = 1.0
PENDING_LIMIT = 256
# One source IP may hold at most this share of the connection cap, so that one tenant
# cannot take every slot.
PER_IP_SHARE = 10  # messages waiting for an outgoing TCP connection to open


class Versioned(Protocol):
    generation: int


class Edge:
    def __init__(
        self,
        responder: Responder,
        counters: SipCounters,
        *,
        max_message: int,
        idle_timeout: float,
        max_connections: int,
        unrecognized_answers: int,
        recognizer: Versioned | None = None,
    ) -> None:
        self.responder = responder
        # What the responder recognises with, if the UDP fast path may cache its
        # decisions: its `generation` changes whenever its answers may.
        self.recognizer = recognizer
        self.counters = counters
        self.max_message = max_message
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        # Answers (403/404) to unrecognised UDP sources a second; beyond it they are
        # dropped unparsed (`shed_unrecognized`), so that a flood costs a first-line
        # check per datagram and recognised traffic and the API keep the CPU.
        self.unrecognized_answers = unrecognized_answers
        self._udp: dict[int, UdpEndpoint] = {}  # by address family
        self._servers: list[asyncio.Server] = []
        self.connections: dict[tuple[str, int], TcpConnection] = {}
        self._latest: dict[str, TcpConnection] = {}  # newest connection from each IP
        self._per_ip: dict[str, int] = {}  # open connections by peer IP
        self._sweeper: asyncio.Task[None] | None = None
        self._tokens = float(unrecognized_answers)
        self._refilled = 0.0

    async def start(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            if sock.type == socket.SOCK_DGRAM:
                endpoint = UdpEndpoint(self, sock)
                endpoint.start(loop)
                self._udp[sock.family] = endpoint
            else:
                server = await loop.create_server(lambda: TcpConnection(self), sock=sock)
                self._servers.append(server)
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for server in self._servers:
            server.close()
        for connection in list(self.connections.values()):
            connection.abort()
        for endpoint in self._udp.values():
            endpoint.close()

    # -- one message ------------------------------------------------------------------

    def datagram(self, data: bytes, address: tuple[Any, ...]) -> None:
        """One datagram the fast path (udp.py) left to Python."""
        source = Source(address[0], address[1], "udp")
        recognition = self.responder.recognise_first_line(data, source)
        if recognition is not None and not recognition.recognized:
            reason = self.shed_reason()
            if reason:
                method = data.split(b" ", 1)[0].decode("ascii", "replace")
                self.counters.count_received(method, "udp")
                self.counters.count_dropped(reason)
                return
        self.parsed_datagram(data, source, recognition)

    def parsed_datagram(self, data: bytes, source: Source, recognition: Recognition | None) -> None:
        """Parse, then answer or forward (`recognition`: the request's, if known)."""
        try:
            message = parse_datagram(data, self.max_message)
        except ParseError as error:
            self.counters.count_received("malformed", "udp")
            self.run(self.responder.handle_error(error, source), source, None)
            return
        if message is None:  # keep-alive
            return
        method = message.method if hasattr(message, "method") else "response"
        self.counters.count_received(method, "udp")
        self.run(self.responder.handle(message, source, recognition), source, None)

    def shed_reason(self) -> str:
        """Why a request from an unrecognised source gets no answer ('' if it gets one)."""
        if self.responder.config.drop_unrecognized:
            return "unrecognized"
        return "" if self._may_answer_unrecognised() else "shed_unrecognized"

    def _may_answer_unrecognised(self) -> bool:
        """A token bucket: `unrecognized_answers` a second, bursts as big."""
        now = asyncio.get_running_loop().time()
        rate = self.unrecognized_answers
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def run(self, actions: list[Action], source: Source, via: TcpConnection | None) -> None:
        counters = self.counters
        for action in actions:
            if isinstance(action, Reply):
                counters.count_answered(action.status)
                if via is not None:
                    via.write(action.data)
                else:
                    self._sendto(action.data, action.address)
            elif isinstance(action, Forward):
                counters.count_forwarded(action.kind)
                self._forward(action)
            elif isinstance(action, Drop):
                counters.count_dropped(action.reason)

    def _sendto(self, data: bytes, address: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        endpoint = self._udp.get(family)
        if endpoint is None:  # e.g. an IPv6 target from an IPv4-only edge
            self.counters.count_dropped("no_socket_for_family")
            return
        endpoint.sendto(data, address)

    def _forward(self, action: Forward) -> None:
        target = action.target
        if target.transport == "udp":
            self._sendto(action.data, (target.host, target.port))
            return
        connection = self.connections.get((target.host, target.port))
        if connection is None and action.kind == "response":
            # A TCP client's Via names its listening port, not the connection's.
            connection = self._latest.get(target.host)
        if connection is not None:
            connection.write(action.data)
        elif action.kind == "response":
            self.counters.count_dropped("no_connection")
        else:
            self._connect(target).write(action.data)

    def _connect(self, target: Target) -> TcpConnection:
        connection = TcpConnection(self, outgoing=True)
        self.connections[(target.host, target.port)] = connection
        loop = asyncio.get_running_loop()

        async def open_it() -> None:
            try:
                await loop.create_connection(lambda: connection, target.host, target.port)
            except OSError:
                self.counters.count_dropped("connect_failed")
                connection.connection_lost(None)

        connection.opening = loop.create_task(open_it())
        connection.peer = (target.host, target.port)
        return connection

    # -- TCP bookkeeping ---------------------------------------------------------------

    def register(self, connection: TcpConnection) -> bool:
        ip = connection.peer[0]
        if not connection.outgoing:
            if len(self.connections) >= self.max_connections:
                self.counters.count_dropped("connection_limit")
                return False
            if self._per_ip.get(ip, 0) >= max(1, self.max_connections // PER_IP_SHARE):
                self.counters.count_dropped("connection_limit_per_source")
                return False
        connection.counted = True
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        self.connections[connection.peer] = connection
        self._latest[connection.peer[0]] = connection
        self.counters.connections.set(len(self.connections))
        return True

    def unregister(self, connection: TcpConnection) -> None:
        ip = connection.peer[0]
        if connection.counted:
            connection.counted = False
            left = self._per_ip.get(ip, 1) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)
        if self.connections.get(connection.peer) is connection:
            del self.connections[connection.peer]
        if self._latest.get(connection.peer[0]) is connection:
            del self._latest[connection.peer[0]]
        self.counters.connections.set(len(self.connections))

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.counters.flush()  # the fast path's counts, for readers other than /metrics
            now = loop.time()
            message_timeout = min(MESSAGE_TIMEOUT, self.idle_timeout)
            for connection in list(self.connections.values()):
                if connection.started is not None and now - connection.started > message_timeout:
                    self.counters.count_dropped("tcp_message_timeout")
                    connection.abort()
                elif now - connection.last_seen > self.idle_timeout:
                    self.counters.count_dropped("tcp_idle_timeout")
                    connection.abort()


class TcpConnection(asyncio.Protocol):
    def __init__(self, edge: Edge, outgoing: bool = False) -> None:
        self.edge = edge
        self.outgoing = outgoing
        self.parser = StreamParser(edge.max_message)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.last_seen = asyncio.get_running_loop().time()
        self.started: float | None = None  # when the pending partial message began
        self.pending: list[bytes] = []  # written before an outgoing connection opened
        self.opening: asyncio.Task[None] | None = None
        self.closed = False
        self.counted = False  # in the edge's per-IP count

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else self.peer
        if not self.edge.register(self):
            self.transport.abort()
            self.closed = True
            return
        for data in self.pending:
            self.transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        edge = self.edge
        self.last_seen = asyncio.get_running_loop().time()
        source = Source(self.peer[0], self.peer[1], "tcp")
        try:
            messages = self.parser.feed(data)
        except ParseError as error:
            # Framing is lost: answer if we can, then close.
            edge.counters.count_received("malformed", "tcp")
            edge.run(edge.responder.handle_error(error, source), source, self)
            if self.transport is not None:
                self.transport.close()
            return
        try:
            for message in messages:
                method = message.method if hasattr(message, "method") else "response"
                edge.counters.count_received(method, "tcp")
                edge.run(edge.responder.handle(message, source), source, self)
        except Exception:
            log.exception("SIP over TCP from %s", self.peer[0])
            edge.counters.count_dropped("internal_error")
            self.abort()
            return
        self.started = (self.started or self.last_seen) if len(self.parser) else None

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.transport is None:
            if len(self.pending) < PENDING_LIMIT:
                self.pending.append(data)
            else:
                self.edge.counters.count_dropped("tcp_pending_full")
            return
        if self.transport.get_write_buffer_size() > WRITE_LIMIT:
            self.edge.counters.count_dropped("tcp_slow_reader")
            self.abort()
            return
        self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        else:
            self.connection_lost(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.edge.unregister(self)
