"""The SIP counters' bulk recognition observations (the fast path's cache hits) land
in the same histogram buckets as one `observe` each would, through prometheus_client's
internals or, should those change, through its public API."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from sipmap.sip.counters import BUCKET_BOUNDS, SipCounters


def buckets_of(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["le"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "sipmap_sip_recognition_seconds_bucket"
    }


@pytest.mark.parametrize("internals", [True, False])
def test_bulk_observations_fill_the_buckets_one_by_one_would(
    internals: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = [3, 0, 7, 1, *([0] * (len(BUCKET_BOUNDS) - 5)), 2]
    one_by_one, bulk = CollectorRegistry(), CollectorRegistry()
    single = SipCounters(one_by_one)
    for bound, count in zip(BUCKET_BOUNDS, counts, strict=True):
        for _ in range(count):
            single.recognition.observe(bound if bound != float("inf") else 1.0)
    counters = SipCounters(bulk)
    if not internals:  # as if prometheus_client had changed
        monkeypatch.setattr("sipmap.sip.counters._internals", lambda histogram: (None, None))
    counters.observe_recognitions(counts, 0.5)
    assert buckets_of(bulk) == buckets_of(one_by_one)
    assert buckets_of(bulk)["+Inf"] == sum(counts)
