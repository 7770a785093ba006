"""The SIP edge's Prometheus counters. Every label takes values from a fixed set (a
hostile peer cannot mint new series): methods outside the known ones count as `other`,
statuses are our own answers, reasons are the parser's and responder's constants."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from ..recognize.recognizer import Recognition
from .responder import Recognize

METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK",
     "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH")
)  # fmt: skip
# Recognition takes about a microsecond; the buckets resolve that and outliers.
BUCKETS = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2, 0.1)
BUCKET_BOUNDS = (*BUCKETS, math.inf)  # the histogram's buckets, the last one unbounded

Inc = Callable[..., None]  # a labelled counter's inc(amount=1)


class _Flush:
    """A collector that collects nothing: it hands counts kept elsewhere (the UDP fast
    path's cache hits, counted in C) over to the counters before they are collected."""

    def __init__(self, flushes: list[Callable[[], None]]) -> None:
        self.flushes = flushes

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for flush in self.flushes:
            flush()
        yield from ()


class SipCounters:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Registered before the counters: the registry collects in registration order,
        # so a scrape sees the counts handed over just before.
        self._flushes: list[Callable[[], None]] = []
        registry.register(_Flush(self._flushes))
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
        self._received: dict[tuple[str, str], Inc] = {}
        self._answered: dict[int, Inc] = {}
        self._dropped: dict[str, Inc] = {}
        self._forwarded: dict[str, Inc] = {}

    def received_counter(self, method: str, transport: str) -> Inc:
        key = (method if method in METHODS or method in ("response", "malformed") else "other",
               transport)  # fmt: skip
        inc = self._received.get(key)
        if inc is None:
            inc = self._received[key] = self.received.labels(*key).inc
        return inc

    def answered_counter(self, status: int) -> Inc:
        inc = self._answered.get(status)
        if inc is None:
            inc = self._answered[status] = self.answered.labels(str(status)).inc
        return inc

    def dropped_counter(self, reason: str) -> Inc:
        inc = self._dropped.get(reason)
        if inc is None:
            inc = self._dropped[reason] = self.dropped.labels(reason).inc
        return inc

    def count_received(self, method: str, transport: str) -> None:
        self.received_counter(method, transport)()

    def count_answered(self, status: int) -> None:
        self.answered_counter(status)()

    def count_forwarded(self, kind: str) -> None:
        inc = self._forwarded.get(kind)
        if inc is None:
            inc = self._forwarded[kind] = self.forwarded.labels(kind).inc
        inc()

    def count_dropped(self, reason: str) -> None:
        self.dropped_counter(reason)()

    def add_flush(self, flush: Callable[[], None]) -> None:
        """`flush` hands counts kept elsewhere over; called before every collection
        and by `flush`."""
        self._flushes.append(flush)

    def flush(self) -> None:
        for flush in self._flushes:
            flush()

    def observe_recognitions(self, buckets: list[int], seconds: float) -> None:
        """Recognitions timed elsewhere, already sorted into BUCKET_BOUNDS (the fast
        path's cache hits), added as `recognition.observe` would add them one by one."""
        histogram = self.recognition
        total, cells = _internals(histogram)
        if total is None or cells is None or len(cells) != len(buckets):
            # prometheus_client has no public bulk observe; should its internals change,
            # one observation per count at its bucket's bound (the sum is approximate).
            for bound, count in zip(BUCKET_BOUNDS, buckets, strict=False):
                value = bound if bound != math.inf else 2 * BUCKETS[-1]
                for _ in range(count):
                    histogram.observe(value)
            return
        total.inc(seconds)
        for bucket, count in zip(cells, buckets, strict=True):
            if count:
                bucket.inc(count)

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


def _internals(histogram: Histogram) -> tuple[Any, Any]:
    """The histogram's sum and bucket counters (prometheus_client's private fields),
    or Nones if it no longer has them."""
    return getattr(histogram, "_sum", None), getattr(histogram, "_buckets", None)
