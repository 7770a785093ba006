"""Voice v1 rules, in process: IP records, source IP mappings and their references."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipmap.core.errors import Conflict, InvalidParameter, MissingParameter, NotFound
from sipmap.core.events import DomainDeleted, MappingDeleted, MappingSaved
from sipmap.core.models import Account, IpRecord, SourceIpMapping
from sipmap.core.paging import PageRequest
from sipmap.recognize.recognizer import Recognizer

from .harness import A, B, Harness, opened


class World(Harness):
    def record(self, account: str = A, ip: str = "10.0.0.1", prefix: int = 32) -> IpRecord:
        return self.run(self.voice.create_ip_record(account, ip, prefix, None))

    def domain(self, account: str = A, name: str | None = None) -> str:
        name = name or f"d{len(self.published.events)}-{self.clock().timestamp():.0f}"
        view = self.run(self.domains.create(account, {"domain_name": f"{name}.sip.twilio.com"}))
        return view.domain.sid

    def map(self, account: str, record: str | None, domain: str | None) -> SourceIpMapping:
        return self.run(self.voice.create_mapping(account, record, domain))

    def mappings(self, account: str = A) -> list[SourceIpMapping]:
        return self.run(self.voice.list_mappings(account, PageRequest(1000))).items

    def records(self, account: str = A) -> list[IpRecord]:
        return self.run(self.voice.list_ip_records(account, PageRequest(1000))).items


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with opened(World, tmp_path / "rules.db") as w:
        yield w


# -- IP records ------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stored"), [(None, 32), (0, 32), (1, 1), (24, 24), (32, 32)])
def test_prefix_defaults_to_a_host(world: World, given: int | None, stored: int) -> None:
    record = world.run(world.voice.create_ip_record(A, "10.1.2.3", given, None))
    assert record.cidr_prefix_length == stored
    assert record.ip_address == "10.1.2.3"  # as given, not masked


def test_create_ip_record(world: World) -> None:
    record = world.run(world.voice.create_ip_record(A, "192.0.2.10", 24, "office"))
    assert record.sid == "IL" + "0" * 31 + "1"
    assert (record.account_sid, record.friendly_name) == (A, "office")
    assert record.date_created == record.date_updated == world.clock()
    assert world.records() == [record]
    assert world.records(B) == []
    assert world.run(world.voice.create_ip_record(A, "10.0.0.1", None, None)).friendly_name is None


@pytest.mark.parametrize(
    ("ip", "prefix", "name", "field"),
    [
        ("10.0.0.256", None, None, "ip_address"),
        ("", None, None, "ip_address"),
        ("2001:db8::1", None, None, "ip_address"),
        ("10.0.0.1", 33, None, "cidr_prefix_length"),
        ("10.0.0.1", -1, None, "cidr_prefix_length"),
        ("10.0.0.1", None, "x" * 256, "friendly_name"),
        ("10.0.0.1", None, "bad\x00name", "friendly_name"),
    ],
)
def test_create_ip_record_rejects(
    world: World, ip: str, prefix: int | None, name: str | None, field: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        world.run(world.voice.create_ip_record(A, ip, prefix, name))
    assert info.value.field == field
    assert world.records() == []


def test_create_ip_record_requires_an_address(world: World) -> None:
    with pytest.raises(MissingParameter) as info:
        world.run(world.voice.create_ip_record(A, None, 24, "x"))
    assert info.value.field == "ip_address"


def test_get_ip_record(world: World) -> None:
    record = world.record()
    assert world.run(world.voice.get_ip_record(A, record.sid)) == record
    assert world.run(world.voice.get_ip_record(A, "IL" + record.sid[2:].upper())) == record
    for sid in (record.sid.lower(), "IL" + "f" * 32, "nonsense", ""):
        with pytest.raises(NotFound):
            world.run(world.voice.get_ip_record(A, sid))
    with pytest.raises(NotFound):
        world.run(world.voice.get_ip_record(B, record.sid))


def test_update_ip_record(world: World) -> None:
    record = world.run(world.voice.create_ip_record(A, "10.0.0.1", 24, "old"))
    world.clock.advance(5)
    updated = world.run(world.voice.update_ip_record(A, record.sid, "new"))
    assert updated.friendly_name == "new"
    assert updated.date_updated == record.date_created + (world.clock() - record.date_created)
    assert updated.date_updated > updated.date_created == record.date_created
    assert (updated.ip_address, updated.cidr_prefix_length) == ("10.0.0.1", 24)
    world.clock.advance()
    # An empty update is valid: it keeps the name and still touches date_updated.
    same = world.run(world.voice.update_ip_record(A, record.sid, None))
    assert same.friendly_name == "new" and same.date_updated == world.clock()
    assert world.records() == [same]
    with pytest.raises(InvalidParameter):
        world.run(world.voice.update_ip_record(A, record.sid, "x" * 256))
    with pytest.raises(NotFound):
        world.run(world.voice.update_ip_record(B, record.sid, "stolen"))
    assert world.records() == [same]


def test_delete_ip_record_cascades_to_its_mapping(world: World) -> None:
    record, other = world.record(ip="10.0.0.1"), world.record(ip="10.0.0.2")
    domain = world.domain()
    doomed = world.map(A, record.sid, domain)
    kept = world.map(A, other.sid, domain)
    world.published.events.clear()
    with pytest.raises(NotFound):
        world.run(world.voice.delete_ip_record(B, record.sid))
    world.run(world.voice.delete_ip_record(A, record.sid))
    assert world.records() == [other]
    assert world.mappings() == [kept]
    assert world.published.events == [MappingDeleted(doomed)]
    with pytest.raises(NotFound):
        world.run(world.voice.delete_ip_record(A, record.sid))


# -- source IP mappings -------------------------------------------------------------------------


def test_create_mapping(world: World) -> None:
    record, domain = world.record(ip="10.9.8.7", prefix=16), world.domain()
    world.published.events.clear()
    mapping = world.map(A, record.sid, domain)
    assert mapping.sid.startswith("IB")
    assert (mapping.account_sid, mapping.ip_record_sid, mapping.sip_domain_sid) == (
        A,
        record.sid,
        domain,
    )
    assert (mapping.network, mapping.prefix_len) == (0x0A090000, 16)
    assert world.published.events == [MappingSaved(mapping)]
    assert world.mappings() == [mapping]
    assert world.run(world.voice.get_mapping(A, mapping.sid)) == mapping
    with pytest.raises(NotFound):
        world.run(world.voice.get_mapping(B, mapping.sid))


def test_mapping_accepts_uppercase_hex(world: World) -> None:
    record, domain = world.record(), world.domain()
    mapping = world.map(A, "IL" + record.sid[2:].upper(), "SD" + domain[2:].upper())
    assert (mapping.ip_record_sid, mapping.sip_domain_sid) == (record.sid, domain)


@pytest.mark.parametrize("missing", ["ip_record_sid", "sip_domain_sid"])
def test_mapping_requires_both_references(world: World, missing: str) -> None:
    refs = {"ip_record_sid": world.record().sid, "sip_domain_sid": world.domain()}
    refs[missing] = None  # type: ignore[assignment]
    with pytest.raises(MissingParameter) as info:
        world.map(A, refs["ip_record_sid"], refs["sip_domain_sid"])
    assert info.value.field == missing
    assert world.mappings() == []


def test_mapping_references_must_exist_in_the_callers_account(world: World) -> None:
    mine, my_domain = world.record(), world.domain()
    theirs, their_domain = world.record(B, "10.0.0.2"), world.domain(B)
    cases = [
        (theirs.sid, my_domain, "ip_record_sid"),
        (mine.sid, their_domain, "sip_domain_sid"),
        ("IL" + "f" * 32, my_domain, "ip_record_sid"),
        (mine.sid, "SD" + "f" * 32, "sip_domain_sid"),
        (my_domain, my_domain, "ip_record_sid"),  # a SID of the wrong type
        (mine.sid, mine.sid, "sip_domain_sid"),
        ("", my_domain, "ip_record_sid"),
        (mine.sid, "sd" + my_domain[2:], "sip_domain_sid"),
    ]
    for record_sid, domain_sid, field in cases:
        with pytest.raises(InvalidParameter) as info:
            world.map(A, record_sid, domain_sid)
        assert info.value.field == field, (record_sid, domain_sid)
        assert (info.value.status, info.value.code) == (400, 20001)
    assert world.mappings() == [] and world.mappings(B) == []


def test_one_mapping_per_ip_record(world: World) -> None:
    record = world.record()
    first = world.map(A, record.sid, world.domain())
    for domain in (first.sip_domain_sid, world.domain()):
        with pytest.raises(Conflict) as info:
            world.map(A, record.sid, domain)
        assert (info.value.status, info.value.code) == (409, 20409)
        assert first.sid in info.value.message
    assert world.mappings() == [first]


def test_a_network_maps_to_one_domain_across_accounts(world: World) -> None:
    mine = world.record(A, "10.20.30.40", 24)
    theirs = world.record(B, "10.20.30.99", 24)  # same /24 network, another account
    my_domain, their_domain = world.domain(A), world.domain(B)
    mapped = world.map(A, mine.sid, my_domain)
    with pytest.raises(Conflict) as info:
        world.map(B, theirs.sid, their_domain)
    assert info.value.code == 20409
    # Nothing about the other account leaks: no SID of A's in B's error.
    for secret in (A, mine.sid, my_domain, mapped.sid):
        assert secret not in info.value.message
        assert secret[2:] not in info.value.message
    assert world.mappings(B) == []


def test_same_network_same_domain_is_fine(world: World) -> None:
    one, two = world.record(ip="10.0.0.1", prefix=24), world.record(ip="10.0.0.2", prefix=24)
    domain = world.domain()
    world.map(A, one.sid, domain)
    world.map(A, two.sid, domain)
    assert len(world.mappings()) == 2


def test_overlapping_networks_of_other_lengths_are_allowed_in_one_account(world: World) -> None:
    wide, narrow, host = (
        world.record(ip="10.0.0.0", prefix=8),
        world.record(ip="10.1.0.0", prefix=16),
        world.record(ip="10.1.2.3", prefix=32),
    )
    world.map(A, wide.sid, world.domain())
    world.map(A, narrow.sid, world.domain())
    world.map(A, host.sid, world.domain())
    assert len(world.mappings()) == 3


def _refused_without_a_trace(world: World, account: str, record: str, secrets: list[str]) -> None:
    with pytest.raises(Conflict) as info:
        world.map(account, record, world.domain(account))
    assert info.value.code == 20409 and info.value.status == 409
    for secret in secrets:
        assert secret not in info.value.message and secret[2:] not in info.value.message


def test_another_accounts_longer_prefix_cannot_capture_traffic(world: World) -> None:
    # Issue 10, finding 1: B's /32 inside A's /24 would take that address's traffic.
    mine = world.record(A, "203.0.113.0", 24)
    my_domain = world.domain(A)
    mapped = world.map(A, mine.sid, my_domain)
    secrets = [A, mine.sid, my_domain, mapped.sid, "203.0.113.0/24"]
    for address, length in [("203.0.113.9", 32), ("203.0.113.128", 25), ("203.0.113.7", 24)]:
        _refused_without_a_trace(world, B, world.record(B, address, length).sid, secrets)
    # Nor a shorter prefix containing it, which would take what A has not mapped.
    for address, length in [("203.0.112.0", 23), ("203.0.0.0", 16), ("203.0.0.0", 8)]:
        _refused_without_a_trace(world, B, world.record(B, address, length).sid, secrets)
    assert world.mappings(B) == []
    # Beside it is fine.
    world.map(B, world.record(B, "203.0.114.0", 24).sid, world.domain(B))


def test_a_longer_prefix_mapped_first_blocks_another_accounts_shorter_one(world: World) -> None:
    world.map(B, world.record(B, "198.51.100.77", 32).sid, world.domain(B))
    _refused_without_a_trace(world, A, world.record(A, "198.51.100.0", 24).sid, [B])


def test_a_slash_one_is_refused_by_the_minimum_prefix(world: World) -> None:
    # Issue 10: B's 0.0.0.0/1 was accepted.
    record = world.record(B, "0.0.0.0", 1)
    with pytest.raises(InvalidParameter) as info:
        world.map(B, record.sid, world.domain(B))
    assert (info.value.code, info.value.status, info.value.field) == (20001, 400, "ip_record_sid")
    assert "/8" in info.value.message
    world.map(B, world.record(B, "10.0.0.0", 8).sid, world.domain(B))  # /8 itself is allowed
    assert len(world.mappings(B)) == 1


def test_the_minimum_prefix_is_a_setting(world: World) -> None:
    world.ctx.min_mapping_prefix = 24
    with pytest.raises(InvalidParameter):
        world.map(A, world.record(A, "10.0.0.0", 23).sid, world.domain())
    world.ctx.min_mapping_prefix = 0
    world.map(A, world.record(A, "0.0.0.0", 1).sid, world.domain())


def test_a_family_shares_its_ranges_and_the_longest_prefix_wins(world: World) -> None:
    sub = "AC" + "c" * 32
    now = world.clock()
    world.run(
        world.store.write(
            lambda tx: tx.insert(Account(sub, A, "sub", "active", "0" * 64, now, now))
        )
    )
    parent = world.map(A, world.record(A, "203.0.113.0", 24).sid, world.domain(A))
    child = world.map(sub, world.record(sub, "203.0.113.9", 32).sid, world.domain(sub))
    world.map(A, world.record(A, "203.0.113.64", 26).sid, world.domain(A))
    # The family's networks are still closed to other families, from either member.
    _refused_without_a_trace(world, B, world.record(B, "203.0.113.9", 32).sid, [sub, A])
    # The same network to two domains is ambiguous, even within a family.
    with pytest.raises(Conflict):
        world.map(sub, world.record(sub, "203.0.113.1", 24).sid, world.domain(sub))
    recognizer = Recognizer()
    recognizer.load(world.store)
    assert recognizer.recognize("203.0.113.9", None).source_ip_mapping_sid == child.sid
    assert recognizer.recognize("203.0.113.10", None).source_ip_mapping_sid == parent.sid


def test_an_update_cannot_make_a_network_ambiguous(world: World) -> None:
    # Changing a mapping's domain keeps its account, so only the same-network rule applies.
    one = world.map(A, world.record(A, "10.9.0.0", 16).sid, world.domain())
    two = world.map(A, world.record(A, "10.9.0.1", 16).sid, one.sip_domain_sid)
    with pytest.raises(Conflict):
        world.run(world.voice.update_mapping(A, two.sid, world.domain()))


def test_update_mapping(world: World) -> None:
    record = world.record()
    first, second = world.domain(), world.domain()
    mapping = world.map(A, record.sid, first)
    world.clock.advance(3)
    world.published.events.clear()
    updated = world.run(world.voice.update_mapping(A, mapping.sid, second))
    assert updated.sip_domain_sid == second
    assert updated.date_updated == world.clock() > updated.date_created
    assert world.published.events == [MappingSaved(updated)]
    assert world.mappings() == [updated]


def test_update_mapping_rules(world: World) -> None:
    one, two = world.record(ip="172.16.0.1", prefix=12), world.record(ip="172.20.0.1", prefix=12)
    domain = world.domain()
    kept = world.map(A, one.sid, domain)
    mapping = world.map(A, two.sid, domain)  # the same /12, the same domain: allowed
    their_domain = world.domain(B)
    with pytest.raises(MissingParameter):
        world.run(world.voice.update_mapping(A, mapping.sid, None))
    with pytest.raises(InvalidParameter):
        world.run(world.voice.update_mapping(A, mapping.sid, their_domain))
    with pytest.raises(InvalidParameter):
        world.run(world.voice.update_mapping(A, mapping.sid, "SD" + "f" * 32))
    with pytest.raises(NotFound):
        world.run(world.voice.update_mapping(B, mapping.sid, their_domain))
    # Moving one of them to another domain would make the /12 ambiguous.
    with pytest.raises(Conflict):
        world.run(world.voice.update_mapping(A, mapping.sid, world.domain()))
    assert world.mappings() == [kept, mapping]


def test_update_mapping_to_its_own_domain(world: World) -> None:
    record, domain = world.record(), world.domain()
    mapping = world.map(A, record.sid, domain)
    assert world.run(world.voice.update_mapping(A, mapping.sid, domain)).sip_domain_sid == domain


def test_delete_mapping(world: World) -> None:
    mapping = world.map(A, world.record().sid, world.domain())
    world.published.events.clear()
    with pytest.raises(NotFound):
        world.run(world.voice.delete_mapping(B, mapping.sid))
    world.run(world.voice.delete_mapping(A, "IB" + mapping.sid[2:].upper()))
    assert world.mappings() == []
    assert world.published.events == [MappingDeleted(mapping)]
    with pytest.raises(NotFound):
        world.run(world.voice.delete_mapping(A, mapping.sid))


def test_deleting_a_domain_deletes_its_mappings(world: World) -> None:
    domain, kept_domain = world.domain(), world.domain()
    gone = world.map(A, world.record(ip="10.0.0.1").sid, domain)
    kept = world.map(A, world.record(ip="10.0.0.2").sid, kept_domain)
    world.published.events.clear()
    world.run(world.domains.delete(A, domain))
    assert world.mappings() == [kept]
    assert world.published.events[0] == MappingDeleted(gone)
    assert isinstance(world.published.events[-1], DomainDeleted)
    assert len(world.records()) == 2  # the records themselves stay


def test_racing_mappings_of_one_record(world: World) -> None:
    record = world.record()
    domains = [world.domain() for _ in range(10)]

    async def race() -> list[Any]:
        return await asyncio.gather(
            *(world.voice.create_mapping(A, record.sid, d) for d in domains * 2),
            return_exceptions=True,
        )

    results = world.run(race())
    won = [r for r in results if isinstance(r, SourceIpMapping)]
    assert len(won) == 1
    assert all(isinstance(r, Conflict) for r in results if r is not won[0])
    assert world.mappings() == won


def test_racing_mappings_of_one_network_across_accounts(world: World) -> None:
    mine, theirs = world.record(A, "10.5.5.1", 24), world.record(B, "10.5.5.2", 24)
    my_domain, their_domain = world.domain(A), world.domain(B)

    async def race() -> list[Any]:
        return await asyncio.gather(
            world.voice.create_mapping(A, mine.sid, my_domain),
            world.voice.create_mapping(B, theirs.sid, their_domain),
            return_exceptions=True,
        )

    results = world.run(race())
    assert sum(isinstance(r, SourceIpMapping) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 1
    assert len(world.mappings(A)) + len(world.mappings(B)) == 1


def test_lists_are_per_account_in_creation_order(world: World) -> None:
    made = [world.record(ip=f"10.0.0.{n}") for n in range(1, 8)]
    world.record(B)
    page = world.run(world.voice.list_ip_records(A, PageRequest(3)))
    assert page.items == made[:3] and page.has_next
    page = world.run(world.voice.list_ip_records(A, PageRequest(3, 1, after_sid=made[2].sid)))
    assert page.items == made[3:6] and page.has_next
    page = world.run(world.voice.list_ip_records(A, PageRequest(3, 2, after_sid=made[5].sid)))
    assert page.items == made[6:] and not page.has_next
