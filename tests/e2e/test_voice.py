"""The official SDK against a real server: Voice v1 IP records and source IP mappings."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from .. import oai
from ..conftest import Server, sdk_client, start_server

IP_RECORD_FIELDS = [
    "account_sid",
    "sid",
    "friendly_name",
    "ip_address",
    "cidr_prefix_length",
    "date_created",
    "date_updated",
    "url",
]
MAPPING_FIELDS = ["sid", "ip_record_sid", "sip_domain_sid", "date_created", "date_updated", "url"]
META_FIELDS = [
    "page",
    "page_size",
    "first_page_url",
    "previous_page_url",
    "url",
    "next_page_url",
    "key",
]


IPV4_RULE = "must be an IPv4 address in dotted decimal notation"
PREFIX_ERROR = "Invalid CidrPrefixLength: must be an integer from 1 to 32"


def new_domain(client: Client) -> str:
    name = f"v-{uuid.uuid4().hex[:16]}.sip.twilio.com"
    return str(client.api.v2010.account.sip.domains.create(domain_name=name).sid)


def error_of(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


def page_error(call: Any) -> dict[str, Any]:
    """The error body of a failed page fetch (the SDK raises a bare TwilioException there)."""
    with pytest.raises(TwilioException) as info:
        call()
    response = info.value.args[1]
    body: dict[str, Any] = json.loads(response.text)
    assert body["status"] == response.status_code
    return body


@pytest.fixture
def other_client(client: Client, server: Server) -> Client:
    """A second fresh subaccount, to check what one account can see of another's."""
    account = client.api.v2010.accounts.create(friendly_name="other")
    return sdk_client(server, account.sid, account.auth_token)


def raw(server: Server, client: Client) -> httpx.Client:
    return server.http(client.username, client.password)


# -- IP records ------------------------------------------------------------------------------


def test_ip_record_lifecycle(sub_client: Client, server: Server) -> None:
    records = sub_client.voice.v1.ip_records
    created = records.create(ip_address="192.0.2.77", friendly_name="PBX", cidr_prefix_length=30)
    assert created.sid.startswith("IL") and len(created.sid) == 34
    assert created.account_sid == sub_client.account_sid
    assert (created.ip_address, created.cidr_prefix_length) == ("192.0.2.77", 30)  # not masked
    assert created.friendly_name == "PBX"
    # Dates come back as datetimes: the SDK only parses exactly YYYY-MM-DDTHH:MM:SSZ.
    assert isinstance(created.date_created, datetime)
    assert created.date_created.tzinfo is not None
    assert abs((datetime.now(UTC) - created.date_created).total_seconds()) < 60
    assert created.url == f"{server.base_url}/v1/IpRecords/{created.sid}"

    fetched = records(created.sid).fetch()
    assert (fetched.sid, fetched.friendly_name, fetched.date_created) == (
        created.sid,
        "PBX",
        created.date_created,
    )

    updated = records(created.sid).update(friendly_name="PBX, renamed")
    assert updated.friendly_name == "PBX, renamed"
    assert (updated.ip_address, updated.cidr_prefix_length) == ("192.0.2.77", 30)
    assert updated.date_updated >= created.date_updated
    assert records(created.sid).fetch().friendly_name == "PBX, renamed"

    # An empty update is valid and changes nothing but date_updated.
    assert records(created.sid).update().friendly_name == "PBX, renamed"

    assert records(created.sid).delete() is True
    assert error_of(records(created.sid).fetch).status == 404
    error = error_of(records(created.sid).delete)
    assert (error.status, error.code) == (404, 20404)
    assert records.list() == []


@pytest.mark.parametrize(("given", "stored"), [({}, 32), ({"cidr_prefix_length": 0}, 32)])
def test_ip_record_defaults(sub_client: Client, given: dict[str, Any], stored: int) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="203.0.113.9", **given)
    assert record.cidr_prefix_length == stored
    assert record.friendly_name is None


