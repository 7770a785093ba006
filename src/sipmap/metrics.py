"""Prometheus metrics: one registry, served at `/metrics` in the text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

FEED_BEHIND = Gauge(
    "sipmap_change_feed_behind_seconds",
    "Seconds since this node's recognition was last known to reflect every committed "
    "write (PostgreSQL change feed); 0 while it is following.",
    registry=REGISTRY,
)
FEED_POSITION = Gauge(
    "sipmap_change_feed_position",
    "The last change-log position applied to this node's recogniser.",
    registry=REGISTRY,
)
FEED_CONNECTED = Gauge(
    "sipmap_change_feed_connected",
    "1 while the change feed's connection is listening, else 0.",
    registry=REGISTRY,
)
FEED_RELOADS = Gauge(
    "sipmap_change_feed_reloads",
    "Full rebuilds of the recogniser because the log was trimmed past this node's position.",
    registry=REGISTRY,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render() -> bytes:
    return generate_latest(REGISTRY)
