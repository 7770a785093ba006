"""The PostgreSQL row cache across two `sipmap serve` nodes: a write acknowledged by one
node is what the very next read on the other returns — fetch and recognition alike —
because the writer waits for every node holding a lease (store/leases.py); a node that
is stopped or cut off delays writes by at most its lease and serves no stale row."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from sipmap.store.leases import LEASE

from ..conftest import start_server
from ..tcpproxy import Proxy, proxied
from .test_multinode import NO_SIP, A, Api, database, eventually, name, terminate

__all__ = ["database"]  # the fixture, shared with test_multinode.py

ROUNDS = 60
# A write waits for a silent node for at most the lease; what is added here is room for
# the rest of the request on a loaded machine, not a performance target.
BOUND = LEASE + 2.0


@pytest.fixture
def proxy(database: str) -> Iterator[Proxy]:
    with proxied(database) as relay:
        yield relay


@pytest.fixture
def pair(database: str, proxy: Proxy) -> Iterator[tuple[Api, Api]]:
    """Node A, and node B, whose connections to PostgreSQL go through `proxy`."""
    a = Api(start_server(database, *NO_SIP))
    b = Api(start_server(proxy.url, "--db-timeout", "2", *NO_SIP))
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def fetch(api: Api, sid: str) -> tuple[int, str | None]:
    response = api.http.get(f"/v1/IpRecords/{sid}")
    return response.status_code, response.json().get("friendly_name")


def test_a_write_through_one_node_is_read_at_once_through_the_other(
    pair: tuple[Api, Api],
) -> None:
    a, b = pair
    record = a.post("/v1/IpRecords", IpAddress="192.0.2.1", FriendlyName="v0")["sid"]
    domains = [a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"] for _ in range(2)]
    mapping = a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domains[0])["sid"]
    for i in range(1, ROUNDS + 1):
        assert fetch(b, record) == (200, f"v{i - 1}")  # read (and cached) on B
        a.post(f"/v1/IpRecords/{record}", FriendlyName=f"v{i}")
        assert fetch(b, record) == (200, f"v{i}"), i  # the very next read on B
        a.post(f"/v1/SourceIpMappings/{mapping}", SipDomainSid=domains[i % 2])
        moved = b.http.get(f"/v1/SourceIpMappings/{mapping}").json()["sip_domain_sid"]
        assert moved == domains[i % 2], i
        assert b.recognize("192.0.2.1")["sip_domain_sid"] == domains[i % 2], i
    # And the other way round, with deletes: gone at once on the other node.
    for i in range(ROUNDS // 4):
        sid = b.post("/v1/IpRecords", IpAddress=f"198.51.100.{i}")["sid"]
        assert fetch(a, sid)[0] == 200
        b.delete(f"/v1/IpRecords/{sid}")
        assert fetch(a, sid)[0] == 404, i


def test_a_key_deleted_through_one_node_is_refused_at_once_by_the_other(
    pair: tuple[Api, Api],
) -> None:
    """Each node keeps credentials it verified for a few seconds; a deleted key (or a
    changed token) reaches every node through the feed before the delete's 204."""
    a, b = pair
    for i in range(5):
        key = a.post(f"{A}/Keys.json", FriendlyName=f"k{i}")
        auth = (key["sid"], key["secret"])
        with httpx.Client(base_url=b.server.base_url, auth=auth) as as_key:
            assert as_key.get("/v1/IpRecords").status_code == 200  # verified on B, kept
            a.delete(f"{A}/Keys/{key['sid']}.json")
            refused = as_key.get("/v1/IpRecords")
            assert refused.status_code == 401, (i, refused.text)
            assert refused.json()["code"] == 20003


def test_recognition_on_the_other_node_follows_each_201_at_once(pair: tuple[Api, Api]) -> None:
    a, b = pair
    domain = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
    for i in range(ROUNDS):
        ip = f"10.{i}.0.0"
        record = a.post("/v1/IpRecords", IpAddress=ip, CidrPrefixLength=16)["sid"]
        assert b.recognize(f"10.{i}.9.9")["sip_domain_sid"] is None
        a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)
        assert b.recognize(f"10.{i}.9.9")["sip_domain_sid"] == domain, i  # no polling