def test_ip_record_wire_format(sub_client: Client, server: Server) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="198.51.100.1", cidr_prefix_length=24)
    with raw(server, sub_client) as http:
        response = http.get(f"/v1/IpRecords/{record.sid}")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == IP_RECORD_FIELDS
    assert body["date_created"].endswith("Z") and len(body["date_created"]) == 20
    datetime.strptime(body["date_updated"], "%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ip_address": ""}, f"Invalid IpAddress: {IPV4_RULE}"),
        ({"ip_address": "300.1.1.1"}, f"Invalid IpAddress: {IPV4_RULE}"),
        ({"ip_address": "2001:db8::1"}, f"Invalid IpAddress: {IPV4_RULE}"),
        ({"ip_address": "10.0.0.0/8"}, f"Invalid IpAddress: {IPV4_RULE}"),
        ({"ip_address": "10.0.0.1", "cidr_prefix_length": 33}, PREFIX_ERROR),
        ({"ip_address": "10.0.0.1", "cidr_prefix_length": -1}, PREFIX_ERROR),
        (
            {"ip_address": "10.0.0.1", "friendly_name": "x" * 256},
            "Invalid FriendlyName: must be at most 255 characters",
        ),
    ],
)
def test_ip_record_invalid_input(sub_client: Client, kwargs: dict[str, Any], message: str) -> None:
    error = error_of(lambda: sub_client.voice.v1.ip_records.create(**kwargs))
    assert (error.status, error.code) == (400, 20001)
    assert error.msg.endswith(message)
    assert sub_client.voice.v1.ip_records.list() == []


def test_ip_record_friendly_name_limit(sub_client: Client) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.0.0.1", friendly_name="é" * 255)
    assert record.friendly_name == "é" * 255
    error = error_of(
        lambda: sub_client.voice.v1.ip_records(record.sid).update(friendly_name="x" * 256)
    )
    assert (error.status, error.code) == (400, 20001)
    assert sub_client.voice.v1.ip_records(record.sid).fetch().friendly_name == "é" * 255


def test_ip_record_sid_hex_is_case_insensitive(sub_client: Client) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.0.0.1")
    upper = "IL" + record.sid[2:].upper()
    assert sub_client.voice.v1.ip_records(upper).fetch().sid == record.sid
    assert sub_client.voice.v1.ip_records(upper).update(friendly_name="u").sid == record.sid
    lower_prefix = "il" + record.sid[2:]
    assert error_of(sub_client.voice.v1.ip_records(lower_prefix).fetch).status == 404
    sub_client.voice.v1.ip_records(upper).delete()
    assert sub_client.voice.v1.ip_records.list() == []


# -- paging ------------------------------------------------------------------------------------


def test_stream_walks_every_page(sub_client: Client, server: Server) -> None:
    records = sub_client.voice.v1.ip_records
    made = [records.create(ip_address=f"10.7.0.{n}").sid for n in range(1, 12)]
    streamed = [r.sid for r in records.stream(page_size=4)]
    assert streamed == made  # creation order, each once, across three pages
    assert [r.sid for r in records.list(page_size=4, limit=6)] == made[:6]
    assert [r.sid for r in records.list()] == made


def test_page_links(sub_client: Client, server: Server) -> None:
    records = sub_client.voice.v1.ip_records
    made = [records.create(ip_address=f"10.8.0.{n}").sid for n in range(1, 8)]
    first = records.page(page_size=3)
    assert [r.sid for r in first] == made[:3]
    assert first.previous_page_url is None
    assert first.next_page_url.startswith(f"{server.base_url}/v1/IpRecords?")
    second = first.next_page()
    assert [r.sid for r in second] == made[3:6]
    third = second.next_page()
    assert [r.sid for r in third] == made[6:]
    assert third.next_page_url is None and third.next_page() is None
    back = third.previous_page()
    assert [r.sid for r in back] == made[3:6]
    assert [r.sid for r in back.previous_page()] == made[:3]


