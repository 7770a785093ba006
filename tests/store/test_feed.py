"""The change feed in-process: two nodes (store, service, recogniser, feed) on one
PostgreSQL schema, driven through the service layer, with connections cut and the log
trimmed; each recogniser must end equal to one loaded fresh from the database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from ipaddress import IPv4Address
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipmap.core.errors import ServiceError
from sipmap.core.models import Account, IpAddress, SipDomain, SourceIpMapping
from sipmap.node import Node, node_over
from sipmap.recognize.recognizer import Recognizer
from sipmap.service import Service
from sipmap.store.feed import decode
from sipmap.store.postgres import PostgresStore

from ..pg import base_url, scratch_database

ACCOUNT = "AC" + "c" * 32
SUFFIX = ".sip.twilio.com"


def node(url: str, log_keep: int) -> Node:
    store = PostgresStore(url, timeout=5.0, log_keep=log_keep)
    return node_over(store)


@asynccontextmanager
async def two_nodes(log_keep: int = 100_000) -> AsyncIterator[tuple[Node, Node]]:
    with scratch_database() as url:
        nodes = (node(url, log_keep), node(url, log_keep))
        try:
            stamp = 0
            account = Account(ACCOUNT, ACCOUNT, "c", "active", "0" * 64, *[_t(stamp)] * 2)
            await nodes[0].store.write(lambda tx: tx.insert(account))
            for each in nodes:
                await each.load()
            yield nodes
        finally:
            for each in nodes:
                await each.close()


def _t(stamp: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC)


async def settled(nodes: tuple[Node, ...]) -> Recognizer:
    """Wait until every node applied the log's head; a recogniser loaded fresh."""
    store = nodes[0].store
    assert isinstance(store, PostgresStore)

    def head() -> int:
        with psycopg.connect(store.dsn) as conn:
            row = conn.execute("SELECT coalesce(max(pos), 0) FROM change_log").fetchone()
            return int(row[0]) if row else 0

    position = await asyncio.to_thread(head)
    for each in nodes:
        assert each.feed is not None
        assert await each.feed.reached(position, 30.0), each.feed.status()
    fresh = Recognizer()
    await asyncio.to_thread(fresh.load, store)
    return fresh


async def probes(node: Node) -> list[tuple[str, str | None]]:
    """Source IPs and Request-URIs that tell recognisers apart: inside every mapped
    network and ACL address, and every domain's name."""

    def rows(tx: Any) -> tuple[Any, ...]:
        return tx.find(SourceIpMapping), tx.find(IpAddress), tx.find(SipDomain)

    mappings, addresses, domains = await node.store.read(rows)
    ips = {str(IPv4Address(m.network + 1)) for m in mappings}
    ips |= {str(IPv4Address(a.network)) for a in addresses}
    ips |= {"192.0.2.200", "10.0.0.1"}
    found: list[tuple[str, str | None]] = [(ip, None) for ip in sorted(ips)]
    found += [(ip, f"sip:x@{d.domain_name}") for d in domains for ip in sorted(ips)[:3]]
    return found


def same(one: Recognizer, other: Recognizer, cases: list[tuple[str, str | None]]) -> None:
    for ip, uri in cases:
        assert one.recognize(ip, uri) == other.recognize(ip, uri), (ip, uri)


# -- random interleavings ----------------------------------------------------------------

World = dict[str, list[str]]


def empty_world() -> World:
    return {k: [] for k in ("domains", "records", "mappings", "acls", "addresses")}


Op = Callable[[Service, World, int], Coroutine[Any, Any, None]]


async def new_domain(s: Service, w: World, n: int) -> None:
    view = await s.domains.create(ACCOUNT, {"domain_name": f"d{n}-{len(w['domains'])}{SUFFIX}"})
    w["domains"].append(view.domain.sid)


async def rename_domain(s: Service, w: World, n: int) -> None:
    sid = w["domains"][n % len(w["domains"])]
    await s.domains.update(ACCOUNT, sid, {"domain_name": f"r{n}-{sid[-6:]}{SUFFIX}"})


async def delete_domain(s: Service, w: World, n: int) -> None:
    await s.domains.delete(ACCOUNT, w["domains"][n % len(w["domains"])])


async def new_record(s: Service, w: World, n: int) -> None:
    # Few networks, so that records share them and mappings collide.
    record = await s.voice.create_ip_record(ACCOUNT, f"10.{n % 3}.0.0", 16 + n % 2 * 8, None)
    w["records"].append(record.sid)


async def delete_record(s: Service, w: World, n: int) -> None:
    await s.voice.delete_ip_record(ACCOUNT, w["records"][n % len(w["records"])])


async def map_record(s: Service, w: World, n: int) -> None:
    record = w["records"][n % len(w["records"])]
    mapping = await s.voice.create_mapping(ACCOUNT, record, w["domains"][n % len(w["domains"])])
    w["mappings"].append(mapping.sid)


async def remap(s: Service, w: World, n: int) -> None:
    sid = w["mappings"][n % len(w["mappings"])]
    await s.voice.update_mapping(ACCOUNT, sid, w["domains"][n % len(w["domains"])])


async def unmap(s: Service, w: World, n: int) -> None:
    await s.voice.delete_mapping(ACCOUNT, w["mappings"][n % len(w["mappings"])])


