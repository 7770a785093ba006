"""Racing requests against a real server: no duplicates, no lost writes, rules hold."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from twilio.rest import Client

from .. import oai
from ..conftest import Server

A = "/2010-04-01/Accounts"


def race(
    clients: list[httpx.Client], calls: list[Callable[[httpx.Client], httpx.Response]]
) -> list[httpx.Response]:
    """Run every call on its own thread, all released at once by a barrier; call i uses
    clients[i % len(clients)] (an httpx.Client is thread-safe: its pool gives each
    concurrent request a connection of its own)."""
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> httpx.Response:
        http = clients[i % len(clients)]
        barrier.wait(10)
        return calls[i](http)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, range(len(calls))))


def check(response: httpx.Response) -> None:
    """Every response of a race is well-formed: the spec's body, or Twilio's error body."""
    assert response.status_code != 500, response.text
    body = response.json() if response.content else None
    if response.status_code < 400:
        oai.validate(response.request.method, response.request.url.path, response.status_code, body)
    else:
        oai.validate_error(response.status_code, body)


def pooled(server: Server, sid: str, token: str) -> httpx.Client:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    return httpx.Client(base_url=server.base_url, auth=(sid, token), timeout=30, limits=limits)


@pytest.fixture
def clients(server: Server, subaccount: tuple[str, str]) -> Iterator[list[httpx.Client]]:
    """A client of one fresh subaccount, shared by every racing thread."""
    with pooled(server, *subaccount) as http:
        yield [http]


def random_host() -> str:
    # Mapped networks are unique system-wide and the session server is shared.
    return ".".join(str(b) for b in (10, *uuid.uuid4().bytes[:3]))


def test_racing_mappings_of_one_record(clients: list[httpx.Client], sub_client: Client) -> None:
    http = clients[0]
    record = http.post("/v1/IpRecords", data={"IpAddress": random_host()}).json()["sid"]
    domains = [
        sub_client.api.v2010.account.sip.domains.create(
            domain_name=f"race-{uuid.uuid4().hex[:12]}.sip.twilio.com"
        ).sid
        for _ in range(4)
    ]
    calls = [
        lambda h, d=domains[i % 4]: h.post(
            "/v1/SourceIpMappings", data={"IpRecordSid": record, "SipDomainSid": d}
        )
        for i in range(20)
    ]
    responses = race(clients, calls)
    for response in responses:
        check(response)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 19}
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert all(r.json()["code"] == 20409 for r in responses if r.status_code == 409)
    listed = http.get("/v1/SourceIpMappings").json()["source_ip_mappings"]
    assert [m["sid"] for m in listed] == [winner["sid"]]


def test_racing_creates_of_one_domain_name(
    server: Server, client: Client, clients: list[httpx.Client], subaccount: tuple[str, str]
) -> None:
    # Half the racers are the subaccount, half a sibling: the name is unique system-wide.
    sibling = client.api.v2010.accounts.create(friendly_name="racer")
    theirs = pooled(server, sibling.sid, sibling.auth_token)
    accounts = [subaccount[0], sibling.sid]
    try:
        name = f"contested-{uuid.uuid4().hex[:12]}.sip.twilio.com"
        racers = [clients[0], theirs]  # call i is made by racers[i % 2] as accounts[i % 2]
        calls = [
            lambda h, a=accounts[i % 2]: h.post(
                f"{A}/{a}/SIP/Domains.json", data={"DomainName": name}
            )
            for i in range(20)
        ]
        responses = race(racers, calls)
        for response in responses:
            check(response)
        assert Counter(r.status_code for r in responses) == {201: 1, 400: 19}
        assert {r.json()["code"] for r in responses if r.status_code == 400} == {21232}
        found = [
            d["domain_name"]
            for h, account in zip(racers, accounts, strict=True)
            for d in h.get(f"{A}/{account}/SIP/Domains.json").json()["domains"]
        ]
        assert found == [name]
    finally:
        theirs.close()


# As many racing requests as one account family may have in flight
# (--max-account-requests, 100 by default): more would rightly get 429s whenever the
# machine is slow enough for them all to be in flight at once.
RACERS = 100


def test_parallel_creates_are_all_kept(clients: list[httpx.Client]) -> None:
    calls = [
        lambda h, n=n: h.post(
            "/v1/IpRecords",
            data={"IpAddress": f"10.{n // 250}.{n % 250}.1", "FriendlyName": str(n)},
        )
        for n in range(RACERS)
    ]
    responses = race(clients, calls)
    assert Counter(r.status_code for r in responses) == {201: RACERS}
    created = [r.json() for r in responses]
    for body in created[:10]:
        oai.validate("POST", "/v1/IpRecords", 201, body)
    sids = {body["sid"] for body in created}
    assert len(sids) == RACERS
    listed = [r["sid"] for r in walk(clients[0], "/v1/IpRecords?PageSize=37", "ip_records")]
    assert len(listed) == RACERS and set(listed) == sids
    names = {
        r["friendly_name"] for r in walk(clients[0], "/v1/IpRecords?PageSize=1000", "ip_records")
    }
    assert names == {str(n) for n in range(RACERS)}


def walk(http: httpx.Client, url: str, key: str) -> Iterator[dict[str, Any]]:
    while url:
        body = http.get(url).json()
        yield from body[key]
        url = body["meta"]["next_page_url"]


def test_racing_deletes(clients: list[httpx.Client]) -> None:
    sid = clients[0].post("/v1/IpRecords", data={"IpAddress": "10.0.0.1"}).json()["sid"]
    responses = race(clients, [lambda h: h.delete(f"/v1/IpRecords/{sid}")] * 20)
    for response in responses:
        check(response)
    assert Counter(r.status_code for r in responses) == {204: 1, 404: 19}
    assert clients[0].get(f"/v1/IpRecords/{sid}").status_code == 404


def test_racing_accounts_for_one_network(server: Server, client: Client) -> None:
    """Two accounts race to map the same network to their own domains: one wins."""
    host = random_host()
    tenants = []
    for n in range(2):
        account = client.api.v2010.accounts.create(friendly_name=f"network racer {n}")
        http = pooled(server, account.sid, account.auth_token)
        record = http.post(
            "/v1/IpRecords", data={"IpAddress": host, "CidrPrefixLength": "24"}
        ).json()["sid"]
        domain = http.post(
            f"{A}/{account.sid}/SIP/Domains.json",
            data={"DomainName": f"net-{uuid.uuid4().hex[:12]}.sip.twilio.com"},
        ).json()["sid"]
        tenants.append((http, record, domain))
    try:
        calls = [
            lambda h, r=record, d=domain: h.post(
                "/v1/SourceIpMappings", data={"IpRecordSid": r, "SipDomainSid": d}
            )
            for _, record, domain in tenants
        ]
        responses = race([t[0] for t in tenants], calls)
        for response in responses:
            check(response)
        assert sorted(r.status_code for r in responses) == [201, 409]
        total = sum(
            len(h.get("/v1/SourceIpMappings").json()["source_ip_mappings"]) for h, _, _ in tenants
        )
        assert total == 1
    finally:
        for http, _, _ in tenants:
            http.close()


def test_no_dangling_mapping_when_a_domain_is_deleted_meanwhile(
    clients: list[httpx.Client], sub_client: Client, subaccount: tuple[str, str]
) -> None:
    domain = sub_client.api.v2010.account.sip.domains.create(
        domain_name=f"doomed-{uuid.uuid4().hex[:12]}.sip.twilio.com"
    ).sid
    http, account = clients[0], subaccount[0]
    records = [
        http.post("/v1/IpRecords", data={"IpAddress": random_host()}).json()["sid"]
        for _ in range(19)
    ]
    calls: list[Callable[[httpx.Client], httpx.Response]] = [
        lambda h, r=r: h.post(
            "/v1/SourceIpMappings", data={"IpRecordSid": r, "SipDomainSid": domain}
        )
        for r in records
    ]
    calls.insert(9, lambda h: h.delete(f"{A}/{account}/SIP/Domains/{domain}.json"))
    responses = race(clients, calls)
    for response in responses:
        check(response)
    assert responses[9].status_code == 204
    # Mappings made before the delete went with it; those after it found no domain.
    assert {r.status_code for r in responses[:9] + responses[10:]} <= {201, 400}
    assert http.get("/v1/SourceIpMappings").json()["source_ip_mappings"] == []


def test_racing_updates_lose_nothing(clients: list[httpx.Client]) -> None:
    """Concurrent updates of different records each land; none overwrites another's."""
    http = clients[0]
    sids = [
        http.post("/v1/IpRecords", data={"IpAddress": f"10.1.0.{n}"}).json()["sid"]
        for n in range(1, 21)
    ]
    calls = [
        lambda h, s=s, n=n: h.post(f"/v1/IpRecords/{s}", data={"FriendlyName": f"updated {n}"})
        for n, s in enumerate(sids)
    ]
    responses = race(clients, calls)
    assert Counter(r.status_code for r in responses) == {200: 20}
    listed = {r["sid"]: r["friendly_name"] for r in walk(http, "/v1/IpRecords", "ip_records")}
    assert listed == {s: f"updated {n}" for n, s in enumerate(sids)}