def test_list_envelope(sub_client: Client, server: Server) -> None:
    records = sub_client.voice.v1.ip_records
    made = [records.create(ip_address=f"10.9.0.{n}").sid for n in range(1, 4)]
    base = f"{server.base_url}/v1/IpRecords"
    with raw(server, sub_client) as http:
        body = http.get("/v1/IpRecords", params={"PageSize": 2}).json()
        meta = body["meta"]
        assert list(body) == ["ip_records", "meta"] and list(meta) == META_FIELDS
        assert [r["sid"] for r in body["ip_records"]] == made[:2]
        assert meta["key"] == "ip_records" and (meta["page"], meta["page_size"]) == (0, 2)
        assert meta["first_page_url"] == f"{base}?PageSize=2&Page=0"
        assert meta["url"] == f"{base}?PageSize=2&Page=0"
        assert meta["previous_page_url"] is None
        assert meta["next_page_url"] == f"{base}?PageSize=2&Page=1&PageToken=PA{made[1]}"

        body = http.get(meta["next_page_url"]).json()
        meta = body["meta"]
        assert [r["sid"] for r in body["ip_records"]] == made[2:]
        assert meta["url"] == f"{base}?PageSize=2&Page=1&PageToken=PA{made[1]}"
        assert meta["next_page_url"] is None
        assert meta["previous_page_url"] == f"{base}?PageSize=2&Page=0&PageToken=PB{made[2]}"
        assert [r["sid"] for r in http.get(meta["previous_page_url"]).json()["ip_records"]] == (
            made[:2]
        )

        # Without a token, Page selects by offset; the default page size is 50.
        assert [
            r["sid"] for r in http.get("/v1/IpRecords?PageSize=2&Page=1").json()["ip_records"]
        ] == (made[2:])
        assert http.get("/v1/IpRecords").json()["meta"]["page_size"] == 50
        empty = http.get("/v1/IpRecords?PageSize=2&Page=9").json()
        assert empty["ip_records"] == [] and empty["meta"]["next_page_url"] is None
        oai.validate("GET", "/v1/IpRecords", 200, empty)


def test_walk_survives_deleting_the_token_item(sub_client: Client) -> None:
    records = sub_client.voice.v1.ip_records
    made = [records.create(ip_address=f"10.10.0.{n}").sid for n in range(1, 7)]
    first = records.page(page_size=2)
    records(made[1]).delete()  # the item the next-page token names
    records(made[2]).delete()
    assert [r.sid for r in first.next_page()] == made[3:5]


def test_page_size_bounds(sub_client: Client) -> None:
    sub_client.voice.v1.ip_records.create(ip_address="10.0.0.1")
    assert len(list(sub_client.voice.v1.ip_records.page(page_size=1000))) == 1
    body = page_error(lambda: sub_client.voice.v1.ip_records.page(page_size=0))
    assert (body["status"], body["code"]) == (400, 20001)
    assert body["message"] == "Invalid PageSize: must be a positive integer"
    # Over the maximum: served as pages of 1000, as Twilio does (test_fidelity.py).
    assert len(list(sub_client.voice.v1.ip_records.page(page_size=1001))) == 1


def test_invalid_page_token(sub_client: Client, other_client: Client) -> None:
    theirs = other_client.voice.v1.ip_records.create(ip_address="10.0.0.1")
    mine = sub_client.voice.v1.ip_records.create(ip_address="10.0.0.1")
    for token in ("garbage", "PA", "PAIL" + "0" * 32, f"PA{theirs.sid}", f"PB{theirs.sid}"):
        body = page_error(
            lambda t=token: sub_client.voice.v1.ip_records.page(page_token=t, page_number=1)
        )
        assert (body["status"], body["code"], body["message"]) == (400, 21481, "Invalid PageToken")
    assert [r.sid for r in sub_client.voice.v1.ip_records.list()] == [mine.sid]


# -- source IP mappings -----------------------------------------------------------------------


