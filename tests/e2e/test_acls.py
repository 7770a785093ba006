"""The official SDK against a real server: IP access control lists, their IP addresses and
their SIP domain mappings, at both of Twilio's mapping URLs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client
from twilio.rest.api.v2010.account import AccountContext

from ..conftest import Server

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ERROR_KEYS = {"code", "message", "more_info", "status"}

# Field order of Twilio's own examples in the spec.
LIST_FIELDS = [
    "account_sid",
    "date_created",
    "date_updated",
    "friendly_name",
    "sid",
    "subresource_uris",
    "uri",
]
ADDRESS_FIELDS = [
    "account_sid",
    "date_created",
    "date_updated",
    "friendly_name",
    "ip_access_control_list_sid",
    "ip_address",
    "cidr_prefix_length",
    "sid",
    "uri",
]
MAPPING_FIELDS = [
    "account_sid",
    "date_created",
    "date_updated",
    "friendly_name",
    "domain_sid",
    "sid",
    "uri",
]
AUTH_MAPPING_FIELDS = ["account_sid", "date_created", "date_updated", "friendly_name", "sid"]
LIST_ENVELOPE = [
    "first_page_uri",
    "end",
    "previous_page_uri",
    "uri",
    "page_size",
    "start",
    "next_page_uri",
    "page",
]


def api(client: Client, account_sid: str) -> AccountContext:
    return client.api.v2010.accounts(account_sid)


def unique_domain() -> str:
    return f"acl-{uuid.uuid4().hex[:16]}.sip.twilio.com"


def expect_error(status: int, code: int, call: Callable[[], Any]) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.msg
    return caught.value


def expect_page_error(status: int, code: int, call: Callable[[], Any]) -> None:
    """The SDK reports a failed list read as a plain TwilioException carrying the response."""
    with pytest.raises(TwilioException) as caught:
        call()
    response = caught.value.args[1]
    assert response.status_code == status
    assert json.loads(response.text)["code"] == code


@pytest.fixture
def http(server: Server, subaccount: tuple[str, str]) -> Iterator[httpx.Client]:
    with server.http(*subaccount) as client:
        yield client


@pytest.fixture
def base(subaccount: tuple[str, str]) -> str:
    return f"/2010-04-01/Accounts/{subaccount[0]}/SIP"


def snapshot(http: httpx.Client, base: str) -> list[Any]:
    """Everything stored under the account's lists and one domain's mappings, via the API."""
    lists = http.get(f"{base}/IpAccessControlLists.json", params={"PageSize": 1000}).json()
    state: list[Any] = [lists["ip_access_control_lists"]]
    for acl in lists["ip_access_control_lists"]:
        url = f"{base}/IpAccessControlLists/{acl['sid']}/IpAddresses.json"
        state.append(http.get(url, params={"PageSize": 1000}).json()["ip_addresses"])
    domains = http.get(f"{base}/Domains.json", params={"PageSize": 1000}).json()["domains"]
    for domain in domains:
        url = f"{base}/Domains/{domain['sid']}/IpAccessControlListMappings.json"
        state.append(http.get(url).json()["ip_access_control_list_mappings"])
    return state


def assert_twilio_error(response: httpx.Response, status: int, code: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert (body["status"], body["code"]) == (status, code)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    for word in words:
        assert word in body["message"], body["message"]


# -- IP access control lists --------------------------------------------------------------


def test_list_round_trip(
    sub_client: Client, subaccount: tuple[str, str], http: httpx.Client, base: str
) -> None:
    ac = subaccount[0]
    sip = api(sub_client, ac).sip
    acl = sip.ip_access_control_lists.create(friendly_name="office")
    assert acl.sid.startswith("AL") and len(acl.sid) == 34
    assert acl.account_sid == ac and acl.friendly_name == "office"
    assert acl.date_created is not None and acl.date_created == acl.date_updated
    assert acl.uri == f"{base}/IpAccessControlLists/{acl.sid}.json"
    assert acl.subresource_uris == {
        "ip_addresses": f"{base}/IpAccessControlLists/{acl.sid}/IpAddresses.json"
    }

    fetched = sip.ip_access_control_lists(acl.sid).fetch()
    assert (fetched.sid, fetched.friendly_name, fetched.date_created) == (
        acl.sid,
        "office",
        acl.date_created,
    )
    raw = http.get(f"{base}/IpAccessControlLists/{acl.sid}.json")
    assert raw.status_code == 200 and list(raw.json()) == LIST_FIELDS
    assert parsedate_to_datetime(raw.json()["date_created"]) == acl.date_created
    assert raw.json()["date_created"].endswith(" +0000")
    # SIDs in the path match case-insensitively on the hex part.
    upper = acl.sid[:2] + acl.sid[2:].upper()
    assert http.get(f"{base}/IpAccessControlLists/{upper}.json").json()["sid"] == acl.sid

    renamed = sip.ip_access_control_lists(acl.sid).update(friendly_name="x" * 255)
    assert renamed.friendly_name == "x" * 255 and renamed.date_created == acl.date_created
    assert [a.sid for a in sip.ip_access_control_lists.list()] == [acl.sid]
    body = http.get(f"{base}/IpAccessControlLists.json").json()
    assert list(body) == [*LIST_ENVELOPE[:3], "ip_access_control_lists", *LIST_ENVELOPE[3:]]
    assert body["first_page_uri"] == f"{base}/IpAccessControlLists.json?PageSize=50&Page=0"

    assert sip.ip_access_control_lists(acl.sid).delete() is True
    expect_error(404, 20404, sip.ip_access_control_lists(acl.sid).fetch)
    expect_error(404, 20404, sip.ip_access_control_lists(acl.sid).delete)
    assert sip.ip_access_control_lists.list() == []


def test_lists_page_in_creation_order(sub_client: Client, subaccount: tuple[str, str]) -> None:
    lists = api(sub_client, subaccount[0]).sip.ip_access_control_lists
    sids = [lists.create(friendly_name=f"l{i}").sid for i in range(7)]
    assert [a.sid for a in lists.list(page_size=3)] == sids
    assert [a.sid for a in lists.stream(page_size=2, limit=5)] == sids[:5]
    page = lists.page(page_size=3)
    seen = []
    while page is not None:
        seen.append([a.sid for a in page])
        page = page.next_page()
    assert seen == [sids[0:3], sids[3:6], sids[6:]]
    # A walk stays stable while items are deleted under it.
    walk = lists.stream(page_size=2)
    first = [next(walk).sid, next(walk).sid]
    lists(sids[2]).delete()
    assert first + [a.sid for a in walk] == sids[:2] + sids[3:]


# -- IP addresses -------------------------------------------------------------------------


def test_address_round_trip(
    sub_client: Client, subaccount: tuple[str, str], http: httpx.Client, base: str
) -> None:
    ac = subaccount[0]
    acl = api(sub_client, ac).sip.ip_access_control_lists.create(friendly_name="pbxes")
    addresses = api(sub_client, ac).sip.ip_access_control_lists(acl.sid).ip_addresses
    host = addresses.create(friendly_name="pbx", ip_address="192.168.1.1")
    assert host.sid.startswith("IP") and host.cidr_prefix_length == 32
    assert (host.account_sid, host.ip_access_control_list_sid) == (ac, acl.sid)
    assert host.uri == f"{base}/IpAccessControlLists/{acl.sid}/IpAddresses/{host.sid}.json"
    net = addresses.create(friendly_name="net", ip_address="10.1.2.3", cidr_prefix_length=24)
    assert (net.ip_address, net.cidr_prefix_length) == ("10.1.2.3", 24)
    cidr = addresses.create(friendly_name="cidr", ip_address="172.16.0.0/12")
    assert (cidr.ip_address, cidr.cidr_prefix_length) == ("172.16.0.0", 12)
    zero = addresses.create(friendly_name="zero", ip_address="10.9.9.9", cidr_prefix_length=0)
    assert zero.cidr_prefix_length == 32

    raw = http.get(f"{base}/IpAccessControlLists/{acl.sid}/IpAddresses/{net.sid}.json")
    assert list(raw.json()) == ADDRESS_FIELDS
    fetched = addresses(net.sid).fetch()
    assert (fetched.friendly_name, fetched.ip_address, fetched.date_created) == (
        "net",
        "10.1.2.3",
        net.date_created,
    )

    assert addresses(net.sid).update(friendly_name="renamed").cidr_prefix_length == 24
    moved = addresses(net.sid).update(ip_address="10.5.0.0")
    assert (moved.friendly_name, moved.ip_address, moved.cidr_prefix_length) == (
        "renamed",
        "10.5.0.0",
        24,
    )
    assert addresses(net.sid).update(cidr_prefix_length=16).cidr_prefix_length == 16
    both = addresses(net.sid).update(ip_address="10.6.0.0/15", cidr_prefix_length=15)
    assert (both.ip_address, both.cidr_prefix_length) == ("10.6.0.0", 15)

    assert [a.sid for a in addresses.list()] == [host.sid, net.sid, cidr.sid, zero.sid]
    body = http.get(f"{base}/IpAccessControlLists/{acl.sid}/IpAddresses.json").json()
    assert list(body) == [*LIST_ENVELOPE[:3], "ip_addresses", *LIST_ENVELOPE[3:]]
    assert addresses(host.sid).delete() is True
    expect_error(404, 20404, addresses(host.sid).fetch)
    expect_error(404, 20404, lambda: addresses(host.sid).update(friendly_name="x"))
    assert [a.sid for a in addresses.list(page_size=1)] == [net.sid, cidr.sid, zero.sid]


def test_addresses_page(sub_client: Client, subaccount: tuple[str, str]) -> None:
    sip = api(sub_client, subaccount[0]).sip
    acl = sip.ip_access_control_lists.create(friendly_name="many")
    addresses = sip.ip_access_control_lists(acl.sid).ip_addresses
    sids = [addresses.create(friendly_name=f"a{i}", ip_address=f"10.0.0.{i}").sid for i in range(9)]
    assert [a.sid for a in addresses.list(page_size=4)] == sids
    assert [a.sid for a in addresses.stream(page_size=2, limit=7)] == sids[:7]
    other = sip.ip_access_control_lists.create(friendly_name="empty")
    assert sip.ip_access_control_lists(other.sid).ip_addresses.list() == []


def test_a_list_holds_at_most_100_addresses(
    sub_client: Client, subaccount: tuple[str, str], http: httpx.Client, base: str
) -> None:
    sip = api(sub_client, subaccount[0]).sip
    acl = sip.ip_access_control_lists.create(friendly_name="full")
    addresses = sip.ip_access_control_lists(acl.sid).ip_addresses
    for i in range(100):
        addresses.create(friendly_name=f"a{i}", ip_address=f"10.{i}.0.1")
    error = expect_error(
        400, 20001, lambda: addresses.create(friendly_name="over", ip_address="10.200.0.1")
    )
    assert "at most 100" in error.msg
    stored = addresses.list(page_size=1000)
    assert len(stored) == 100 and "10.200.0.1" not in {a.ip_address for a in stored}
    # Deleting one makes room for one.
    addresses(stored[0].sid).delete()
    addresses.create(friendly_name="again", ip_address="10.201.0.1")
    expect_error(400, 20001, lambda: addresses.create(friendly_name="x", ip_address="10.1.1.1"))


# -- domain mappings ------------------------------------------------------------------------


def test_both_mapping_urls_show_one_set(
    sub_client: Client, subaccount: tuple[str, str], http: httpx.Client, base: str
) -> None:
    ac = subaccount[0]
    sip = api(sub_client, ac).sip
    domain = sip.domains.create(domain_name=unique_domain())
    assert domain.auth_type == ""
    first = sip.ip_access_control_lists.create(friendly_name="first")
    second = sip.ip_access_control_lists.create(friendly_name="second")
    mappings = sip.domains(domain.sid).ip_access_control_list_mappings
    legacy = sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings

    mapped = mappings.create(ip_access_control_list_sid=first.sid)
    assert (mapped.sid, mapped.domain_sid, mapped.account_sid) == (first.sid, domain.sid, ac)
    assert mapped.friendly_name == "first" and mapped.date_created is not None
    assert mapped.uri == f"{base}/Domains/{domain.sid}/IpAccessControlListMappings/{first.sid}.json"
    assert sip.domains(domain.sid).fetch().auth_type == "IP_ACL"
    via_legacy = legacy.create(ip_access_control_list_sid=second.sid)
    assert (via_legacy.sid, via_legacy.friendly_name) == (second.sid, "second")

    assert [m.sid for m in mappings.list()] == [first.sid, second.sid]
    assert [m.sid for m in legacy.list()] == [first.sid, second.sid]
    assert legacy(first.sid).fetch().friendly_name == "first"
    assert mappings(second.sid).fetch().domain_sid == domain.sid

    raw = http.get(f"{base}/Domains/{domain.sid}/IpAccessControlListMappings/{first.sid}.json")
    assert list(raw.json()) == MAPPING_FIELDS
    raw = http.get(f"{base}/Domains/{domain.sid}/Auth/Calls/IpAccessControlListMappings.json")
    assert list(raw.json()) == [*LIST_ENVELOPE[:3], "contents", *LIST_ENVELOPE[3:]]
    assert [list(m) for m in raw.json()["contents"]] == [AUTH_MAPPING_FIELDS] * 2
    raw = http.get(f"{base}/Domains/{domain.sid}/IpAccessControlListMappings.json")
    assert list(raw.json()) == [
        *LIST_ENVELOPE[:3],
        "ip_access_control_list_mappings",
        *LIST_ENVELOPE[3:],
    ]

    # Mapping a list twice, through either URL, is Twilio's 21231.
    expect_error(400, 21231, lambda: mappings.create(ip_access_control_list_sid=second.sid))
    expect_error(400, 21231, lambda: legacy.create(ip_access_control_list_sid=first.sid))

    # The name is the list's current one.
    sip.ip_access_control_lists(first.sid).update(friendly_name="renamed")
    assert mappings(first.sid).fetch().friendly_name == "renamed"
    assert legacy.list()[0].friendly_name == "renamed"

    assert legacy(first.sid).delete() is True
    expect_error(404, 20404, mappings(first.sid).fetch)
    expect_error(404, 20404, legacy(first.sid).delete)
    assert mappings(second.sid).delete() is True
    assert mappings.list() == [] and legacy.list() == []
    assert sip.domains(domain.sid).fetch().auth_type == ""
    # The lists themselves stay, and can be mapped again.
    assert len(sip.ip_access_control_lists.list()) == 2
    legacy.create(ip_access_control_list_sid=first.sid)
    assert [m.sid for m in mappings.list()] == [first.sid]


def test_mappings_page_at_both_urls(sub_client: Client, subaccount: tuple[str, str]) -> None:
    sip = api(sub_client, subaccount[0]).sip
    domain = sip.domains.create(domain_name=unique_domain())
    mappings = sip.domains(domain.sid).ip_access_control_list_mappings
    legacy = sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings
    sids = []
    for i in range(7):
        acl = sip.ip_access_control_lists.create(friendly_name=f"l{i}")
        (mappings if i % 2 else legacy).create(ip_access_control_list_sid=acl.sid)
        sids.append(acl.sid)
    assert [m.sid for m in mappings.list(page_size=3)] == sids
    assert [m.sid for m in legacy.list(page_size=2)] == sids
    assert [m.sid for m in mappings.stream(page_size=2, limit=3)] == sids[:3]
    assert [m.sid for m in legacy.stream(page_size=3, limit=5)] == sids[:5]


def test_mapping_errors(
    sub_client: Client, client: Client, subaccount: tuple[str, str], http: httpx.Client, base: str
) -> None:
    ac = subaccount[0]
    sip = api(sub_client, ac).sip
    domain = sip.domains.create(domain_name=unique_domain())
    acl = sip.ip_access_control_lists.create(friendly_name="mine")
    other_sid = client.api.v2010.accounts.create(friendly_name="other").sid
    foreign = api(client, other_sid).sip.ip_access_control_lists.create(friendly_name="theirs")
    foreign_domain = api(client, other_sid).sip.domains.create(domain_name=unique_domain())

    for tail in ("IpAccessControlListMappings", "Auth/Calls/IpAccessControlListMappings"):
        url = f"{base}/Domains/{domain.sid}/{tail}.json"
        response = http.post(url, data={})
        assert_twilio_error(
            response, 400, 20001, "Missing required parameter IpAccessControlListSid"
        )
        for value in ("AL123", "SD" + domain.sid[2:], foreign.sid, "AL" + "f" * 32):
            response = http.post(url, data={"IpAccessControlListSid": value})
            assert_twilio_error(response, 400, 20001, "IpAccessControlListSid")
        response = http.post(url, content=b"IpAccessControlListSid=%FF", headers=FORM)
        assert_twilio_error(response, 400, 20001, "UTF-8")
        response = http.post(
            url,
            content=f"IpAccessControlListSid={acl.sid}&IpAccessControlListSid={acl.sid}".encode(),
            headers=FORM,
        )
        assert_twilio_error(response, 400, 20001, "IpAccessControlListSid")
        for bad_domain in (foreign_domain.sid, "SD" + "f" * 32, "SD123"):
            bad = f"{base}/Domains/{bad_domain}/{tail}"
            for response in (
                http.post(f"{bad}.json", data={"IpAccessControlListSid": acl.sid}),
                http.get(f"{bad}.json"),
                http.get(f"{bad}/{acl.sid}.json"),
                http.delete(f"{bad}/{acl.sid}.json"),
            ):
                assert_twilio_error(response, 404, 20404, "was not found")
        for missing in (acl.sid, "AL" + "0" * 32, "AL123", domain.sid):
            for response in (
                http.get(f"{base}/Domains/{domain.sid}/{tail}/{missing}.json"),
                http.delete(f"{base}/Domains/{domain.sid}/{tail}/{missing}.json"),
            ):
                assert_twilio_error(response, 404, 20404)
        # Mappings have no update.
        response = http.post(f"{base}/Domains/{domain.sid}/{tail}/{acl.sid}.json")
        assert_twilio_error(response, 405, 20004, "does not support")

    legacy = sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings
    expect_error(400, 20001, lambda: legacy.create(ip_access_control_list_sid=foreign.sid))
    assert sip.domains(domain.sid).ip_access_control_list_mappings.list() == []
    assert sip.domains(domain.sid).fetch().auth_type == ""


# -- isolation and bad input ------------------------------------------------------------------


def test_another_subaccount_sees_nothing(
    server: Server, client: Client, sub_client: Client, subaccount: tuple[str, str]
) -> None:
    ac = subaccount[0]
    sip = api(sub_client, ac).sip
    acl = sip.ip_access_control_lists.create(friendly_name="private")
    address = sip.ip_access_control_lists(acl.sid).ip_addresses.create(
        friendly_name="pbx", ip_address="10.0.0.1"
    )
    domain = sip.domains.create(domain_name=unique_domain())
    sip.domains(domain.sid).ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )

    other = client.api.v2010.accounts.create(friendly_name="neighbour")
    intruder = Client(other.sid, other.auth_token, http_client=sub_client.http_client)
    for account in (ac, other.sid):  # through our path (not theirs) and through their own
        theirs = api(intruder, account).sip
        lists = theirs.ip_access_control_lists
        expect_error(404, 20404, lists(acl.sid).fetch)
        expect_error(404, 20404, partial(lists(acl.sid).update, friendly_name="mine now"))
        expect_error(404, 20404, lists(acl.sid).delete)
        expect_page_error(404, 20404, lists(acl.sid).ip_addresses.list)
        expect_error(404, 20404, lists(acl.sid).ip_addresses(address.sid).fetch)
        expect_error(404, 20404, lists(acl.sid).ip_addresses(address.sid).delete)
        expect_error(
            404,
            20404,
            partial(lists(acl.sid).ip_addresses.create, friendly_name="x", ip_address="10.0.0.2"),
        )
        mappings = theirs.domains(domain.sid).ip_access_control_list_mappings
        expect_page_error(404, 20404, mappings.list)
        expect_error(404, 20404, mappings(acl.sid).fetch)
        expect_error(404, 20404, mappings(acl.sid).delete)
        expect_page_error(
            404, 20404, theirs.domains(domain.sid).auth.calls.ip_access_control_list_mappings.list
        )
    assert api(intruder, other.sid).sip.ip_access_control_lists.list() == []
    # The parent account may manage its subaccount's lists.
    assert api(client, ac).sip.ip_access_control_lists(acl.sid).fetch().friendly_name == "private"
    # And everything of ours is still there.
    assert sip.ip_access_control_lists(acl.sid).ip_addresses(address.sid).fetch().sid == address.sid
    assert [m.sid for m in sip.domains(domain.sid).ip_access_control_list_mappings.list()] == [
        acl.sid
    ]


LIST_BAD_BODIES: list[tuple[bytes, str]] = [
    (b"", "Missing required parameter FriendlyName in the post body"),
    (b"FriendlyName=", "Missing required parameter FriendlyName"),
    (b"FriendlyName=%20%20", "Invalid FriendlyName"),
    (b"FriendlyName=" + b"x" * 256, "Invalid FriendlyName: must be at most 255 characters"),
    (b"FriendlyName=a%0Ab", "Invalid FriendlyName"),
    (b"FriendlyName=a&FriendlyName=b", "FriendlyName"),
    (b"FriendlyName=%FF", "UTF-8"),
    (b"FriendlyName=\xff\xfe", "UTF-8"),
]


@pytest.mark.parametrize(("body", "words"), LIST_BAD_BODIES)
def test_bad_list_input_changes_nothing(
    http: httpx.Client, base: str, body: bytes, words: str
) -> None:
    existing = http.post(f"{base}/IpAccessControlLists.json", data={"FriendlyName": "keep"})
    assert existing.status_code == 201
    sid = existing.json()["sid"]
    before = snapshot(http, base)
    response = http.post(f"{base}/IpAccessControlLists.json", content=body, headers=FORM)
    assert_twilio_error(response, 400, 20001, words)
    response = http.post(f"{base}/IpAccessControlLists/{sid}.json", content=body, headers=FORM)
    assert_twilio_error(response, 400, 20001, words)
    assert snapshot(http, base) == before


ADDRESS_BAD_BODIES: list[tuple[dict[str, str] | bytes, str]] = [
    ({"IpAddress": "10.0.0.1"}, "Missing required parameter FriendlyName"),
    ({"FriendlyName": "x"}, "Missing required parameter IpAddress"),
    ({"FriendlyName": "x", "IpAddress": ""}, "Missing required parameter IpAddress"),
    ({"FriendlyName": "x" * 256, "IpAddress": "10.0.0.1"}, "Invalid FriendlyName"),
    ({"FriendlyName": "x", "IpAddress": "10.0.0"}, "Invalid IpAddress"),
    ({"FriendlyName": "x", "IpAddress": "300.0.0.1"}, "Invalid IpAddress"),
    ({"FriendlyName": "x", "IpAddress": "2001:db8::1"}, "Invalid IpAddress"),
    ({"FriendlyName": "x", "IpAddress": "sip.example.com"}, "Invalid IpAddress"),
    ({"FriendlyName": "x", "IpAddress": "10.0.0.0/33"}, "Invalid IpAddress"),
    ({"FriendlyName": "x", "IpAddress": "10.0.0.0/0"}, "Invalid IpAddress"),
    (
        {"FriendlyName": "x", "IpAddress": "10.0.0.1", "CidrPrefixLength": "33"},
        "Invalid CidrPrefixLength: must be an integer from 1 to 32",
    ),
    (
        {"FriendlyName": "x", "IpAddress": "10.0.0.1", "CidrPrefixLength": "-1"},
        "Invalid CidrPrefixLength",
    ),
    (
        {"FriendlyName": "x", "IpAddress": "10.0.0.1", "CidrPrefixLength": "abc"},
        "Invalid CidrPrefixLength",
    ),
    (
        {"FriendlyName": "x", "IpAddress": "10.0.0.1", "CidrPrefixLength": "24.0"},
        "Invalid CidrPrefixLength",
    ),
    (
        {"FriendlyName": "x", "IpAddress": "10.0.0.0/24", "CidrPrefixLength": "16"},
        "Invalid CidrPrefixLength",
    ),
    (b"FriendlyName=x&IpAddress=10.0.0.1&IpAddress=10.0.0.2", "IpAddress"),
    (b"FriendlyName=x&IpAddress=10.0.0.1&CidrPrefixLength=8&CidrPrefixLength=8", "Cidr"),
    (b"FriendlyName=%C3%28&IpAddress=10.0.0.1", "UTF-8"),
    (b"FriendlyName=\xc3\x28&IpAddress=10.0.0.1", "UTF-8"),
]


@pytest.mark.parametrize(("body", "words"), ADDRESS_BAD_BODIES)
def test_bad_address_input_changes_nothing(
    http: httpx.Client, base: str, body: dict[str, str] | bytes, words: str
) -> None:
    acl = http.post(f"{base}/IpAccessControlLists.json", data={"FriendlyName": "l"}).json()
    url = f"{base}/IpAccessControlLists/{acl['sid']}/IpAddresses"
    existing = http.post(f"{url}.json", data={"FriendlyName": "keep", "IpAddress": "10.9.9.9"})
    assert existing.status_code == 201
    before = snapshot(http, base)
    content = body if isinstance(body, bytes) else httpx.QueryParams(body).__str__().encode()
    response = http.post(f"{url}.json", content=content, headers=FORM)
    assert_twilio_error(response, 400, 20001, words)
    if "Missing" not in words:  # updating needs no field, but every given one must be valid
        response = http.post(f"{url}/{existing.json()['sid']}.json", content=content, headers=FORM)
        assert_twilio_error(response, 400, 20001, words)
    assert snapshot(http, base) == before


def test_malformed_path_sids_are_404(http: httpx.Client, base: str) -> None:
    acl = http.post(f"{base}/IpAccessControlLists.json", data={"FriendlyName": "l"}).json()["sid"]
    for path in (
        f"{base}/IpAccessControlLists/AL123.json",
        f"{base}/IpAccessControlLists/{'SD' + acl[2:]}.json",
        f"{base}/IpAccessControlLists/AL123/IpAddresses.json",
        f"{base}/IpAccessControlLists/{acl}/IpAddresses/IP123.json",
        f"{base}/IpAccessControlLists/{acl}/IpAddresses/{'AL' + acl[2:]}.json",
    ):
        assert_twilio_error(http.get(path), 404, 20404, path)
        if not path.endswith("IpAddresses.json"):
            assert_twilio_error(http.delete(path), 404, 20404, path)
            assert_twilio_error(http.post(path, data={"FriendlyName": "x"}), 404, 20404, path)
    assert_twilio_error(http.delete(f"{base}/IpAccessControlLists.json"), 405, 20004)


# -- lifecycles across resources ---------------------------------------------------------------


def test_deleting_a_list_takes_its_addresses_and_mappings(
    sub_client: Client, subaccount: tuple[str, str]
) -> None:
    sip = api(sub_client, subaccount[0]).sip
    domain = sip.domains.create(domain_name=unique_domain())
    acl = sip.ip_access_control_lists.create(friendly_name="doomed")
    kept = sip.ip_access_control_lists.create(friendly_name="kept")
    address = sip.ip_access_control_lists(acl.sid).ip_addresses.create(
        friendly_name="pbx", ip_address="10.0.0.1"
    )
    sip.domains(domain.sid).ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=kept.sid
    )
    sip.ip_access_control_lists(acl.sid).delete()
    expect_error(404, 20404, sip.ip_access_control_lists(acl.sid).ip_addresses(address.sid).fetch)
    expect_page_error(404, 20404, sip.ip_access_control_lists(acl.sid).ip_addresses.list)
    mappings = sip.domains(domain.sid).ip_access_control_list_mappings
    assert [m.sid for m in mappings.list()] == [kept.sid]
    expect_error(404, 20404, mappings(acl.sid).fetch)
    assert sip.domains(domain.sid).fetch().auth_type == "IP_ACL"
    sip.ip_access_control_lists(kept.sid).delete()
    assert sip.domains(domain.sid).fetch().auth_type == ""
    # Deleting a domain removes its mappings, not the lists.
    again = sip.ip_access_control_lists.create(friendly_name="again")
    mappings.create(ip_access_control_list_sid=again.sid)
    sip.domains(domain.sid).delete()
    assert sip.ip_access_control_lists(again.sid).fetch().sid == again.sid
    expect_page_error(404, 20404, mappings.list)


def test_full_provisioning_flow(sub_client: Client, subaccount: tuple[str, str]) -> None:
    ac = subaccount[0]
    sip = api(sub_client, ac).sip
    voice = sub_client.voice.v1
    octet = uuid.uuid4().int % 250 + 1
    network = f"100.{octet}.{uuid.uuid4().int % 250}.0"

    domain = sip.domains.create(domain_name=unique_domain(), friendly_name="office")
    office = sip.ip_access_control_lists.create(friendly_name="office")
    carriers = sip.ip_access_control_lists.create(friendly_name="carriers")
    office_addresses = sip.ip_access_control_lists(office.sid).ip_addresses
    pbx = office_addresses.create(friendly_name="pbx", ip_address=f"{network[:-1]}10")
    lan = office_addresses.create(friendly_name="lan", ip_address=f"{network}/24")
    carrier = sip.ip_access_control_lists(carriers.sid).ip_addresses.create(
        friendly_name="carrier", ip_address="198.51.100.0", cidr_prefix_length=28
    )
    mapping = sip.domains(domain.sid).ip_access_control_list_mappings.create(
        ip_access_control_list_sid=office.sid
    )
    legacy = sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=carriers.sid
    )
    record = voice.ip_records.create(ip_address=network, cidr_prefix_length=24, friendly_name="lan")
    source = voice.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)

    assert sip.domains(domain.sid).fetch().auth_type == "IP_ACL"
    assert [m.sid for m in sip.domains(domain.sid).ip_access_control_list_mappings.list()] == [
        mapping.sid,
        legacy.sid,
    ]
    assert voice.source_ip_mappings(source.sid).fetch().sip_domain_sid == domain.sid
    assert {a.sid for a in office_addresses.list()} == {pbx.sid, lan.sid}

    # Teardown, in reverse.
    voice.source_ip_mappings(source.sid).delete()
    voice.ip_records(record.sid).delete()
    sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings(legacy.sid).delete()
    sip.domains(domain.sid).ip_access_control_list_mappings(mapping.sid).delete()
    sip.ip_access_control_lists(carriers.sid).ip_addresses(carrier.sid).delete()
    office_addresses(lan.sid).delete()
    office_addresses(pbx.sid).delete()
    assert office_addresses.list() == []
    sip.ip_access_control_lists(carriers.sid).delete()
    sip.ip_access_control_lists(office.sid).delete()
    sip.domains(domain.sid).delete()

    assert voice.source_ip_mappings.list() == []
    assert voice.ip_records.list() == []
    assert sip.ip_access_control_lists.list() == []
    assert sip.domains.list() == []
    expect_error(404, 20404, sip.domains(domain.sid).fetch)
    expect_error(404, 20404, sip.ip_access_control_lists(office.sid).fetch)
    expect_error(404, 20404, office_addresses(pbx.sid).fetch)
