"""Recognition end to end: records made with the official SDK, recognised through
GET /sipmap/v1/Recognition and through `sipmap recognize`, right after every write."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from twilio.rest import Client

from ..conftest import Server, sdk_client

PATH = "/sipmap/v1/Recognition"
FIELDS = [
    "recognized",
    "allowed",
    "reason",
    "matched_by",
    "sip_domain_sid",
    "domain_name",
    "account_sid",
    "ip_record_sid",
    "source_ip_mapping_sid",
    "network",
]
# The session's server is shared and mapped networks are unique system-wide: this
# module takes its /24s from 198.18.0.0/15 (RFC 2544), which no other test uses.
_NETWORKS = itertools.count(random.Random(uuid.uuid4().int).randrange(0, 400))


def fresh_net() -> str:
    """'198.18.x.y': the first three octets of a /24 nobody has used in this session."""
    n = next(_NETWORKS) % 512
    return f"198.{18 + n // 256}.{n % 256}"


def unique_domain(tag: str = "rec") -> str:
    return f"{tag}-{uuid.uuid4().hex[:16]}.sip.twilio.com"


def unrecognized(reason: str) -> dict[str, Any]:
    return {**dict.fromkeys(FIELDS), "recognized": False, "allowed": False, "reason": reason}


def recognize(http: httpx.Client, source_ip: str, request_uri: str | None = None) -> dict[str, Any]:
    params = {"SourceIp": source_ip}
    if request_uri is not None:
        params["RequestUri"] = request_uri
    response = http.get(PATH, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["twilio-request-id"].startswith("RQ")
    body: dict[str, Any] = response.json()
    assert list(body) == FIELDS
    return body


def cli_recognize(server: Server, source_ip: str, request_uri: str | None = None) -> dict[str, Any]:
    """`sipmap recognize` on the server's database file, as an operator would run it."""
    args = [sys.executable, "-m", "sipmap.cli", "recognize", "--db", str(server.db), source_ip]
    if request_uri is not None:
        args += ["--request-uri", request_uri]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    body: dict[str, Any] = json.loads(done.stdout)  # printed whatever the outcome
    assert list(body) == FIELDS
    # Like grep: 0 recognised and allowed, 1 not, 2 an invalid address.
    expected = 0 if body["allowed"] else 2 if body["reason"] == "invalid_source_ip" else 1
    assert done.returncode == expected, done.stderr
    return body


@pytest.fixture
def http(server: Server, subaccount: tuple[str, str]) -> Iterator[httpx.Client]:
    with server.http(*subaccount) as client:
        yield client


