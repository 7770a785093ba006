"""Two `sipmap serve` processes on one PostgreSQL database: recognition on one node follows
writes made through the other, through cut connections and a restarted server."""

from __future__ import annotations

import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ..conftest import ACCOUNT_SID, Server, start_server
from ..pg import base_url, scratch_database
from ..pgcluster import private_cluster
from .test_concurrency import check, race

A = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
# How long a test waits for a node to converge. Not the propagation target (that is
# measured by bench/bench_multinode.py); a bound so that a node that never converges
# fails the test instead of hanging it.
CONVERGE = 15.0
NO_SIP = ("--sip-port", "0")  # these tests need no SIP edge, nor a port for one


class Api:
    """The bootstrap account's raw HTTP client for one node."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = server.http()

    def stop(self) -> None:
        self.http.close()
        self.server.stop()

    def post(self, path: str, **data: Any) -> dict[str, Any]:
        response = self.http.post(path, data=data)
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    def delete(self, path: str) -> None:
        response = self.http.delete(path)
        assert response.status_code == 204, response.text

    def recognize(self, source_ip: str, request_uri: str | None = None) -> dict[str, Any]:
        params = {"SourceIp": source_ip, **({"RequestUri": request_uri} if request_uri else {})}
        response = self.http.get("/sipmap/v1/Recognition", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/health").json()
        return body


def eventually(probe: Callable[[], Any], expected: Callable[[Any], bool]) -> Any:
    """probe() until its value passes `expected`; the last value either way."""
    deadline = time.monotonic() + CONVERGE
    while True:
        value = probe()
        if expected(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def domain_of(api: Api, ip: str, uri: str | None = None) -> tuple[str | None, bool]:
    result = api.recognize(ip, uri)
    return result["sip_domain_sid"], result["allowed"]


def converge(api: Api, ip: str, want: tuple[str | None, bool], uri: str | None = None) -> None:
    got = eventually(lambda: domain_of(api, ip, uri), lambda value: value == want)
    assert got == want, (ip, uri)


def name() -> str:
    return f"n{uuid.uuid4().hex[:12]}.sip.twilio.com"


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture
def nodes(database: str) -> Iterator[tuple[Api, Api]]:
    first = Api(start_server(database, *NO_SIP))
    # After the first, which migrated the schema and made the account.
    second = Api(start_server(database, *NO_SIP))
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_every_change_made_on_one_node_reaches_the_others_recognition(
    nodes: tuple[Api, Api],
) -> None:
    a, b = nodes
    domain = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
    record = a.post("/v1/IpRecords", IpAddress="198.51.100.0", CidrPrefixLength=24)["sid"]
    mapping = a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)["sid"]
    converge(b, "198.51.100.9", (domain, False))  # mapped, no ACL yet

    acl = a.post(f"{A}/SIP/IpAccessControlLists.json", FriendlyName="office")["sid"]
    addresses = f"{A}/SIP/IpAccessControlLists/{acl}/IpAddresses"
    address = a.post(f"{addresses}.json", FriendlyName="pbx", IpAddress="198.51.100.9")["sid"]
    auth = f"{A}/SIP/Domains/{domain}/Auth/Calls/IpAccessControlListMappings"
    a.post(f"{auth}.json", IpAccessControlListSid=acl)
    converge(b, "198.51.100.9", (domain, True))
    converge(b, "198.51.100.10", (domain, False))

    # Updates: the address moves, the mapping moves to another domain.
    a.post(f"{addresses}/{address}.json", IpAddress="198.51.100.10")
    converge(b, "198.51.100.10", (domain, True))
    converge(b, "198.51.100.9", (domain, False))
    other = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
    a.post(f"/v1/SourceIpMappings/{mapping}", SipDomainSid=other)
    converge(b, "198.51.100.10", (other, False))
    a.post(f"/v1/SourceIpMappings/{mapping}", SipDomainSid=domain)
    converge(b, "198.51.100.10", (domain, True))

    # A domain renamed is recognised by its new name only.
    renamed = name()
    first_name = a.http.get(f"{A}/SIP/Domains/{domain}.json").json()["domain_name"]
    a.post(f"{A}/SIP/Domains/{domain}.json", DomainName=renamed)
    converge(b, "192.0.2.1", (domain, False), f"sip:x@{renamed}")
    converge(b, "192.0.2.1", (None, False), f"sip:x@{first_name}")

    # Deletes, and what they take with them.
    a.delete(f"{auth}/{acl}.json")
    converge(b, "198.51.100.10", (domain, False))
    a.post(f"{auth}.json", IpAccessControlListSid=acl)
    converge(b, "198.51.100.10", (domain, True))
    a.delete(f"{addresses}/{address}.json")
    converge(b, "198.51.100.10", (domain, False))
    a.post(f"{addresses}.json", FriendlyName="pbx", IpAddress="198.51.100.0", CidrPrefixLength=24)
    converge(b, "198.51.100.10", (domain, True))
    a.delete(f"{A}/SIP/IpAccessControlLists/{acl}.json")  # its addresses and mappings go too
    converge(b, "198.51.100.10", (domain, False))
    a.delete(f"/v1/IpRecords/{record}")  # its mapping goes too
    converge(b, "198.51.100.10", (None, False))

    record = a.post("/v1/IpRecords", IpAddress="203.0.113.0", CidrPrefixLength=24)["sid"]
    a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=other)
    converge(b, "203.0.113.5", (other, False))
    a.delete(f"{A}/SIP/Domains/{other}.json")  # its source IP mappings go too
    converge(b, "203.0.113.5", (None, False))
    converge(b, "192.0.2.1", (domain, False), f"sip:x@{renamed}")
    a.delete(f"{A}/SIP/Domains/{domain}.json")
    converge(b, "192.0.2.1", (None, False), f"sip:x@{renamed}")
    # And the writing node saw its own writes as it acknowledged them.
    assert domain_of(a, "203.0.113.5") == (None, False)


def test_racing_conflicting_mappings_through_both_nodes_leave_one_winner(
    nodes: tuple[Api, Api],
) -> None:
    a, b = nodes
    domains = [a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"] for _ in range(4)]
    records = [
        a.post("/v1/IpRecords", IpAddress="192.0.2.0", CidrPrefixLength=28)["sid"] for _ in range(4)
    ]
    # Four records of one network, each mapped to its own domain, through either node:
    # one network may map to one domain only, so one mapping wins.
    calls = [
        lambda h, i=i: h.post(
            "/v1/SourceIpMappings",
            data={"IpRecordSid": records[i % 4], "SipDomainSid": domains[i % 4]},
        )
        for i in range(16)
    ]
    responses = race([a.http, b.http], calls)
    for response in responses:
        check(response)
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 15}
    winner = next(r.json()["sip_domain_sid"] for r in responses if r.status_code == 201)
    for api in (a, b):
        converge(api, "192.0.2.3", (winner, False))


def terminate(database: str, server: Server, role: str) -> int:
    """Cut a node's connections of one role (feed, writer, reader); how many were cut."""
    with psycopg.connect(base_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"sipmap {server.process.pid} {role}",),
        ).fetchall()
    return len(rows)


