"""The SIP edge's Prometheus counters. Every label takes values from a fixed set (a
hostile peer cannot mint new series): methods outside the known ones count as `other`,
statuses are our own answers, reasons are the parser's and responder's constants."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..recognize.recognizer import Recognition
from .responder import Recognize

METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK",
     "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH")
)  # fmt: skip
# Recognition takes about a microsecond; the buckets resolve that and outliers.
BUCKETS = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2, 0.1)


class SipCounters:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "sipmap_sip_received",
            "SIP messages received, by method (`response` for responses, `malformed` "
            "for what could not be parsed) and transport.",
            ["method", "transport"],
            registry=registry,
        )
        self.answered = Counter(
            "sipmap_sip_answered",
            "Responses the edge generated itself, by status code.",
            ["status"],
            registry=registry,
        )
        self.forwarded = Counter(
            "sipmap_sip_forwarded",
            "Messages proxied on: requests to the upstream or a dialog's next hop, "
            "responses back along the Via path.",
            ["kind"],
            registry=registry,
        )
        self.dropped = Counter(
            "sipmap_sip_dropped",
            "Messages (or TCP connections) given no answer, by reason.",
            ["reason"],
            registry=registry,
        )
        self.recognition = Histogram(
            "sipmap_sip_recognition_seconds",
            "Time spent recognising a request (source IP and Request-URI to a decision).",
            buckets=BUCKETS,
            registry=registry,
        )
        self.connections = Gauge(
            "sipmap_sip_tcp_connections", "Open SIP TCP connections.", registry=registry
        )
        # Label lookups cost more than the increments: children are cached.
        self._received: dict[tuple[str, str], Callable[[], None]] = {}
        self._answered: dict[int, Callable[[], None]] = {}
        self._dropped: dict[str, Callable[[], None]] = {}
        self._forwarded: dict[str, Callable[[], None]] = {}

    def count_received(self, method: str, transport: str) -> None:
        key = (method if method in METHODS or method in ("response", "malformed") else "other",
               transport)  # fmt: skip
        inc = self._received.get(key)
        if inc is None:
            inc = self._received[key] = self.received.labels(*key).inc
        inc()

    def count_answered(self, status: int) -> None:
        inc = self._answered.get(status)
        if inc is None:
            inc = self._answered[status] = self.answered.labels(str(status)).inc
        inc()

    def count_forwarded(self, kind: str) -> None:
        inc = self._forwarded.get(kind)
        if inc is None:
            inc = self._forwarded[kind] = self.forwarded.labels(kind).inc
        inc()

    def count_dropped(self, reason: str) -> None:
        inc = self._dropped.get(reason)
        if inc is None:
            inc = self._dropped[reason] = self.dropped.labels(reason).inc
        inc()

    def timed(self, recognize: Recognize) -> Recognize:
        """`recognize`, observing how long each call takes."""
        observe = self.recognition.observe
        clock = time.perf_counter

        def timed_recognize(source_ip: str, request_uri: str | None) -> Recognition:
            started = clock()
            result = recognize(source_ip, request_uri)
            observe(clock() - started)
            return result

        return timed_recognize