async def new_acl(s: Service, w: World, n: int) -> None:
    acl = await s.acls.create_list(ACCOUNT, f"acl{n}")
    w["acls"].append(acl.sid)


async def delete_acl(s: Service, w: World, n: int) -> None:
    await s.acls.delete_list(ACCOUNT, w["acls"][n % len(w["acls"])])


async def new_address(s: Service, w: World, n: int) -> None:
    acl = w["acls"][n % len(w["acls"])]
    address = await s.acls.create_address(ACCOUNT, acl, "a", f"10.{n % 3}.0.{n % 5}", None)
    w["addresses"].append(f"{acl}/{address.sid}")


async def move_address(s: Service, w: World, n: int) -> None:
    acl, sid = w["addresses"][n % len(w["addresses"])].split("/")
    await s.acls.update_address(ACCOUNT, acl, sid, None, f"10.{n % 3}.1.0", 24)


async def delete_address(s: Service, w: World, n: int) -> None:
    acl, sid = w["addresses"][n % len(w["addresses"])].split("/")
    await s.acls.delete_address(ACCOUNT, acl, sid)


async def link_acl(s: Service, w: World, n: int) -> None:
    domain = w["domains"][n % len(w["domains"])]
    await s.acls.create_mapping(ACCOUNT, domain, w["acls"][n % len(w["acls"])])


async def unlink_acl(s: Service, w: World, n: int) -> None:
    domain = w["domains"][n % len(w["domains"])]
    await s.acls.delete_mapping(ACCOUNT, domain, w["acls"][n % len(w["acls"])])


OPS: list[Op] = [
    new_domain, rename_domain, delete_domain, new_record, delete_record, map_record, remap,
    unmap, new_acl, delete_acl, new_address, move_address, delete_address, link_acl,
    unlink_acl,
]  # fmt: skip
CUT = len(OPS)  # not a write: cut a node's feed connection


def cut(feed_pid: int | None) -> None:
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (feed_pid,))


async def attempt(op: Op, service: Service, world: World, n: int) -> None:
    # A rule said no, or nothing to act on yet: both are outcomes too.
    with contextlib.suppress(ServiceError, IndexError, ZeroDivisionError):
        await op(service, world, n)


# Each step: (node, operation, a number choosing names and targets); steps run in
# small groups at once, so writes from both nodes interleave.
steps = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, CUT), st.integers(0, 1000)), max_size=30
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, group=st.integers(1, 4), log_keep=st.sampled_from([3, 100_000]))
def test_random_interleavings_end_equal_to_a_fresh_load(
    steps: list[tuple[int, int, int]], group: int, log_keep: int
) -> None:
    async def scenario() -> None:
        async with two_nodes(log_keep) as nodes:
            world = empty_world()
            for start in range(0, len(steps), group):
                batch = []
                for which, op, n in steps[start : start + group]:
                    if op == CUT:
                        feed = nodes[which].feed
                        assert feed is not None
                        await asyncio.to_thread(cut, feed.backend_pid)
                    else:
                        batch.append(attempt(OPS[op], nodes[which].service, world, n))
                await asyncio.gather(*batch)
            fresh = await settled(nodes)
            cases = await probes(nodes[0])
            for each in nodes:
                same(each.service.recognizer, fresh, cases)

    asyncio.run(scenario())


def test_a_node_behind_a_trimmed_log_reloads_in_full() -> None:
    async def scenario() -> None:
        async with two_nodes(log_keep=3) as (a, b):
            assert b.feed is not None
            await b.feed.close()  # b stops following while a writes
            await new_domain(a.service, world := empty_world(), 1)
            for n in range(6):
                await new_record(a.service, world, n)
                await map_record(a.service, world, n)
            assert domain_of(b.service.recognizer) is None
            await b.feed.start()
            assert b.feed.reloads == 1
            fresh = await settled((a, b))
            assert domain_of(b.service.recognizer) == world["domains"][0]
            same(b.service.recognizer, fresh, await probes(a))
            # And it follows again from the reloaded position.
            await delete_domain(a.service, world, 0)
            await settled((a, b))
            assert domain_of(b.service.recognizer) is None

    asyncio.run(scenario())


def domain_of(recognizer: Recognizer) -> str | None:
    return recognizer.recognize("10.0.0.1").sip_domain_sid


def test_a_write_is_applied_on_its_own_node_before_it_returns() -> None:
    async def scenario() -> None:
        async with two_nodes() as (a, _):
            world = empty_world()
            await new_domain(a.service, world, 1)
            await new_record(a.service, world, 0)
            await map_record(a.service, world, 0)
            assert domain_of(a.service.recognizer) == world["domains"][0]

    asyncio.run(scenario())


def test_log_entries_decode_to_the_service_events() -> None:
    row = {
        "seq": 7, "sid": "AL" + "1" * 32, "domain_sid": "SD" + "2" * 32,
        "account_sid": ACCOUNT, "date_created": 10, "date_updated": 20,
    }  # fmt: skip
    saved, deleted = decode("acl_mappings", False, row), decode("acl_mappings", True, row)
    assert type(saved).__name__ == "AclMappingSaved"
    assert type(deleted).__name__ == "AclMappingDeleted"
    assert saved.mapping == deleted.mapping  # type: ignore[union-attr]
    assert saved.mapping.date_updated == _t(20)  # type: ignore[union-attr]