def test_recognised_right_after_every_write(
    server: Server, sub_client: Client, subaccount: tuple[str, str], http: httpx.Client
) -> None:
    ac = subaccount[0]
    sip, voice = sub_client.api.v2010.accounts(ac).sip, sub_client.voice.v1
    net, elsewhere = fresh_net(), fresh_net()
    name = unique_domain()
    domain = sip.domains.create(domain_name=name)
    other = sip.domains.create(domain_name=unique_domain("other"))
    source = f"{net}.5"

    # Nothing mapped yet.
    assert recognize(http, source) == unrecognized("no_source_mapping")

    record = voice.ip_records.create(ip_address=f"{net}.77", cidr_prefix_length=24)
    assert recognize(http, source) == unrecognized("no_source_mapping")
    mapping = voice.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)
    expected = {
        "recognized": True,
        "allowed": False,
        "reason": "no_acl_mapped",  # a domain with no auth mapped accepts nothing
        "matched_by": "source_ip",
        "sip_domain_sid": domain.sid,
        "domain_name": name,
        "account_sid": ac,
        "ip_record_sid": record.sid,
        "source_ip_mapping_sid": mapping.sid,
        "network": f"{net}.0/24",  # masked; the record keeps .77
    }
    assert recognize(http, source) == expected
    assert recognize(http, f"::ffff:{source}") == expected
    assert cli_recognize(server, source) == expected
    assert recognize(http, f"{elsewhere}.5") == unrecognized("no_source_mapping")

    # An IP access control list holding .5, mapped to the domain.
    acl = sip.ip_access_control_lists.create(friendly_name="pbx")
    address = sip.ip_access_control_lists(acl.sid).ip_addresses.create(
        friendly_name="pbx", ip_address=source
    )
    assert recognize(http, source)["reason"] == "no_acl_mapped"  # the list is not mapped yet
    sip.domains(domain.sid).ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    allowed = {**expected, "allowed": True, "reason": "allowed_by_acl"}
    refused = {**expected, "reason": "source_ip_not_in_acl"}
    assert recognize(http, source) == allowed
    assert recognize(http, f"{net}.6") == refused
    assert recognize(http, f"::ffff:{net}.5") == allowed
    assert cli_recognize(server, source) == allowed

    # The address moves: the ACL follows at once.
    sip.ip_access_control_lists(acl.sid).ip_addresses(address.sid).update(ip_address=f"{net}.6")
    assert recognize(http, source) == refused
    assert recognize(http, f"{net}.6") == {**allowed}

    # By name: the Request-URI host wins, from any source; the ACL still applies.
    uri = f"sip:alice@{name.upper()}:5060;transport=tcp"
    by_name = {
        **dict.fromkeys(FIELDS),
        "recognized": True,
        "allowed": True,
        "reason": "allowed_by_acl",
        "matched_by": "request_uri",
        "sip_domain_sid": domain.sid,
        "domain_name": name,
        "account_sid": ac,
    }
    assert recognize(http, f"{net}.6", uri) == by_name
    outside = {**by_name, "allowed": False, "reason": "source_ip_not_in_acl"}
    assert recognize(http, f"{elsewhere}.9", uri) == outside
    assert recognize(http, "2001:db8::1", uri) == outside  # IPv6 is in no IPv4 list
    assert cli_recognize(server, f"{elsewhere}.9", uri) == outside
    unknown = f"sip:alice@{unique_domain('nobody')}"
    assert recognize(http, f"{elsewhere}.9", unknown) == unrecognized("unknown_domain")
    assert recognize(http, f"{net}.6", unknown) == {**allowed, "ip_record_sid": record.sid}

    # Renamed domain: the new name matches at once, the old one no longer does.
    renamed = unique_domain("renamed")
    sip.domains(domain.sid).update(domain_name=renamed)
    assert recognize(http, f"{elsewhere}.9", f"sip:{renamed}")["sip_domain_sid"] == domain.sid
    assert recognize(http, f"{elsewhere}.9", f"sip:{name}") == unrecognized("unknown_domain")
    assert recognize(http, f"{net}.6")["domain_name"] == renamed
    assert cli_recognize(server, f"{elsewhere}.9", f"sip:{renamed}")["domain_name"] == renamed

    # The mapping moves to another domain (which has no ACL).
    voice.source_ip_mappings(mapping.sid).update(sip_domain_sid=other.sid)
    moved = recognize(http, f"{net}.6")
    assert (moved["sip_domain_sid"], moved["reason"]) == (other.sid, "no_acl_mapped")
    voice.source_ip_mappings(mapping.sid).update(sip_domain_sid=domain.sid)
    assert recognize(http, f"{net}.6")["sip_domain_sid"] == domain.sid

    # Mapping deleted: not recognised in the very next request.
    voice.source_ip_mappings(mapping.sid).delete()
    assert recognize(http, f"{net}.6") == unrecognized("no_source_mapping")
    assert cli_recognize(server, f"{net}.6") == unrecognized("no_source_mapping")

    # Mapped again, then the IP record deleted: its mapping goes with it.
    again = voice.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)
    assert recognize(http, f"{net}.6")["source_ip_mapping_sid"] == again.sid
    voice.ip_records(record.sid).delete()
    assert recognize(http, f"{net}.6") == unrecognized("no_source_mapping")

    # ACL unmapped: the domain, still found by name, accepts nothing.
    sip.domains(domain.sid).ip_access_control_list_mappings(acl.sid).delete()
    assert recognize(http, f"{net}.6", f"sip:{renamed}")["reason"] == "no_acl_mapped"
    sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    assert recognize(http, f"{net}.6", f"sip:{renamed}")["reason"] == "allowed_by_acl"
    sip.ip_access_control_lists(acl.sid).delete()  # with its addresses and mappings
    assert recognize(http, f"{net}.6", f"sip:{renamed}")["reason"] == "no_acl_mapped"

    # Domain deleted: neither its name nor its mappings recognise anything.
    record = voice.ip_records.create(ip_address=f"{net}.0", cidr_prefix_length=24)
    voice.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)
    assert recognize(http, f"{net}.6")["sip_domain_sid"] == domain.sid
    sip.domains(domain.sid).delete()
    assert recognize(http, f"{net}.6") == unrecognized("no_source_mapping")
    assert recognize(http, f"{net}.6", f"sip:{renamed}") == unrecognized("unknown_domain")
    assert cli_recognize(server, f"{net}.6", f"sip:{renamed}") == unrecognized("unknown_domain")
    assert voice.source_ip_mappings.list() == []


