"""The PostgreSQL row cache: the race between a read and the feed, eviction, reloads
(pure), and in-process on two nodes of one schema — every read on either node returns
the row as the last acknowledged write left it, and reads are served from memory."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipmap.core.errors import ServiceError
from sipmap.core.models import Account, ApiKey, IpRecord, SourceIpMapping
from sipmap.node import Node
from sipmap.store.feed_cache import MISSING, FeedCache, cacheable, decode_change
from sipmap.store.postgres import PostgresStore

from .test_feed import ACCOUNT, _t, two_nodes

SID = "IL" + "1" * 32
OTHER = "IL" + "2" * 32


def record(sid: str, name: str) -> IpRecord:
    return IpRecord(sid, ACCOUNT, name, "10.0.0.1", 32, _t(0), _t(0))


def test_a_filled_row_is_served_until_the_feed_changes_it() -> None:
    cache = FeedCache()
    cache.apply([], 5)
    assert cache.lookup(IpRecord, SID) is MISSING
    cache.fill(IpRecord, SID, record(SID, "a"), cache.position)
    assert cache.lookup(IpRecord, SID) == record(SID, "a")
    cache.apply([(IpRecord, SID, record(SID, "b"))], 6)
    assert cache.lookup(IpRecord, SID) == record(SID, "b")
    cache.apply([(IpRecord, SID, None)], 7)
    assert cache.lookup(IpRecord, SID) is None  # known to be gone


def test_a_read_that_raced_a_change_does_not_overwrite_it() -> None:
    cache = FeedCache()
    cache.apply([], 5)
    since = cache.position  # a read begins...
    cache.apply([(IpRecord, SID, record(SID, "new"))], 6)  # ...the feed changes the row...
    cache.fill(IpRecord, SID, record(SID, "old"), since)  # ...the read returns the old row
    assert cache.lookup(IpRecord, SID) == record(SID, "new")


def test_a_read_that_raced_a_change_evicted_since_is_not_filed() -> None:
    cache = FeedCache(max_rows=1)
    cache.apply([], 5)
    since = cache.position
    cache.apply([(IpRecord, SID, record(SID, "new"))], 6)
    cache.apply([(IpRecord, OTHER, record(OTHER, "x"))], 7)  # evicts SID's entry
    cache.fill(IpRecord, SID, record(SID, "old"), since)
    assert cache.lookup(IpRecord, SID) is MISSING
    # A read begun after the eviction is filed.
    cache.fill(IpRecord, SID, record(SID, "new"), cache.position)
    assert cache.lookup(IpRecord, SID) == record(SID, "new")
    assert len(cache) == 1


def test_a_full_reload_forgets_everything_and_reads_begun_before_it() -> None:
    cache = FeedCache()
    cache.apply([(IpRecord, SID, record(SID, "a"))], 3)
    since = cache.position
    cache.apply(None, 10)
    assert cache.lookup(IpRecord, SID) is MISSING
    cache.fill(IpRecord, SID, record(SID, "a"), since)
    assert cache.lookup(IpRecord, SID) is MISSING


def test_only_what_the_feed_carries_in_full_is_cached() -> None:
    assert cacheable(IpRecord, {"account_sid": ACCOUNT})
    assert cacheable(SourceIpMapping, {})
    assert not cacheable(Account, {})  # only its status is logged
    assert not cacheable(ApiKey, {})  # not logged
    assert not cacheable(IpRecord, {"cidr_prefix_length": 32})  # not a text filter
    row = {"seq": 1, "sid": SID, "account_sid": ACCOUNT, "friendly_name": "f",
           "ip_address": "10.0.0.1", "cidr_prefix_length": 32, "date_created": 0,
           "date_updated": 0}  # fmt: skip
    assert decode_change("ip_records", False, row) == (IpRecord, SID, record(SID, "f"))
    assert decode_change("ip_records", True, row) == (IpRecord, SID, None)
    assert decode_change("accounts", False, {"sid": ACCOUNT, "status": "active"}) is None


# -- two nodes in-process ------------------------------------------------------------


async def leases_held(nodes: tuple[Node, ...]) -> None:
    """Wait until every node holds its lease (its feed thread takes it after start)."""
    for _ in range(500):
        if all(node.feed is not None and node.feed.lease_held() for node in nodes):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("a node never took its lease")


# (node, action, a number choosing the record and the name); action 3 reads only.
steps = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(0, 50)), min_size=1, max_size=40
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_every_read_on_either_node_follows_the_last_acknowledged_write(
    steps: list[tuple[int, int, int]],
) -> None:
    async def scenario() -> None:
        async with two_nodes() as nodes:
            await leases_held(nodes)
            services = [node.service for node in nodes]
            made: list[str] = []
            expected: dict[str, str | None] = {}  # sid -> friendly name, None: deleted
            for which, action, n in steps:
                voice = services[which].voice
                with contextlib.suppress(ServiceError):
                    if action == 0 or not made:
                        new = await voice.create_ip_record(ACCOUNT, "10.0.0.1", 32, f"c{n}")
                        made.append(new.sid)
                        expected[new.sid] = f"c{n}"
                    elif action == 1:
                        sid = made[n % len(made)]
                        await voice.update_ip_record(ACCOUNT, sid, f"u{n}")
                        expected[sid] = f"u{n}"
                    elif action == 2:
                        sid = made[n % len(made)]
                        await voice.delete_ip_record(ACCOUNT, sid)
                        expected[sid] = None
                # Right after the write returned, on both nodes, every record.
                for node in nodes:
                    for sid, name in expected.items():
                        got = await node.store.get(IpRecord, sid, account_sid=ACCOUNT)
                        assert (got.friendly_name if got else None) == name, (sid, which)
            for node in nodes:
                assert isinstance(node.store, PostgresStore) and node.store.cache is not None
                assert node.store.cache.hits > 0  # served from memory, not only read through

    asyncio.run(scenario())


def test_a_node_whose_lease_lapsed_reads_through() -> None:
    async def scenario() -> None:
        async with two_nodes() as (a, b):
            await leases_held((a, b))
            assert isinstance(b.store, PostgresStore) and b.feed is not None
            assert b.store.cache is not None and b.feed.lease is not None
            made = await a.service.voice.create_ip_record(ACCOUNT, "10.0.0.1", 32, "x")
            await b.store.get(IpRecord, made.sid)
            hits = b.store.cache.hits
            await b.store.get(IpRecord, made.sid)
            assert b.store.cache.hits == hits + 1
            b.feed.lease.lapse()
            assert (await b.store.get(IpRecord, made.sid)) == made
            assert b.store.cache.hits == hits + 1  # read through, not from the cache

    asyncio.run(scenario())


def test_a_loop_that_stops_applying_stops_the_lease_renewals() -> None:
    """The feed renews (acknowledges) only once the loop applied what it was handed; a
    loop that leaves a hand-off unapplied for STALL seconds gets no renewal, so its
    lease runs out and nobody waits for it."""
    import threading
    import time

    from sipmap.store.feed import ChangeFeed
    from sipmap.store.leases import STALL, Lease

    def unused(*_: object) -> None:
        raise AssertionError("not called")

    feed = ChangeFeed(unused, unused, unused, unused, lease=Lease())  # type: ignore[arg-type]
    feed._fetched, feed._applied = 5, 3
    feed._handed.append((5, time.monotonic() - STALL - 0.1))  # handed long ago
    assert feed._wait_for_loop() is False
    feed._handed.clear()
    feed._handed.append((5, time.monotonic()))

    def apply_soon() -> None:
        time.sleep(0.05)
        feed._applied = 5
        feed._loop_applied.set()

    threading.Thread(target=apply_soon).start()
    assert feed._wait_for_loop() is True
    assert not feed._handed
