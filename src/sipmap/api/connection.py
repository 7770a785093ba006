"""HTTP/1.1 connections: uvicorn's httptools protocol, plus the limits it lacks.

uvicorn bounds nothing a client sends before the application sees a request: no
limit on header size or count (httptools joins a header's pieces with `+=`, so a
32 MiB header trickled in is quadratic CPU), no deadline for the request head (any
byte re-arms its keep-alive timer), no timer at all on a connection that never
sends a byte, and no cap on open connections (at the open-file limit, accept()
fails and every new client waits). This subclass adds them through the parser's
own callbacks and uvicorn's hooks — it parses nothing itself:

- head size: bytes of an unfinished head are counted as they arrive (so a huge
  header is refused after the first read, not buffered); a head that may have
  passed `max_header_bytes` within one read is measured exactly when it is
  complete, and its fields counted (`max_headers`): 431. A head's fields are
  counted once it is complete: within the byte limit plus one read, a flood of
  tiny fields costs no more per byte than a flood of small requests.
- head deadline: from its first byte, a head must be complete in `header_timeout`
  seconds (slowloris), else 408 and the connection closes.
- body deadline: from the end of the head, the body must be complete in
  `body_timeout` seconds, else 408 and the connection closes (the application's
  wait for the body ends with http.disconnect), so a trickled body cannot hold a
  request slot.
- idle: a connection with no request in progress — new, or kept alive between
  requests — is closed after `keep_alive_timeout` seconds without a byte.
- open connections: at most `max_connections`; a new connection beyond it closes
  the connection that has been waiting longest without a request in the
  application (idle, or still sending its head), or is itself closed if every
  one is in the application.
- a body still arriving after an early answer (an error) is read and discarded
  within the same body deadline, so trickling it holds a connection no longer.
- a request the parser rejects (say, a NUL byte in a header) gets Twilio's error
  body instead of uvicorn's plain-text 400.

Fair sharing lives in the application (limits.py), where the account is known.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..core.errors import ServiceError
from .call import encode_json
from .errors import error_body

log = logging.getLogger("sipmap.api")

# File descriptors kept for everything but client connections: the listening
# sockets, database files and connections, logs.
RESERVED_FDS = 100


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000


class HeadTooLarge(ServiceError):
    status = 431
    message = "Request header fields too large"


class HeadTimeout(ServiceError):
    status = 408
    message = "Request headers not received in time"


class MalformedRequest(ServiceError):
    message = "Invalid HTTP request"


class BodyTimeout(ServiceError):
    status = 408
    message = "Request body not received in time"


def error_response(error: ServiceError) -> bytes:
    """A complete HTTP/1.1 response with Twilio's error body, closing the connection."""
    body = encode_json(error_body(error, ""))
    head = (
        f"HTTP/1.1 {error.status} {error.message}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def fit_connections(wanted: int) -> int:
    """How many connections the open-file limit allows, raising the soft limit if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
        if soft < needed:
            fitted = max(1, soft - RESERVED_FDS)
            log.warning("open-file limit %d: at most %d connections, not %d", soft, fitted, wanted)
            return fitted
    return wanted


class CoalescingTransport:
    """A connection's transport as uvicorn sees it: what is written to it in one turn of
    the event loop goes to the socket in one write, at the end of the turn.

    uvicorn writes a response's head and its body separately, and each write is a send()
    that, on a client waiting for the answer, also wakes it: two system calls and two
    wake-ups per response (one fewer made small requests 1.2-1.3x faster, measured
    side by side in docs/benchmarks.md). Held until the end of the turn
    (microseconds), they go out together. Every write on the connection
    goes through here, so the order of what is sent never changes.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # the transport sends what it holds before it closes
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # Everything else (get_extra_info, pause_reading, ...) as the transport has it.
        return getattr(self._transport, name)


class LimitedProtocol(HttpToolsProtocol):
    # Set per server by protocol_class().
    limits: ClassVar[Limits]
    # Connections that may be closed to admit a new one, longest-waiting first
    # (a dict keeps insertion order; re-inserting moves one to the end).
    evictable: ClassVar[dict[LimitedProtocol, None]]

    # The common request arrives whole in one read; it then costs no timer and no
    # measuring. A timer is armed only when a read leaves a head or body unfinished,
    # and a head is measured only when more than the limit may have come. Few
    # overrides, since each one is paid on every request.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes read since the current head began: a bound on its size. (Bytes after
        # the end of a request in the same read are not counted: at most one read.)
        self.head_bytes = 0
        self.read_size = 0  # the read being parsed
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        # After uvicorn has read the addresses and set up flow control on the real one.
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type, assignment]
        if len(self.connections) > self.limits.max_connections:
            if not self.evictable:
                transport.close()
                return
            oldest = next(iter(self.evictable))
            del self.evictable[oldest]
            oldest.transport.close()
        self.evictable[self] = None
        # uvicorn arms its keep-alive timer only after a response.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.evictable.pop(self, None)
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.read_size = len(data)
        cycle = self.cycle
        if cycle is None or not cycle.more_body:  # between requests, or in a head
            self.head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no upgrades are served (ws="none"); the request is answered as is
        except httptools.HttpParserError as failure:
            # An error raised in one of our callbacks comes back as the context.
            cause = failure.__context__
            self._reject(cause if isinstance(cause, ServiceError) else MalformedRequest())
            return
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # a body still to come
            if self.body_timer is None:
                self.body_timer = self.loop.call_later(self.limits.body_timeout, self._body_late)
            return
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None
        if self.head_bytes:  # a head begun and unfinished
            if self.head_bytes > self.limits.max_header_bytes:
                self._reject(HeadTooLarge())
            elif self.head_timer is None:
                self.head_timer = self.loop.call_later(
                    self.limits.header_timeout, self._reject, HeadTimeout()
                )

    def _body_late(self) -> None:
        self.body_timer = None
        if self.cycle.response_started:
            self.transport.close()
        else:
            # Closing ends the application's wait for the body (http.disconnect).
            self._reject(BodyTimeout(), answering=self.cycle)

    def _reject(self, error: ServiceError, answering: Any = None) -> None:
        """Answer `error` and close. `answering`: the request in progress it answers."""
        self._cancel_timers()
        if self.transport.is_closing():
            return
        # While an earlier (pipelined) request is still being answered, a response
        # written now would land inside that one: just close.
        if self.cycle is None or self.cycle.response_complete or self.cycle is answering:
            self.transport.write(error_response(error))
        self.transport.close()

    def _cancel_timers(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def send_400_response(self, msg: str) -> None:
        self._reject(MalformedRequest())

    # Parser callbacks

    def on_headers_complete(self) -> None:
        limits = self.limits
        if len(self.headers) > limits.max_headers:
            raise HeadTooLarge(f"More than {limits.max_headers} request header fields")
        limit = limits.max_header_bytes
        if (self.head_bytes > limit or self.read_size > limit) and self._head_size() > limit:
            raise HeadTooLarge()
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        self.head_bytes = 0
        self.evictable.pop(self, None)  # in the application now
        super().on_headers_complete()

    def _head_size(self) -> int:
        """The request line and header fields, as sent (give or take the separators)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_response_complete(self) -> None:
        # A request answered before its body was all read (an error) has the rest
        # read and thrown away, as uvicorn does, within the same body deadline.
        # (Closing instead would reset the connection under the client's feet: unread
        # bytes make the kernel send RST, which can destroy the response in flight.)
        super().on_response_complete()
        if not self.transport.is_closing():
            self.evictable[self] = None


def protocol_class(limits: Limits) -> type[LimitedProtocol]:
    """The protocol class for one server: its limits, and its own set of connections."""

    class Protocol(LimitedProtocol):
        pass

    Protocol.limits = limits
    Protocol.evictable = {}
    return Protocol
