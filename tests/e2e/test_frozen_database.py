"""A PostgreSQL server that hangs rather than stops, under two nodes: every process of it
SIGSTOPped, its connections left open, so nothing a client sends is ever answered and
no TCP timeout fires. The API answers 503 (code 20503) within --db-timeout, recognition
and the SIP edge answer from memory, `/health` says the feed is behind, a node can still
be stopped; once the server continues, both nodes recover by themselves and converge on
what the database holds — the one truth about a write, even one whose client got 503."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from ..conftest import Server, start_server
from ..pgcluster import Cluster, private_cluster
from ..sip.test_hostile import options, status_of
from ..sip.test_sipp import ALLOWED
from .test_multinode import A, Api, converge, domain_of, eventually, name

TIMEOUT = 2.0  # --db-timeout
# A bound, not a timing: a request must end within it, however loaded the machine.
BOUND = 2 * TIMEOUT + 1


@dataclass
class Outcome:
    node: int
    method: str
    path: str
    status: int
    code: int | None
    seconds: float


def timed(node: int, server: Server, method: str, path: str, data: dict[str, Any]) -> Outcome:
    with server.http() as http:
        started = time.monotonic()
        response = http.request(method, path, data=data or None)
        seconds = time.monotonic() - started
    code = response.json().get("code") if response.status_code >= 400 else None
    return Outcome(node, method, path, response.status_code, code, seconds)


def sip_options(server: Server) -> int:
    """The status the SIP edge answers an OPTIONS from the ACL's address with."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ALLOWED, 0))
        sock.settimeout(TIMEOUT)  # the edge answers from memory: never waits for the database
        sock.sendto(options(sock.getsockname()[1]), ("127.0.0.1", server.sip_port))
        return status_of(sock.recv(65536))


def in_database(cluster: Cluster, sql: str) -> set[str]:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        return {row[0] for row in conn.execute(sql).fetchall()}


@dataclass
class World:
    cluster: Cluster
    a: Api
    b: Api
    domain: str
    records: list[str]  # acknowledged IP records, each mapped to `domain`


def node(cluster: Cluster) -> Api:
    return Api(start_server(cluster.url, "--db-timeout", str(TIMEOUT)))


@pytest.fixture
def world() -> Iterator[World]:
    with private_cluster() as cluster:
        a = node(cluster)
        b = node(cluster)
        try:
            domain = a.post(f"{A}/SIP/Domains.json", DomainName=name())["sid"]
            acl = a.post(f"{A}/SIP/IpAccessControlLists.json", FriendlyName="pbx")["sid"]
            a.post(f"{A}/SIP/IpAccessControlLists/{acl}/IpAddresses.json", FriendlyName="pbx",
                   IpAddress=ALLOWED)  # fmt: skip
            a.post(f"{A}/SIP/Domains/{domain}/Auth/Calls/IpAccessControlListMappings.json",
                   IpAccessControlListSid=acl)  # fmt: skip
            records = []
            for ip, prefix in ((ALLOWED, 32), ("10.1.0.0", 16)):
                record = a.post("/v1/IpRecords", IpAddress=ip, CidrPrefixLength=prefix)["sid"]
                a.post("/v1/SourceIpMappings", IpRecordSid=record, SipDomainSid=domain)
                records.append(record)
            for api in (a, b):
                converge(api, "10.1.0.1", (domain, False))
                assert sip_options(api.server) == 200
            yield World(cluster, a, b, domain, records)
        finally:
            a.stop()
            b.stop()


def recovered(api: Api, ip: str) -> httpx.Response:
    """A create through `api`, tried until the node answers it again."""
    response: httpx.Response = eventually(
        lambda: api.http.post("/v1/IpRecords", data={"IpAddress": ip, "CidrPrefixLength": 16}),
        lambda r: r.status_code == 201,
    )
    return response


Request = tuple[int, Server, str, str, dict[str, Any]]


