"""SIP domain rules, in process: names, fields, uniqueness, cascades."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipmap.core.errors import (
    DomainNameUnavailable,
    InvalidParameter,
    MissingParameter,
    NotFound,
    ServiceError,
)
from sipmap.core.events import (
    AclMappingDeleted,
    DomainDeleted,
    DomainSaved,
    MappingDeleted,
)
from sipmap.core.models import AclMapping, IpAccessControlList, SipDomain
from sipmap.core.paging import PageRequest
from sipmap.service.domains import DomainView

from .harness import A, B, Harness, opened


class World(Harness):
    def create(self, account: str = A, **changes: Any) -> DomainView:
        return self.run(self.domains.create(account, changes))

    def update(self, sid: str, account: str = A, **changes: Any) -> DomainView:
        return self.run(self.domains.update(account, sid, changes))

    def stored(self, account: str = A) -> list[SipDomain]:
        return [v.domain for v in self.run(self.domains.list(account, PageRequest(1000))).items]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with opened(World, tmp_path / "domains.db") as w:
        yield w


def test_create_with_defaults(world: World) -> None:
    view = world.create(domain_name="Acme.sip.twilio.com")
    d = view.domain
    assert view.ip_acl_mapped is False
    assert d.sid == "SD" + "0" * 31 + "1"
    assert (d.account_sid, d.domain_name, d.friendly_name) == (A, "acme.sip.twilio.com", None)
    assert (d.voice_url, d.voice_fallback_url, d.voice_status_callback_url) == (None, None, None)
    assert (d.voice_method, d.voice_fallback_method, d.voice_status_callback_method) == (
        "POST",
        "POST",
        "POST",
    )
    assert (d.sip_registration, d.emergency_calling_enabled, d.secure) == (False, False, False)
    assert (d.byoc_trunk_sid, d.emergency_caller_sid) == (None, None)
    assert d.date_created == d.date_updated == world.clock()
    assert world.published.events == [DomainSaved(d)]
    assert world.stored() == [d]


def test_create_with_every_field(world: World) -> None:
    fields = {
        "domain_name": "full.sip.twilio.com",
        "friendly_name": "Full",
        "voice_url": "https://example.com/voice",
        "voice_method": "get",
        "voice_fallback_url": "https://example.com/fallback",
        "voice_fallback_method": "GET",
        "voice_status_callback_url": "http://example.com/status",
        "voice_status_callback_method": "post",
        "sip_registration": True,
        "emergency_calling_enabled": True,
        "secure": True,
        "byoc_trunk_sid": "BY" + "A" * 32,
        "emergency_caller_sid": "PN" + "b" * 32,
    }
    d = world.create(**fields).domain
    assert d.voice_method == d.voice_fallback_method == "GET"
    assert d.voice_status_callback_method == "POST"
    assert (d.sip_registration, d.emergency_calling_enabled, d.secure) == (True, True, True)
    assert d.byoc_trunk_sid == "BY" + "a" * 32  # canonical lowercase hex
    assert d.voice_status_callback_url == "http://example.com/status"
    assert world.run(world.domains.get(A, d.sid)).domain == d


@pytest.mark.parametrize("changes", [{}, {"domain_name": ""}, {"friendly_name": "x"}])
def test_create_requires_a_name(world: World, changes: dict[str, Any]) -> None:
    with pytest.raises(MissingParameter) as info:
        world.create(**changes)
    assert info.value.field == "domain_name"
    assert world.stored() == []


@pytest.mark.parametrize(
    "name",
    [
        "acme",
        "acme.sip.twilio.org",
        "ac_me.sip.twilio.com",
        "-x.sip.twilio.com",
        "é.sip.twilio.com",
    ],
)
def test_invalid_names_are_21232(world: World, name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        world.create(domain_name=name)
    assert (info.value.status, info.value.code, info.value.field) == (400, 21232, "domain_name")
    assert world.stored() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("friendly_name", "x" * 65),
        ("friendly_name", "tab\tok but nul\x00 not"),
        ("voice_url", "not a url"),
        ("voice_fallback_url", "ftp://example.com"),
        ("voice_status_callback_url", "https://"),
        ("voice_method", "PUT"),
        ("voice_fallback_method", ""),
        ("voice_status_callback_method", "DELETE"),
        ("sip_registration", "true"),  # booleans arrive parsed; a string is a bug upstream
        ("secure", None),
        ("byoc_trunk_sid", "BY123"),
        ("byoc_trunk_sid", "PN" + "0" * 32),
        ("emergency_caller_sid", "BY" + "0" * 32),
    ],
)
def test_invalid_fields(world: World, field: str, value: Any) -> None:
    with pytest.raises(InvalidParameter) as info:
        world.create(domain_name="ok.sip.twilio.com", **{field: value})
    assert (info.value.field, info.value.code) == (field, 20001)
    made = world.create(domain_name="ok.sip.twilio.com")
    with pytest.raises(InvalidParameter):
        world.update(made.domain.sid, **{field: value})
    assert world.stored() == [made.domain]


def test_unknown_fields_are_ignored(world: World) -> None:
    d = world.create(domain_name="x.sip.twilio.com", account_sid=B, sid="SD" + "f" * 32).domain
    assert (d.account_sid, d.sid) == (A, "SD" + "0" * 31 + "1")


def test_names_are_unique_system_wide(world: World) -> None:
    world.create(domain_name="taken.sip.twilio.com")
    for account, name in [
        (A, "taken.sip.twilio.com"),
        (B, "taken.sip.twilio.com"),
        (B, "TAKEN.Sip.Twilio.Com"),
    ]:
        with pytest.raises(DomainNameUnavailable) as info:
            world.create(account, domain_name=name)
        assert (info.value.status, info.value.code) == (400, 21232)
    assert world.stored(B) == []
    assert len(world.stored(A)) == 1


def test_update_every_field(world: World) -> None:
    made = world.create(domain_name="old.sip.twilio.com", voice_url="https://a.example/v").domain
    world.clock.advance(60)
    world.published.events.clear()
    view = world.update(
        made.sid,
        domain_name="new.sip.twilio.com",
        friendly_name="renamed",
        voice_url="https://b.example/v",
        voice_method="GET",
        voice_fallback_url="https://b.example/f",
        voice_fallback_method="GET",
        voice_status_callback_url="https://b.example/s",
        voice_status_callback_method="GET",
        sip_registration=True,
        emergency_calling_enabled=True,
        secure=True,
        byoc_trunk_sid="BY" + "1" * 32,
        emergency_caller_sid="PN" + "2" * 32,
    )
    d = view.domain
    assert d.domain_name == "new.sip.twilio.com" and d.friendly_name == "renamed"
    assert (d.voice_url, d.voice_method) == ("https://b.example/v", "GET")
    assert (d.sip_registration, d.emergency_calling_enabled, d.secure) == (True, True, True)
    assert d.date_created == made.date_created and d.date_updated == world.clock()
    assert world.published.events == [DomainSaved(d)]
    assert world.stored() == [d]
    # The old name is free again.
    world.create(B, domain_name="old.sip.twilio.com")


def test_update_keeps_what_is_not_given(world: World) -> None:
    made = world.create(
        domain_name="keep.sip.twilio.com", voice_url="https://a.example/v", secure=True
    ).domain
    d = world.update(made.sid, friendly_name="only this").domain
    assert (d.voice_url, d.secure, d.domain_name) == ("https://a.example/v", True, made.domain_name)


def test_empty_string_clears(world: World) -> None:
    made = world.create(
        domain_name="clear.sip.twilio.com",
        friendly_name="name",
        voice_url="https://a.example/v",
        voice_fallback_url="https://a.example/f",
        voice_status_callback_url="https://a.example/s",
        byoc_trunk_sid="BY" + "1" * 32,
        emergency_caller_sid="PN" + "2" * 32,
    ).domain
    fields = (
        "friendly_name",
        "voice_url",
        "voice_fallback_url",
        "voice_status_callback_url",
        "byoc_trunk_sid",
        "emergency_caller_sid",
    )
    d = world.update(made.sid, **dict.fromkeys(fields, "")).domain
    assert all(getattr(d, f) is None for f in fields)


def test_update_name_rules(world: World) -> None:
    mine = world.create(domain_name="mine.sip.twilio.com").domain
    world.create(B, domain_name="theirs.sip.twilio.com")
    with pytest.raises(DomainNameUnavailable):
        world.update(mine.sid, domain_name="theirs.sip.twilio.com")
    with pytest.raises(InvalidParameter) as info:
        world.update(mine.sid, domain_name="")
    assert info.value.code == 21232
    # Its own name, in another case, is not a conflict with itself.
    assert world.update(mine.sid, domain_name="MINE.sip.twilio.com").domain.domain_name == (
        "mine.sip.twilio.com"
    )


def test_other_accounts_domains_are_invisible(world: World) -> None:
    theirs = world.create(B, domain_name="b.sip.twilio.com").domain
    for call in (
        lambda: world.domains.get(A, theirs.sid),
        lambda: world.domains.update(A, theirs.sid, {"friendly_name": "x"}),
        lambda: world.domains.delete(A, theirs.sid),
    ):
        with pytest.raises(NotFound):
            world.run(call())
    assert world.stored(B) == [theirs]


@pytest.mark.parametrize("sid", ["SD" + "f" * 32, "sd" + "0" * 31 + "1", "SD1", "", "../x"])
def test_unknown_or_malformed_sids(world: World, sid: str) -> None:
    world.create(domain_name="x.sip.twilio.com")
    with pytest.raises(NotFound):
        world.run(world.domains.get(A, sid))


def test_uppercase_hex_finds_the_domain(world: World) -> None:
    d = world.create(domain_name="x.sip.twilio.com").domain
    assert world.run(world.domains.get(A, "SD" + d.sid[2:].upper())).domain == d


def test_auth_type_follows_acl_mappings(world: World) -> None:
    d = world.create(domain_name="x.sip.twilio.com").domain
    now = world.clock()
    acl = IpAccessControlList("AL" + "1" * 32, A, "office", now, now)

    def map_acl(tx: Any) -> None:
        tx.insert(acl)
        tx.insert(AclMapping(acl.sid, A, d.sid, now, now))

    world.run(world.store.write(map_acl))
    assert world.run(world.domains.get(A, d.sid)).ip_acl_mapped is True
    assert world.run(world.domains.list(A, PageRequest())).items[0].ip_acl_mapped is True


def test_delete_cascades(world: World) -> None:
    d = world.create(domain_name="gone.sip.twilio.com").domain
    kept = world.create(domain_name="kept.sip.twilio.com").domain
    now = world.clock()
    acl = IpAccessControlList("AL" + "1" * 32, A, "office", now, now)
    acl_mapping = AclMapping(acl.sid, A, d.sid, now, now)

    def map_acl(tx: Any) -> None:
        tx.insert(acl)
        tx.insert(acl_mapping)
        tx.insert(AclMapping(acl.sid, A, kept.sid, now, now))

    world.run(world.store.write(map_acl))
    record = world.run(world.voice.create_ip_record(A, "10.0.0.1", 24, None))
    mapping = world.run(world.voice.create_mapping(A, record.sid, d.sid))
    world.published.events.clear()

    world.run(world.domains.delete(A, d.sid))
    assert world.published.events == [
        MappingDeleted(mapping),
        AclMappingDeleted(acl_mapping),
        DomainDeleted(d),
    ]
    assert world.stored() == [kept]
    remaining = world.run(world.store.read(lambda tx: tx.find(AclMapping)))
    assert [m.domain_sid for m in remaining] == [kept.sid]
    assert world.run(world.voice.list_mappings(A, PageRequest())).items == []
    with pytest.raises(NotFound):
        world.run(world.domains.delete(A, d.sid))
    # The name is free again.
    world.create(B, domain_name="gone.sip.twilio.com")


def test_racing_creates_of_one_name(world: World) -> None:
    async def race() -> list[Any]:
        return await asyncio.gather(
            *(
                world.domains.create(account, {"domain_name": "race.sip.twilio.com"})
                for account in (A, B) * 10
            ),
            return_exceptions=True,
        )

    results = world.run(race())
    winners = [r for r in results if isinstance(r, DomainView)]
    assert len(winners) == 1
    losers = [r for r in results if not isinstance(r, DomainView)]
    assert all(isinstance(r, ServiceError) and r.code == 21232 for r in losers)
    assert len(world.stored(A)) + len(world.stored(B)) == 1


def test_custom_suffix(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        w = World(tmp_path / "domains.db", runner, "sip.example.org")
        try:
            assert w.create(domain_name="a.sip.example.org").domain.domain_name == (
                "a.sip.example.org"
            )
            with pytest.raises(InvalidParameter) as info:
                w.create(domain_name="a.sip.twilio.com")
            assert info.value.rule == "must be a name ending in .sip.example.org"
        finally:
            runner.run(w.store.close())