def test_longest_prefix_wins_over_the_api(
    sub_client: Client, subaccount: tuple[str, str], http: httpx.Client
) -> None:
    sip, voice = sub_client.api.v2010.accounts(subaccount[0]).sip, sub_client.voice.v1
    net = fresh_net()
    wide, narrow = (sip.domains.create(domain_name=unique_domain(t)) for t in ("wide", "narrow"))
    records = {
        length: voice.ip_records.create(ip_address=f"{net}.9", cidr_prefix_length=length)
        for length in (24, 29, 32)
    }
    for length, domain in ((24, wide), (29, narrow), (32, wide)):
        voice.source_ip_mappings.create(
            ip_record_sid=records[length].sid, sip_domain_sid=domain.sid
        )
    assert recognize(http, f"{net}.9")["network"] == f"{net}.9/32"
    assert recognize(http, f"{net}.10")["network"] == f"{net}.8/29"
    assert recognize(http, f"{net}.10")["sip_domain_sid"] == narrow.sid
    assert recognize(http, f"{net}.200")["network"] == f"{net}.0/24"
    voice.ip_records(records[29].sid).delete()
    assert recognize(http, f"{net}.10")["sip_domain_sid"] == wide.sid


def test_visibility_between_accounts(server: Server, client: Client) -> None:
    """A subaccount learns nothing about another account's domains; its parent sees them."""
    made = [client.api.v2010.accounts.create(friendly_name=f"rec {n}") for n in range(2)]
    owner = sdk_client(server, made[0].sid, made[0].auth_token)
    sip = owner.api.v2010.accounts(made[0].sid).sip
    net, unused = fresh_net(), fresh_net()
    name = unique_domain("private")
    domain = sip.domains.create(domain_name=name)
    record = owner.voice.v1.ip_records.create(ip_address=f"{net}.0", cidr_prefix_length=24)
    owner.voice.v1.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)
    unknown = f"sip:{unique_domain('nobody')}"

    with (
        server.http(made[0].sid, made[0].auth_token) as mine,
        server.http(made[1].sid, made[1].auth_token) as theirs,
        server.http() as parent,
    ):
        assert recognize(mine, f"{net}.1")["sip_domain_sid"] == domain.sid
        assert recognize(mine, f"{unused}.1", f"sip:{name}")["sip_domain_sid"] == domain.sid
        seen = recognize(parent, f"{net}.1")
        assert (seen["sip_domain_sid"], seen["account_sid"]) == (domain.sid, made[0].sid)
        assert recognize(parent, f"{unused}.1", f"sip:{name}")["account_sid"] == made[0].sid

        # The sibling gets exactly what an unmapped address or an unknown name gets.
        for request_uri in (None, unknown, f"sip:bob@{unused}.7", "sip:[2001:db8::1]"):
            assert recognize(theirs, f"{net}.1", request_uri) == recognize(
                theirs, f"{unused}.1", request_uri
            )
        assert recognize(theirs, f"{net}.1") == unrecognized("no_source_mapping")
        assert recognize(theirs, f"{net}.1", unknown) == unrecognized("unknown_domain")
        assert recognize(theirs, f"{unused}.1", f"sip:{name}") == recognize(
            theirs, f"{unused}.1", unknown
        )
        assert recognize(theirs, f"{net}.1", f"sip:{name}") == unrecognized("unknown_domain")

        # Nor does a subaccount see its parent's domains.
        top = client.api.v2010.accounts(server.account_sid).sip
        parents_domain = top.domains.create(domain_name=unique_domain("parent"))
        try:
            assert recognize(parent, f"{unused}.1", f"sip:{parents_domain.domain_name}")[
                "recognized"
            ]
            assert recognize(
                theirs, f"{unused}.1", f"sip:{parents_domain.domain_name}"
            ) == unrecognized("unknown_domain")
        finally:
            top.domains(parents_domain.sid).delete()

    # The operator's CLI has no account: it sees everything.
    assert cli_recognize(server, f"{net}.1")["account_sid"] == made[0].sid


def assert_twilio_error(response: httpx.Response, status: int, code: int, word: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["status"], body["code"]) == (status, code)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert word in body["message"], body["message"]


def test_missing_or_invalid_source_ip(server: Server, http: httpx.Client) -> None:
    assert_twilio_error(http.get(PATH), 400, 20001, "SourceIp")
    assert_twilio_error(http.get(PATH, params={"SourceIp": ""}), 400, 20001, "SourceIp")
    assert_twilio_error(
        http.get(PATH, params={"RequestUri": "sip:a.sip.twilio.com"}), 400, 20001, "SourceIp"
    )
    for garbage in ("bob", "198.18.0.1:5060", "010.0.0.1", "1.2.3.4.5"):
        assert recognize(http, garbage) == unrecognized("invalid_source_ip")
    with httpx.Client(base_url=server.base_url) as anonymous:
        assert_twilio_error(anonymous.get(PATH, params={"SourceIp": "198.18.0.1"}), 401, 20003, "")
    assert_twilio_error(http.post(PATH, data={"SourceIp": "198.18.0.1"}), 405, 20004, "POST")