def hung(world: World, requests: list[Request], spare: Api) -> None:
    """What the nodes do while the database hangs."""
    # Twice: the second wave finds whatever the first left behind (threads, connections).
    for _ in range(2):
        with ThreadPoolExecutor(len(requests)) as pool:
            outcomes = list(pool.map(lambda r: timed(*r), requests))
        for outcome in outcomes:
            assert outcome.seconds < BOUND, outcome
            if outcome.status == 200 and cached_fetch(outcome):
                continue  # from the node's row cache while its lease holds: checked below
            assert (outcome.status, outcome.code) == (503, 20503), outcome
    # A node can be stopped meanwhile: nothing waits for the database forever.
    started = time.monotonic()
    spare.stop()
    assert spare.server.process.returncode == 0
    assert time.monotonic() - started < BOUND
    for api in (world.a, world.b):
        # Recognition and the SIP edge answer from memory.
        assert domain_of(api, "10.1.0.1") == (world.domain, False)
        assert sip_options(api.server) == 200
        # /health answers, and says the feed is behind.
        health = eventually(
            api.health,
            lambda h: not h["change_feed"]["connected"] and h["change_feed"]["behind_seconds"],
        )
        assert health["change_feed"]["connected"] is False
        assert health["change_feed"]["behind_seconds"] > 0
        # Its lease runs out (nobody can renew it), and with it the row cache.
        health = eventually(api.health, lambda h: not h["change_feed"]["lease_held"])
        assert health["change_feed"]["lease_held"] is False
        fetch = timed(0, api.server, "GET", f"/v1/IpRecords/{world.records[0]}", {})
        assert (fetch.status, fetch.code) == (503, 20503), fetch


def cached_fetch(outcome: Outcome) -> bool:
    """A fetch by SID, which a node holding its lease answers from its row cache: no write
    can be acknowledged without it meanwhile (docs/operations.md, the read cache)."""
    return outcome.method == "GET" and outcome.path.startswith("/v1/IpRecords/IL")


def test_a_hung_database_fails_fast_and_both_nodes_recover(world: World) -> None:
    a, b, domain = world.a, world.b, world.domain
    spare = node(world.cluster)  # stopped while the database hangs
    requests: list[Request] = []
    for i, api in enumerate((a, b)):
        requests += [
            (i, api.server, "GET", f"/v1/IpRecords/{world.records[0]}", {}),
            (i, api.server, "GET", "/v1/IpRecords", {}),
            (i, api.server, "GET", f"{A}/SIP/Domains/{domain}.json", {}),
            (i, api.server, "POST", "/v1/IpRecords", {"IpAddress": f"10.5{i}.0.0"}),
            (i, api.server, "POST", "/v1/IpRecords", {"IpAddress": f"10.6{i}.0.0"}),
            (i, api.server, "POST", f"/v1/IpRecords/{world.records[1]}", {"FriendlyName": "x"}),
        ]
    try:
        with world.cluster.frozen():
            hung(world, requests, spare)
    finally:
        if spare.server.process.poll() is None:
            spare.stop()

    # The server continues: both nodes recover by themselves.
    acknowledged = list(world.records)
    for api, ip in ((a, "10.70.0.0"), (b, "10.71.0.0")):
        response = recovered(api, ip)
        assert response.status_code == 201, response.text
        acknowledged.append(response.json()["sid"])
        api.post("/v1/SourceIpMappings", IpRecordSid=acknowledged[-1], SipDomainSid=domain)
    for api in (a, b):
        for ip in ("10.70.0.1", "10.71.0.1", "10.1.0.1"):
            converge(api, ip, (domain, False))
        health = eventually(api.health, lambda h: h["change_feed"]["behind_seconds"] == 0)
        assert health["change_feed"]["connected"] is True
    assert a.health()["change_feed"]["position"] == b.health()["change_feed"]["position"]
    # Every acknowledged write is in the database, and nothing else: the writes that got
    # 503 never reached a COMMIT (the server hung before their transaction began), and a
    # write whose caller gave up is dropped, not run later.
    stored = in_database(world.cluster, "SELECT sid FROM ip_records")
    assert stored == set(acknowledged)
    names = in_database(world.cluster, "SELECT friendly_name FROM ip_records")
    assert "x" not in names


def slow_commit(cluster: Cluster, seconds: float) -> None:
    """Make every COMMIT that created a source IP mapping take `seconds` in the server:
    a deferred constraint trigger runs at COMMIT, so the freeze can catch one there."""
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON source_ip_mappings"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )


