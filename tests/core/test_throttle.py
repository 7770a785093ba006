"""Failed-login throttling: buckets, who is held back and for how long, bounded memory."""

from __future__ import annotations

import pytest

from sipmap.core.throttle import Buckets, LoginThrottle, source_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_empties_after_its_size_and_refills_steadily() -> None:
    clock = Clock()
    buckets = Buckets(3, 60.0, clock, 100)
    assert [buckets.take("a") for _ in range(3)] == [False, False, True]
    assert buckets.wait("a") == pytest.approx(20.0)  # one token per 20 s
    assert buckets.wait("b") == 0
    clock.now += 20
    assert buckets.wait("a") == 0
    buckets.take("a")
    assert buckets.wait("a") == pytest.approx(20.0)
    clock.now += 1000
    assert [buckets.take("a") for _ in range(3)] == [False, False, True]  # never above size


def test_memory_is_bounded_by_forgetting_the_least_recently_used() -> None:
    buckets = Buckets(1, 60.0, Clock(), 100)
    buckets.take("first")
    for n in range(500):
        buckets.take(f"rotating-{n}")
    assert len(buckets) == 100
    assert buckets.wait("first") == 0
    assert buckets.wait("rotating-499") > 0


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "?"),
        ("unix-socket", "unix-socket"),
    ],
)
def test_sources_are_counted_per_address_or_ipv6_64(source: str | None, key: str) -> None:
    assert source_key(source) == key


def test_a_source_is_held_back_and_others_are_not() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_source=3, per_username=100, clock=clock)
    assert [throttle.failed("192.0.2.1", "AC1") for _ in range(3)] == [False, False, True]
    verdict = throttle.check("192.0.2.1", "AC2")
    assert not verdict.allowed and verdict.retry_after_seconds == 20
    assert throttle.check("192.0.2.2", "AC1").allowed
    clock.now += 20
    assert throttle.check("192.0.2.1", "AC1").allowed


def test_a_username_is_held_back_except_from_where_it_logged_in() -> None:
    throttle = LoginThrottle(per_source=100, per_username=5, clock=Clock())
    throttle.succeeded("198.51.100.1", "AC1")
    for n in range(5):
        throttle.failed(f"203.0.113.{n}", "AC1")  # many addresses, one account
    assert not throttle.check("203.0.113.200", "AC1").allowed
    assert throttle.check("198.51.100.1", "AC1").allowed  # its own client keeps working
    assert throttle.check("203.0.113.200", "AC2").allowed


def test_zero_means_no_limit() -> None:
    throttle = LoginThrottle(per_source=0, per_username=0, clock=Clock())
    for _ in range(1000):
        throttle.failed("192.0.2.1", "AC1")
    assert throttle.check("192.0.2.1", "AC1").allowed
    only_sources = LoginThrottle(per_source=2, per_username=0, clock=Clock())
    for n in range(10):
        only_sources.failed(f"192.0.2.{n}", "AC1")
    only_sources.failed("192.0.2.1", "AC1")
    assert only_sources.check("192.0.2.100", "AC1").allowed
    assert not only_sources.check("192.0.2.1", "AC9").allowed