def test_a_stopped_node_delays_writes_by_at_most_its_lease(pair: tuple[Api, Api]) -> None:
    a, b = pair
    record = a.post("/v1/IpRecords", IpAddress="192.0.2.1", FriendlyName="before")["sid"]
    assert fetch(b, record) == (200, "before")  # cached on B
    os.kill(b.server.process.pid, signal.SIGSTOP)
    try:
        for i in range(3):
            started = time.monotonic()
            a.post(f"/v1/IpRecords/{record}", FriendlyName=f"while stopped {i}")
            assert time.monotonic() - started < BOUND  # bounded, then A goes on
    finally:
        os.kill(b.server.process.pid, signal.SIGCONT)
    # B's lease ran out while it was stopped: its first answer is not its cached row.
    assert fetch(b, record) == (200, "while stopped 2")
    # Once B holds a lease again, A's writes are acknowledged by B again.
    held = eventually(b.health, lambda h: h["change_feed"]["lease_held"])
    assert held["change_feed"]["lease_held"] is True
    for i in range(10):
        a.post(f"/v1/IpRecords/{record}", FriendlyName=f"after {i}")
        assert fetch(b, record) == (200, f"after {i}")


def test_a_node_cut_off_from_the_database_serves_no_stale_row(
    pair: tuple[Api, Api], proxy: Proxy
) -> None:
    a, b = pair
    record = a.post("/v1/IpRecords", IpAddress="192.0.2.1", FriendlyName="before")["sid"]
    assert fetch(b, record) == (200, "before")  # cached on B
    proxy.cut()
    try:
        started = time.monotonic()
        a.post(f"/v1/IpRecords/{record}", FriendlyName="after")
        assert time.monotonic() - started < BOUND
        # From A's answer on, B never answers with the row from before: it cannot read
        # the database (503), and its cache is not trusted without its lease.
        seen = set()
        until = time.monotonic() + LEASE
        while time.monotonic() < until:
            response = b.http.get(f"/v1/IpRecords/{record}")
            seen.add(response.status_code)
            if response.status_code == 200:
                assert response.json()["friendly_name"] == "after"
            else:
                assert response.status_code == 503, response.text
                assert response.json()["code"] == 20503
        assert 503 in seen
        assert b.health()["change_feed"]["lease_held"] is False
        # A's later writes do not wait for B any more.
        started = time.monotonic()
        a.post(f"/v1/IpRecords/{record}", FriendlyName="later")
        assert time.monotonic() - started < BOUND
    finally:
        proxy.mend()
    got = eventually(lambda: fetch(b, record), lambda got: got == (200, "later"))
    assert got == (200, "later")
    # Both at once: the feed's connection from before the cut may die only now (the
    # relay closes it), while a lease renewed meanwhile still holds until it runs out.
    health = eventually(
        b.health, lambda h: h["change_feed"]["connected"] and h["change_feed"]["lease_held"]
    )
    assert health["change_feed"]["connected"] is True
    assert health["change_feed"]["lease_held"] is True


def test_a_node_whose_feed_connection_is_terminated_stays_exact(
    database: str, pair: tuple[Api, Api]
) -> None:
    a, b = pair
    record = a.post("/v1/IpRecords", IpAddress="192.0.2.1", FriendlyName="v0")["sid"]
    for i in range(1, 6):
        assert fetch(b, record) == (200, f"v{i - 1}")  # cached on B
        assert terminate(database, b.server, "feed") == 1
        started = time.monotonic()
        a.post(f"/v1/IpRecords/{record}", FriendlyName=f"v{i}")
        assert time.monotonic() - started < BOUND
        assert fetch(b, record) == (200, f"v{i}"), i
        eventually(b.health, lambda h: h["change_feed"]["connected"])


def test_metrics_report_the_lease(pair: tuple[Api, Api]) -> None:
    _, b = pair
    text = eventually(lambda: b.http.get("/metrics").text, lambda t: "sipmap_lease_held 1.0" in t)
    assert "sipmap_lease_held 1.0" in text