def sleeping_in_commit(cluster: Cluster) -> bool:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name LIKE 'sipmap % writer' AND wait_event = 'PgSleep'"
        ).fetchone()
    return row is not None and row[0] == 1


def test_a_write_whose_commit_the_hung_server_had_received(world: World) -> None:
    """The server froze after receiving a write's COMMIT: its client gets 503 within the
    bound; then the server goes on and commits it. The database is the truth — the write
    IS applied, though its client was told 503 ("unknown, retry") — and both nodes, API and
    recognition, converge on it; the retry finds it there (one mapping per IP record)."""
    a, b, domain = world.a, world.b, world.domain
    record = a.post("/v1/IpRecords", IpAddress="10.80.0.0", CidrPrefixLength=16)["sid"]
    slow_commit(world.cluster, 2 * TIMEOUT)
    data = {"IpRecordSid": record, "SipDomainSid": domain}
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(timed, 0, a.server, "POST", "/v1/SourceIpMappings", data)
        assert eventually(lambda: sleeping_in_commit(world.cluster), bool)
        with world.cluster.frozen():
            outcome = pending.result()
            assert (outcome.status, outcome.code) == (503, 20503), outcome
            assert outcome.seconds < BOUND, outcome
            assert domain_of(b, "10.80.0.1") == (None, False)
    # The server goes on from where it stopped: the COMMIT completes.
    mappings = f"SELECT sid FROM source_ip_mappings WHERE ip_record_sid = '{record}'"
    assert len(eventually(lambda: in_database(world.cluster, mappings), bool)) == 1
    (mapping,) = in_database(world.cluster, mappings)
    for api in (a, b):
        converge(api, "10.80.0.1", (domain, False))
        found: Callable[[], httpx.Response] = lambda api=api: api.http.get(  # noqa: E731
            f"/v1/SourceIpMappings/{mapping}"
        )
        assert eventually(found, lambda r: r.status_code == 200).status_code == 200
    retry = eventually(lambda: a.http.post("/v1/SourceIpMappings", data=data),
                       lambda r: r.status_code != 503)  # fmt: skip
    assert retry.status_code == 409, retry.text


def writer_state(cluster: Cluster, server: Server) -> str | None:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s",
            (f"sipmap {server.process.pid} writer",),
        ).fetchone()
    return None if row is None else str(row[0])


def test_a_node_that_hangs_inside_a_write_holds_up_the_others_only_briefly(
    world: World,
) -> None:
    """Node a freezes (SIGSTOP) while its writer is inside a transaction, holding the
    write lock every node takes: the server ends that transaction after --db-timeout
    idle, so b writes again while a is still frozen; a recovers when it continues."""
    a, b = world.a, world.b
    pid = a.server.process.pid
    stop = threading.Event()
    acknowledged: list[str] = []

    def writes() -> None:
        with a.server.http() as http:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    response = http.post("/v1/IpRecords", data={"IpAddress": "10.90.0.0"})
                    if response.status_code == 201:
                        acknowledged.append(response.json()["sid"])

    writer = threading.Thread(target=writes)
    writer.start()
    try:
        # Catch a's writer between two statements of a transaction: stop a, look.
        for _ in range(1000):
            os.kill(pid, signal.SIGSTOP)
            if writer_state(world.cluster, a.server) == "idle in transaction":
                break
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.005)
        else:
            pytest.fail("never caught node a's writer inside a transaction")
        started = time.monotonic()
        response = recovered(b, "10.91.0.0")
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 3 * TIMEOUT + 1
        acknowledged.append(response.json()["sid"])
        assert writer_state(world.cluster, a.server) is None  # its session was ended
    finally:
        stop.set()
        os.kill(pid, signal.SIGCONT)
        writer.join()
    response = recovered(a, "10.92.0.0")
    assert response.status_code == 201, response.text
    acknowledged.append(response.json()["sid"])
    stored = in_database(world.cluster, "SELECT sid FROM ip_records")
    assert set(acknowledged) <= stored
    for api in (a, b):
        for sid in acknowledged[-2:]:
            assert api.http.get(f"/v1/IpRecords/{sid}").status_code == 200