def test_a_node_whose_connections_are_cut_catches_up(database: str, nodes: tuple[Api, Api]) -> None:
    a, b = nodes
    domain = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
    converge(
        b,
        "192.0.2.1",
        (domain, False),
        f"sip:x@{a.http.get(f'{A}/SIP/Domains/{domain}.json').json()['domain_name']}",
    )
    assert terminate(database, b.server, "feed") == 1
    for role in ("writer", "reader"):
        terminate(database, a.server, role)
    # Written while b's feed is (or may be) away: b must catch up from its position.
    records = [
        a.post("/v1/IpRecords", IpAddress=f"10.{i}.0.0", CidrPrefixLength=16)["sid"]
        for i in range(5)
    ]
    for record in records:
        a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)
    for i in range(5):
        converge(b, f"10.{i}.1.1", (domain, False))
    health = eventually(b.health, lambda h: h["change_feed"]["connected"])
    assert health["change_feed"]["connected"] is True
    assert health["change_feed"]["position"] == a.health()["change_feed"]["position"]
    # The cut node writes too, and the other follows.
    record = b.post("/v1/IpRecords", IpAddress="10.99.0.0", CidrPrefixLength=16)["sid"]
    b.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)
    converge(a, "10.99.0.1", (domain, False))


def test_metrics_report_the_feed(nodes: tuple[Api, Api]) -> None:
    a, _ = nodes
    text = eventually(
        lambda: a.http.get("/metrics").text, lambda t: "sipmap_change_feed_connected 1.0" in t
    )
    assert "sipmap_change_feed_connected 1.0" in text
    assert "sipmap_change_feed_behind_seconds 0.0" in text
    assert "sipmap_change_feed_reloads 0.0" in text