def test_mapping_lifecycle(sub_client: Client, server: Server) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="100.64.1.1", cidr_prefix_length=24)
    first, second = new_domain(sub_client), new_domain(sub_client)
    mappings = sub_client.voice.v1.source_ip_mappings

    created = mappings.create(ip_record_sid=record.sid, sip_domain_sid=first)
    assert created.sid.startswith("IB")
    assert (created.ip_record_sid, created.sip_domain_sid) == (record.sid, first)
    assert created.url == f"{server.base_url}/v1/SourceIpMappings/{created.sid}"
    assert isinstance(created.date_created, datetime)

    with raw(server, sub_client) as http:
        body = http.get(f"/v1/SourceIpMappings/{created.sid}").json()
    assert list(body) == MAPPING_FIELDS  # in this order, and no account_sid

    assert mappings(created.sid).fetch().sip_domain_sid == first
    assert [m.sid for m in mappings.list()] == [created.sid]

    moved = mappings(created.sid).update(sip_domain_sid=second)
    assert moved.sip_domain_sid == second and moved.ip_record_sid == record.sid
    assert moved.date_updated >= created.date_updated
    assert mappings(created.sid).fetch().sip_domain_sid == second

    assert mappings(created.sid).delete() is True
    assert error_of(mappings(created.sid).fetch).code == 20404
    assert mappings.list() == []
    # The record and domains stay.
    assert sub_client.voice.v1.ip_records(record.sid).fetch().sid == record.sid


def test_mapping_stream(sub_client: Client) -> None:
    domain = new_domain(sub_client)
    made = []
    for n in range(1, 8):
        record = sub_client.voice.v1.ip_records.create(
            ip_address=f"10.11.{n}.1", cidr_prefix_length=24
        )
        made.append(
            sub_client.voice.v1.source_ip_mappings.create(
                ip_record_sid=record.sid, sip_domain_sid=domain
            ).sid
        )
    assert [m.sid for m in sub_client.voice.v1.source_ip_mappings.stream(page_size=3)] == made


def test_one_mapping_per_ip_record(sub_client: Client) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.12.0.1")
    domain = new_domain(sub_client)
    mappings = sub_client.voice.v1.source_ip_mappings
    existing = mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain)
    for target in (domain, new_domain(sub_client)):
        error = error_of(
            lambda t=target: mappings.create(ip_record_sid=record.sid, sip_domain_sid=t)
        )
        assert (error.status, error.code) == (409, 20409)
        assert existing.sid in error.msg
    assert [m.sid for m in mappings.list()] == [existing.sid]


@pytest.mark.parametrize("which", ["record", "domain"])
@pytest.mark.parametrize("how", ["unknown", "other-account", "malformed", "wrong-type"])
def test_mapping_dangling_references(
    sub_client: Client, other_client: Client, which: str, how: str
) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.13.0.1").sid
    domain = new_domain(sub_client)
    bad = {
        "unknown": ("IL" if which == "record" else "SD") + uuid.uuid4().hex,
        "other-account": (
            other_client.voice.v1.ip_records.create(ip_address="10.13.0.1").sid
            if which == "record"
            else new_domain(other_client)
        ),
        "malformed": "nope",
        "wrong-type": domain if which == "record" else record,
    }[how]
    args = {"ip_record_sid": bad if which == "record" else record}
    args["sip_domain_sid"] = bad if which == "domain" else domain
    error = error_of(lambda: sub_client.voice.v1.source_ip_mappings.create(**args))
    assert (error.status, error.code) == (400, 20001)
    assert ("IpRecordSid" if which == "record" else "SipDomainSid") in error.msg
    assert sub_client.voice.v1.source_ip_mappings.list() == []


def test_mapping_update_rules(sub_client: Client, other_client: Client) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.14.0.1")
    domain = new_domain(sub_client)
    mapping = sub_client.voice.v1.source_ip_mappings.create(
        ip_record_sid=record.sid, sip_domain_sid=domain
    )
    for bad in ("SD" + uuid.uuid4().hex, new_domain(other_client), "", record.sid):
        error = error_of(
            lambda b=bad: sub_client.voice.v1.source_ip_mappings(mapping.sid).update(
                sip_domain_sid=b
            )
        )
        assert (error.status, error.code) == (400, 20001)
        assert "SipDomainSid" in error.msg
    assert sub_client.voice.v1.source_ip_mappings(mapping.sid).fetch().sip_domain_sid == domain


