"""The official SDK against a real server: API 2010 SIP domains."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from .. import oai
from ..conftest import Server, sdk_client

DOMAIN_FIELDS = [
    "account_sid",
    "api_version",
    "auth_type",
    "date_created",
    "date_updated",
    "domain_name",
    "friendly_name",
    "sip_registration",
    "sid",
    "subresource_uris",
    "uri",
    "voice_fallback_method",
    "voice_fallback_url",
    "voice_method",
    "voice_status_callback_method",
    "voice_status_callback_url",
    "voice_url",
    "emergency_calling_enabled",
    "secure",
    "byoc_trunk_sid",
    "emergency_caller_sid",
]
ENVELOPE_FIELDS = {
    "first_page_uri",
    "end",
    "previous_page_uri",
    "domains",
    "uri",
    "page_size",
    "start",
    "next_page_uri",
    "page",
}

ALL_FIELDS: dict[str, Any] = {
    "friendly_name": "Scranton Office",
    "voice_url": "https://example.com/voice?x=1",
    "voice_method": "GET",
    "voice_fallback_url": "https://example.com/fallback",
    "voice_fallback_method": "GET",
    "voice_status_callback_url": "http://example.com/status",
    "voice_status_callback_method": "GET",
    "sip_registration": True,
    "emergency_calling_enabled": True,
    "secure": True,
    "byoc_trunk_sid": "BY" + "a" * 32,
    "emergency_caller_sid": "PN" + "b" * 32,
}


def unique_name(prefix: str = "d") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}.sip.twilio.com"


def error_of(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


def test_create_with_defaults(sub_client: Client, server: Server) -> None:
    name = unique_name()
    domain = sub_client.api.v2010.account.sip.domains.create(domain_name=name)
    account = sub_client.account_sid
    assert domain.sid.startswith("SD") and len(domain.sid) == 34
    assert (domain.account_sid, domain.domain_name, domain.api_version) == (
        account,
        name,
        "2010-04-01",
    )
    assert domain.auth_type == ""
    assert domain.friendly_name is None and domain.voice_url is None
    assert (domain.voice_method, domain.voice_fallback_method) == ("POST", "POST")
    assert domain.voice_status_callback_method == "POST"
    assert (domain.sip_registration, domain.emergency_calling_enabled, domain.secure) == (
        False,
        False,
        False,
    )
    assert domain.byoc_trunk_sid is None and domain.emergency_caller_sid is None
    assert isinstance(domain.date_created, datetime)
    assert abs((datetime.now(UTC) - domain.date_created).total_seconds()) < 60
    uri = f"/2010-04-01/Accounts/{account}/SIP/Domains/{domain.sid}"
    assert domain.uri == f"{uri}.json"
    assert domain.subresource_uris["ip_access_control_list_mappings"] == (
        f"{uri}/IpAccessControlListMappings.json"
    )

    with server.http(sub_client.username, sub_client.password) as http:
        body = http.get(f"{uri}.json").json()
    assert list(body) == DOMAIN_FIELDS
    # RFC 2822, as Twilio's own examples: "Mon, 20 Jul 2015 17:27:10 +0000".
    assert body["date_created"].endswith(" +0000")
    assert parsedate_to_datetime(body["date_created"]) == domain.date_created


def test_create_with_every_field(sub_client: Client) -> None:
    name = unique_name()
    domains = sub_client.api.v2010.account.sip.domains
    created = domains.create(domain_name=name, **ALL_FIELDS)
    fetched = domains(created.sid).fetch()
    for instance in (created, fetched):
        for field, value in ALL_FIELDS.items():
            assert getattr(instance, field) == value, field


def test_update_every_field(sub_client: Client) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    created = domains.create(domain_name=unique_name())
    new_name = unique_name("renamed")
    updated = domains(created.sid).update(domain_name=new_name, **ALL_FIELDS)
    assert updated.domain_name == new_name
    assert updated.date_updated >= created.date_updated
    assert updated.date_created == created.date_created
    fetched = domains(created.sid).fetch()
    for field, value in {**ALL_FIELDS, "domain_name": new_name}.items():
        assert getattr(updated, field) == value, field
        assert getattr(fetched, field) == value, field
    # Booleans go back to false; other fields are kept.
    off = domains(created.sid).update(sip_registration=False, secure=False)
    assert (off.sip_registration, off.secure, off.emergency_calling_enabled) == (False, False, True)
    assert off.voice_url == ALL_FIELDS["voice_url"]


def test_empty_string_clears_optional_fields(sub_client: Client) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    created = domains.create(domain_name=unique_name(), **ALL_FIELDS)
    cleared = domains(created.sid).update(
        voice_url="",
        voice_fallback_url="",
        voice_status_callback_url="",
        friendly_name="",
        byoc_trunk_sid="",
        emergency_caller_sid="",
    )
    for field in (
        "voice_url",
        "voice_fallback_url",
        "voice_status_callback_url",
        "friendly_name",
        "byoc_trunk_sid",
        "emergency_caller_sid",
    ):
        assert getattr(cleared, field) is None, field
    assert cleared.voice_method == "GET"  # untouched


def test_delete(sub_client: Client) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    domain = domains.create(domain_name=unique_name())
    assert domains(domain.sid).delete() is True
    for call in (domains(domain.sid).fetch, domains(domain.sid).delete):
        error = error_of(call)
        assert (error.status, error.code) == (404, 20404)
    assert domains.list() == []
    # The name is free again.
    assert domains.create(domain_name=domain.domain_name).domain_name == domain.domain_name


def test_list_envelope_and_paging(sub_client: Client, server: Server) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    made = [domains.create(domain_name=unique_name()).sid for _ in range(5)]
    assert [d.sid for d in domains.stream(page_size=2)] == made
    assert [d.sid for d in domains.list(limit=3)] == made[:3]

    uri = f"/2010-04-01/Accounts/{sub_client.account_sid}/SIP/Domains.json"
    with server.http(sub_client.username, sub_client.password) as http:
        body = http.get(uri, params={"PageSize": 2}).json()
        assert set(body) == ENVELOPE_FIELDS
        assert [d["sid"] for d in body["domains"]] == made[:2]
        assert (body["page"], body["page_size"], body["start"], body["end"]) == (0, 2, 0, 1)
        assert body["first_page_uri"] == f"{uri}?PageSize=2&Page=0"
        assert body["uri"] == f"{uri}?PageSize=2&Page=0"
        assert body["previous_page_uri"] is None
        assert body["next_page_uri"] == f"{uri}?PageSize=2&Page=1&PageToken=PA{made[1]}"

        body = http.get(body["next_page_uri"]).json()
        assert [d["sid"] for d in body["domains"]] == made[2:4]
        assert (body["page"], body["start"], body["end"]) == (1, 2, 3)
        assert body["previous_page_uri"] == f"{uri}?PageSize=2&Page=0&PageToken=PB{made[2]}"

        last = http.get(body["next_page_uri"]).json()
        assert [d["sid"] for d in last["domains"]] == made[4:]
        assert (last["start"], last["end"], last["next_page_uri"]) == (4, 4, None)

        empty = http.get(uri, params={"PageSize": 2, "Page": 7}).json()
        assert (empty["domains"], empty["start"], empty["end"]) == ([], 14, 0)
        oai.validate("GET", uri, 200, empty)


def test_page_backwards_with_the_sdk(sub_client: Client) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    made = [domains.create(domain_name=unique_name()).sid for _ in range(4)]
    last = domains.page(page_size=3).next_page()
    assert [d.sid for d in last] == made[3:]
    assert [d.sid for d in last.previous_page()] == made[:3]


def test_names_are_unique_system_wide(sub_client: Client, client: Client, server: Server) -> None:
    name = unique_name()
    sub_client.api.v2010.account.sip.domains.create(domain_name=name)
    sibling = client.api.v2010.accounts.create(friendly_name="sibling")
    sibling_client = sdk_client(server, sibling.sid, sibling.auth_token)
    for who, taken in [
        (sub_client, name),
        (sibling_client, name),
        (sibling_client, name.upper()),
    ]:
        error = error_of(
            lambda w=who, t=taken: w.api.v2010.account.sip.domains.create(domain_name=t)
        )
        assert (error.status, error.code) == (400, 21232)
    assert sibling_client.api.v2010.account.sip.domains.list() == []
    # Renaming onto a taken name is refused too.
    other = sibling_client.api.v2010.account.sip.domains.create(domain_name=unique_name())
    error = error_of(
        lambda: sibling_client.api.v2010.account.sip.domains(other.sid).update(domain_name=name)
    )
    assert error.code == 21232
    assert sibling_client.api.v2010.account.sip.domains(other.sid).fetch().domain_name != name


@pytest.mark.parametrize(
    "name",
    [
        "acme.sip.twilio.org",
        "acme",
        "sip.twilio.com",
        "ac_me.sip.twilio.com",
        "-acme.sip.twilio.com",
        "ac me.sip.twilio.com",
        "acmé.sip.twilio.com",
        "a" * 64 + ".sip.twilio.com",
    ],
)
def test_invalid_names(sub_client: Client, name: str) -> None:
    error = error_of(lambda: sub_client.api.v2010.account.sip.domains.create(domain_name=name))
    assert (error.status, error.code) == (400, 21232)
    assert "DomainName" in error.msg
    assert sub_client.api.v2010.account.sip.domains.list() == []


def test_missing_name(sub_client: Client) -> None:
    error = error_of(lambda: sub_client.api.v2010.account.sip.domains.create(domain_name=""))
    assert (error.status, error.code) == (400, 20001)
    assert error.msg.endswith("Missing required parameter DomainName in the post body")


@pytest.mark.parametrize(
    ("field", "value", "wire"),
    [
        ("friendly_name", "x" * 65, "FriendlyName"),
        ("voice_url", "not a url", "VoiceUrl"),
        ("voice_fallback_url", "ftp://example.com/", "VoiceFallbackUrl"),
        ("voice_status_callback_url", "https://", "VoiceStatusCallbackUrl"),
        ("voice_method", "PUT", "VoiceMethod"),
        ("voice_fallback_method", "HEAD", "VoiceFallbackMethod"),
        ("voice_status_callback_method", "PATCH", "VoiceStatusCallbackMethod"),
        ("byoc_trunk_sid", "BY123", "ByocTrunkSid"),
        ("emergency_caller_sid", "BY" + "0" * 32, "EmergencyCallerSid"),
    ],
)
def test_invalid_fields(sub_client: Client, field: str, value: str, wire: str) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    error = error_of(lambda: domains.create(domain_name=unique_name(), **{field: value}))
    assert (error.status, error.code) == (400, 20001)
    assert f"Invalid {wire}:" in error.msg
    domain = domains.create(domain_name=unique_name())
    error = error_of(lambda: domains(domain.sid).update(**{field: value}))
    assert f"Invalid {wire}:" in error.msg
    assert [d.sid for d in domains.list()] == [domain.sid]
    assert domains(domain.sid).fetch().date_updated == domain.date_updated


def test_subaccounts_cannot_reach_other_accounts_domains(
    sub_client: Client, client: Client, server: Server
) -> None:
    parents = client.api.v2010.account.sip.domains.create(domain_name=unique_name("parent"))
    sibling = client.api.v2010.accounts.create(friendly_name="sibling")
    siblings = sdk_client(server, sibling.sid, sibling.auth_token)
    theirs = siblings.api.v2010.account.sip.domains.create(domain_name=unique_name())
    for account_sid, domain_sid in [
        (client.account_sid, parents.sid),
        (sibling.sid, theirs.sid),
    ]:
        path = sub_client.api.v2010.accounts(account_sid).sip.domains
        with pytest.raises(TwilioException) as info:  # a page fetch: no TwilioRestException
            path.list()
        assert info.value.args[1].status_code == 404
        for call in (
            lambda p=path: p.create(domain_name=unique_name()),
            path(domain_sid).fetch,
            lambda p=path, d=domain_sid: p(d).update(friendly_name="x"),
            path(domain_sid).delete,
        ):
            error = error_of(call)
            assert (error.status, error.code) == (404, 20404)
        # Nor through their own path, naming the other's domain SID.
        own = sub_client.api.v2010.account.sip.domains(domain_sid)
        assert error_of(own.fetch).status == 404
        assert error_of(own.delete).status == 404
    assert siblings.api.v2010.account.sip.domains(theirs.sid).fetch().friendly_name is None
    assert client.api.v2010.account.sip.domains(parents.sid).fetch().sid == parents.sid
    client.api.v2010.account.sip.domains(parents.sid).delete()


def test_parent_acts_on_subaccount_domains(
    sub_client: Client, client: Client, subaccount: tuple[str, str]
) -> None:
    sub_sid = subaccount[0]
    on_sub = client.api.v2010.accounts(sub_sid).sip.domains
    made = on_sub.create(domain_name=unique_name(), friendly_name="by parent")
    assert made.account_sid == sub_sid
    assert [d.sid for d in sub_client.api.v2010.account.sip.domains.list()] == [made.sid]
    assert on_sub(made.sid).update(friendly_name="changed").friendly_name == "changed"
    assert sub_client.api.v2010.account.sip.domains(made.sid).fetch().friendly_name == "changed"
    # The domain is the subaccount's: usable in its Voice v1 mappings, not the parent's.
    record = sub_client.voice.v1.ip_records.create(ip_address="10.30.0.1")
    sub_client.voice.v1.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=made.sid)
    parent_record = client.voice.v1.ip_records.create(ip_address="10.30.0.2")
    try:
        error = error_of(
            lambda: client.voice.v1.source_ip_mappings.create(
                ip_record_sid=parent_record.sid, sip_domain_sid=made.sid
            )
        )
        assert (error.status, error.code) == (400, 20001)
    finally:
        client.voice.v1.ip_records(parent_record.sid).delete()
    on_sub(made.sid).delete()
    assert sub_client.api.v2010.account.sip.domains.list() == []
    assert sub_client.voice.v1.source_ip_mappings.list() == []


def test_sid_hex_is_case_insensitive(sub_client: Client) -> None:
    domains = sub_client.api.v2010.account.sip.domains
    domain = domains.create(domain_name=unique_name())
    upper = "SD" + domain.sid[2:].upper()
    assert domains(upper).fetch().sid == domain.sid
    account_upper = "AC" + sub_client.account_sid[2:].upper()
    assert sub_client.api.v2010.accounts(account_upper).sip.domains(domain.sid).fetch().sid == (
        domain.sid
    )
    assert error_of(domains("sd" + domain.sid[2:]).fetch).status == 404
    domains(upper).delete()
    assert domains.list() == []