def test_a_restarted_database_fails_fast_and_loses_nothing_acknowledged() -> None:
    timeout = 2.0
    with private_cluster() as cluster:
        a = Api(start_server(cluster.url, "--db-timeout", str(timeout), *NO_SIP))
        b = Api(start_server(cluster.url, "--db-timeout", str(timeout), *NO_SIP))
        try:
            domain = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
            acknowledged: list[str] = []
            for i in range(3):
                record = a.post("/v1/IpRecords", IpAddress=f"10.{i}.0.0", CidrPrefixLength=16)
                acknowledged.append(record["sid"])
                a.post("/v1/SourceIpMappings", IpRecordSid=record["sid"], SipDomainSid=domain)
            converge(b, "10.2.0.1", (domain, False))

            cluster.stop()
            for api in (a, b):
                started = time.monotonic()
                # A write needs the database (the credentials may be cached).
                response = api.http.post("/v1/IpRecords", data={"IpAddress": "10.9.0.0"})
                assert response.status_code == 503, response.text
                assert response.json()["code"] == 20503
                assert time.monotonic() - started < timeout + 5  # bounded, not hanging
                # Recognition answers from memory throughout.
                assert domain_of(api, "10.1.0.1") == (domain, False)
                health = eventually(api.health, lambda h: not h["change_feed"]["connected"])
                assert health["change_feed"]["connected"] is False

            cluster.start()
            # Both nodes recover by themselves; writes through either work again.
            for i, api in enumerate((a, b), start=3):
                response = eventually(
                    lambda api=api, i=i: api.http.post(
                        "/v1/IpRecords", data={"IpAddress": f"10.{i}.0.0", "CidrPrefixLength": 16}
                    ),
                    lambda r: r.status_code == 201,
                )
                assert response.status_code == 201, response.text
                record = response.json()["sid"]
                acknowledged.append(record)
                api.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)
            for api in (a, b):
                listed = api.http.get("/v1/IpRecords", params={"PageSize": 100}).json()
                assert {r["sid"] for r in listed["ip_records"]} >= set(acknowledged)
                for i in range(5):
                    converge(api, f"10.{i}.0.1", (domain, False))
        finally:
            a.stop()
            b.stop()


def test_an_account_suspended_through_one_node_accepts_nothing_on_the_other(
    nodes: tuple[Api, Api],
) -> None:
    """Account status is in the change feed too (recognition rule 4, migration 0005)."""
    a, b = nodes
    account = a.post("/2010-04-01/Accounts.json", FriendlyName="to be suspended")
    sub = Api(a.server)
    sub.http = a.server.http(account["sid"], account["auth_token"])
    S = f"/2010-04-01/Accounts/{account['sid']}"
    domain = sub.post(f"{S}/SIP/Domains.json", DomainName=name())["sid"]
    record = sub.post("/v1/IpRecords", IpAddress="198.51.100.0", CidrPrefixLength=24)["sid"]
    sub.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)
    acl = sub.post(f"{S}/SIP/IpAccessControlLists.json", FriendlyName="office")["sid"]
    sub.post(f"{S}/SIP/IpAccessControlLists/{acl}/IpAddresses.json", FriendlyName="pbx",
             IpAddress="198.51.100.9")  # fmt: skip
    sub.post(f"{S}/SIP/Domains/{domain}/IpAccessControlListMappings.json",
             IpAccessControlListSid=acl)  # fmt: skip
    sub.http.close()
    converge(b, "198.51.100.9", (domain, True))
    a.post(f"{S}.json", Status="suspended")
    converge(b, "198.51.100.9", (domain, False))
    assert b.recognize("198.51.100.9")["reason"] == "account_not_active"
    a.post(f"{S}.json", Status="active")
    converge(b, "198.51.100.9", (domain, True))
    a.post(f"{S}.json", Status="closed")
    converge(b, "198.51.100.9", (domain, False))


def sip_options(sip_port: int, source: str) -> int | None:
    """The status a node's SIP edge answers an OPTIONS from `source` with (None: none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(0.5)
        local = sock.getsockname()[1]
        sock.sendto(
            (
                f"OPTIONS sip:127.0.0.1:{sip_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {source}:{local};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
                f"From: <sip:probe@{source}>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
                "Call-ID: multinode\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", sip_port),
        )
        try:
            return int(sock.recv(4096).split(b" ", 2)[1])
        except TimeoutError:
            return None


def test_the_sip_edge_of_one_node_follows_writes_made_through_the_other(database: str) -> None:
    """The SIP fast path caches its decisions per recogniser generation: a change that
    arrives by the change feed must reach the next datagram, like an API write does."""
    a = Api(start_server(database, *NO_SIP))
    b = Api(start_server(database))  # with a SIP edge
    try:
        source, port = "127.0.0.2", b.server.sip_port
        assert port
        domain = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
        acl = a.post(f"{A}/SIP/IpAccessControlLists.json", FriendlyName="pbx")["sid"]
        a.post(f"{A}/SIP/IpAccessControlLists/{acl}/IpAddresses.json", FriendlyName="pbx",
               IpAddress=source)  # fmt: skip
        a.post(f"{A}/SIP/Domains/{domain}/IpAccessControlListMappings.json",
               IpAccessControlListSid=acl)  # fmt: skip
        record = a.post("/v1/IpRecords", IpAddress=source)["sid"]
        mapping = a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)["sid"]
        assert eventually(lambda: sip_options(port, source), lambda s: s == 200) == 200
        assert sip_options(port, source) == 200  # now from the fast path's cache
        a.delete(f"/v1/SourceIpMappings/{mapping}")
        assert eventually(lambda: sip_options(port, source), lambda s: s == 403) == 403
        mapping = a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)["sid"]
        assert eventually(lambda: sip_options(port, source), lambda s: s == 200) == 200
    finally:
        a.stop()
        b.stop()