def test_networks_are_unambiguous_across_accounts(sub_client: Client, other_client: Client) -> None:
    mine = sub_client.voice.v1.ip_records.create(ip_address="100.100.7.1", cidr_prefix_length=24)
    my_domain = new_domain(sub_client)
    mapped = sub_client.voice.v1.source_ip_mappings.create(
        ip_record_sid=mine.sid, sip_domain_sid=my_domain
    )
    theirs = other_client.voice.v1.ip_records.create(
        ip_address="100.100.7.200", cidr_prefix_length=24
    )
    their_domain = new_domain(other_client)
    error = error_of(
        lambda: other_client.voice.v1.source_ip_mappings.create(
            ip_record_sid=theirs.sid, sip_domain_sid=their_domain
        )
    )
    assert (error.status, error.code) == (409, 20409)
    for secret in (mine.sid, my_domain, mapped.sid, sub_client.account_sid):
        assert secret not in error.msg
    # A longer or shorter prefix over the same addresses is not ambiguous: allowed.
    narrower = other_client.voice.v1.ip_records.create(
        ip_address="100.100.7.200", cidr_prefix_length=25
    )
    other_client.voice.v1.source_ip_mappings.create(
        ip_record_sid=narrower.sid, sip_domain_sid=their_domain
    )
    assert len(other_client.voice.v1.source_ip_mappings.list()) == 1


