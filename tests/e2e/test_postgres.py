"""`sipmap serve --db postgresql://…`: the official SDK against a server on PostgreSQL, and
two servers sharing one database."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ..conftest import Server, sdk_client, start_server
from ..pg import scratch_database
from .test_concurrency import check, pooled, race


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture
def node(database: str) -> Iterator[Server]:
    server = start_server(database)
    yield server
    server.stop()


@pytest.fixture
def second_node(database: str, node: Server) -> Iterator[Server]:
    # Started after the first, which has migrated the schema and made the account.
    server = start_server(database)
    yield server
    server.stop()


def subaccount_client(server: Server) -> Client:
    account = sdk_client(server).api.v2010.accounts.create(friendly_name="pg")
    return sdk_client(server, account.sid, account.auth_token)


def test_ip_record_and_mapping_lifecycle(node: Server) -> None:
    client = subaccount_client(node)
    records = client.voice.v1.ip_records
    record = records.create(ip_address="192.0.2.10", friendly_name="PBX", cidr_prefix_length=30)
    assert records(record.sid).fetch().friendly_name == "PBX"
    assert [r.sid for r in records.list()] == [record.sid]

    domain = client.api.v2010.account.sip.domains.create(domain_name="pg.sip.twilio.com")
    mappings = client.voice.v1.source_ip_mappings
    mapping = mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)
    fetched = mappings(mapping.sid).fetch()
    assert (fetched.ip_record_sid, fetched.sip_domain_sid) == (record.sid, domain.sid)
    assert [m.sid for m in mappings.list()] == [mapping.sid]

    assert mappings(mapping.sid).delete() is True
    assert mappings.list() == []
    assert records(record.sid).delete() is True
    with pytest.raises(TwilioRestException) as info:
        records(record.sid).fetch()
    assert info.value.status == 404
    assert records.list() == []


def test_two_nodes_share_one_database(node: Server, second_node: Server) -> None:
    one = subaccount_client(node)
    # The same account and token, through the other node.
    two = sdk_client(second_node, one.username, one.password)
    record = one.voice.v1.ip_records.create(ip_address="198.51.100.7", friendly_name="shared")
    assert two.voice.v1.ip_records(record.sid).fetch().friendly_name == "shared"

    domains = [
        one.api.v2010.account.sip.domains.create(
            domain_name=f"pg-{uuid.uuid4().hex[:12]}.sip.twilio.com"
        ).sid
        for _ in range(4)
    ]
    clients: list[httpx.Client] = [
        pooled(node, one.username, one.password),
        pooled(second_node, one.username, one.password),
    ]
    try:
        # Call i goes to node i % 2: both nodes race to map the one record.
        calls = [
            lambda h, d=domains[i % 4]: h.post(
                "/v1/SourceIpMappings", data={"IpRecordSid": record.sid, "SipDomainSid": d}
            )
            for i in range(20)
        ]
        responses = race(clients, calls)
        for response in responses:
            check(response)
        assert Counter(r.status_code for r in responses) == {201: 1, 409: 19}
        winner = next(r.json()["sid"] for r in responses if r.status_code == 201)
        for http in clients:
            listed = http.get("/v1/SourceIpMappings").json()["source_ip_mappings"]
            assert [m["sid"] for m in listed] == [winner]
    finally:
        for http in clients:
            http.close()