@pytest.fixture
def stranger(server: Server) -> Client:
    """A client of another top-level account (another family), made by the operator CLI
    on the server's own database and credential key file."""
    made = subprocess.run(
        [sys.executable, "-m", "sipmap.cli", "accounts", "create", "--db", str(server.db)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    account = json.loads(made.stdout)
    return sdk_client(server, account["sid"], account["auth_token"])


def test_another_family_cannot_capture_part_of_a_mapped_network(
    sub_client: Client, stranger: Client, server: Server
) -> None:
    # Issue 10, finding 1, over the wire: a /32 inside another family's /24 is refused.
    mine = sub_client.voice.v1.ip_records.create(ip_address="100.101.7.0", cidr_prefix_length=24)
    my_domain = new_domain(sub_client)
    mapped = sub_client.voice.v1.source_ip_mappings.create(
        ip_record_sid=mine.sid, sip_domain_sid=my_domain
    )
    their_domain = new_domain(stranger)
    for address, length in [("100.101.7.9", 32), ("100.101.0.0", 16)]:
        theirs = stranger.voice.v1.ip_records.create(ip_address=address, cidr_prefix_length=length)
        with raw(server, stranger) as http:
            answer = http.post(
                "/v1/SourceIpMappings",
                data={"IpRecordSid": theirs.sid, "SipDomainSid": their_domain},
            )
        assert answer.status_code == 409
        body = answer.json()
        oai.validate_error(409, body)
        assert body["code"] == 20409
        for secret in (mine.sid, my_domain, mapped.sid, sub_client.account_sid, "100.101.7.0"):
            assert secret not in answer.text
    # And 0.0.0.0/1 is below the minimum prefix.
    wide = stranger.voice.v1.ip_records.create(ip_address="0.0.0.0", cidr_prefix_length=1)
    error = error_of(
        lambda: stranger.voice.v1.source_ip_mappings.create(
            ip_record_sid=wide.sid, sip_domain_sid=their_domain
        )
    )
    assert (error.status, error.code) == (400, 20001)
    assert stranger.voice.v1.source_ip_mappings.list() == []
    with raw(server, sub_client) as http:
        found = http.get("/sipmap/v1/Recognition", params={"SourceIp": "100.101.7.9"}).json()
    assert found["source_ip_mapping_sid"] == mapped.sid


def test_delete_cascades(sub_client: Client) -> None:
    domain, doomed_domain = new_domain(sub_client), new_domain(sub_client)
    records = [sub_client.voice.v1.ip_records.create(ip_address=f"10.15.0.{n}") for n in (1, 2, 3)]
    mappings = sub_client.voice.v1.source_ip_mappings
    by_record = mappings.create(ip_record_sid=records[0].sid, sip_domain_sid=domain)
    by_domain = mappings.create(ip_record_sid=records[1].sid, sip_domain_sid=doomed_domain)
    kept = mappings.create(ip_record_sid=records[2].sid, sip_domain_sid=domain)

    sub_client.voice.v1.ip_records(records[0].sid).delete()
    assert error_of(mappings(by_record.sid).fetch).status == 404
    sub_client.api.v2010.account.sip.domains(doomed_domain).delete()
    assert error_of(mappings(by_domain.sid).fetch).status == 404
    assert [m.sid for m in mappings.list()] == [kept.sid]
    # The freed record can be mapped again.
    again = mappings.create(ip_record_sid=records[1].sid, sip_domain_sid=domain)
    assert [m.sid for m in mappings.list()] == [kept.sid, again.sid]


# -- ownership ---------------------------------------------------------------------------------


def test_resources_belong_to_the_authenticated_account(
    sub_client: Client, other_client: Client, client: Client
) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.16.0.1", friendly_name="mine")
    mapping = sub_client.voice.v1.source_ip_mappings.create(
        ip_record_sid=record.sid, sip_domain_sid=new_domain(sub_client)
    )
    # Neither a sibling nor the parent account sees, changes or deletes them.
    for intruder in (other_client, client):
        calls = [
            intruder.voice.v1.ip_records(record.sid).fetch,
            lambda i=intruder: i.voice.v1.ip_records(record.sid).update(friendly_name="x"),
            intruder.voice.v1.ip_records(record.sid).delete,
            intruder.voice.v1.source_ip_mappings(mapping.sid).fetch,
            lambda i=intruder: i.voice.v1.source_ip_mappings(mapping.sid).update(
                sip_domain_sid=mapping.sip_domain_sid
            ),
            intruder.voice.v1.source_ip_mappings(mapping.sid).delete,
        ]
        for call in calls:
            error = error_of(call)
            assert (error.status, error.code) == (404, 20404)
        assert record.sid not in {r.sid for r in intruder.voice.v1.ip_records.stream()}
        assert mapping.sid not in {m.sid for m in intruder.voice.v1.source_ip_mappings.stream()}
    assert sub_client.voice.v1.ip_records(record.sid).fetch().friendly_name == "mine"
    assert sub_client.voice.v1.source_ip_mappings(mapping.sid).fetch().sid == mapping.sid


# -- absolute URLs ---------------------------------------------------------------------------------


def test_urls_follow_the_host_header(sub_client: Client, server: Server) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.17.0.1")
    sub_client.voice.v1.ip_records.create(ip_address="10.17.0.2")
    with raw(server, sub_client) as http:
        headers = {"Host": "sipmap.example:8443"}
        body = http.get(f"/v1/IpRecords/{record.sid}", headers=headers).json()
        assert body["url"] == f"http://sipmap.example:8443/v1/IpRecords/{record.sid}"
        meta = http.get("/v1/IpRecords?PageSize=1", headers=headers).json()["meta"]
    for key in ("first_page_url", "url", "next_page_url"):
        assert meta[key].startswith("http://sipmap.example:8443/v1/IpRecords?PageSize=1&Page=")


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("public") / "sipmap.db",
        "--public-base-url",
        "https://sipmap.example.com/",
    )
    yield srv
    srv.stop()


def test_public_base_url(public_server: Server) -> None:
    with public_server.http() as http:
        created = http.post("/v1/IpRecords", data={"IpAddress": "10.18.0.1"})
        http.post("/v1/IpRecords", data={"IpAddress": "10.18.0.2"})
        assert created.status_code == 201
        sid = created.json()["sid"]
        assert created.json()["url"] == f"https://sipmap.example.com/v1/IpRecords/{sid}"
        meta = http.get("/v1/IpRecords?PageSize=1", headers={"Host": "ignored.example"}).json()[
            "meta"
        ]
        assert meta["next_page_url"] == (
            f"https://sipmap.example.com/v1/IpRecords?PageSize=1&Page=1&PageToken=PA{sid}"
        )
