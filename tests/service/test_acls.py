"""The rules of IP access control lists, their addresses and domain mappings, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sipmap.core.clock import ManualClock
from sipmap.core.errors import (
    AclAlreadyMapped,
    InvalidParameter,
    LimitExceeded,
    MissingParameter,
    NotFound,
    ServiceError,
)
from sipmap.core.events import (
    AclMappingDeleted,
    AclMappingSaved,
    IpAddressDeleted,
    IpAddressSaved,
)
from sipmap.core.models import AclMapping, IpAccessControlList, IpAddress
from sipmap.core.paging import PageRequest
from sipmap.core.sids import counter_sids
from sipmap.service.accounts import AccountService
from sipmap.service.acls import MAX_ADDRESSES_PER_LIST, MAX_LISTS_PER_ACCOUNT, AclService
from sipmap.service.context import Context
from sipmap.service.domains import DomainService
from sipmap.store.sqlite import SqliteStore

from .harness import Recorder

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class World:
    ctx: Context
    clock: ManualClock
    published: Recorder
    acls: AclService
    domains: DomainService
    accounts: AccountService
    store: SqliteStore

    async def account(self) -> str:
        account, _ = await self.accounts.create_account(None, "test")
        return account.sid

    async def domain(self, account_sid: str, name: str) -> str:
        view = await self.domains.create(account_sid, {"domain_name": f"{name}.sip.twilio.com"})
        self.published.take()  # DomainSaved: not what these tests are about
        return view.domain.sid

    async def rows(self) -> tuple[list[Any], list[Any], list[Any]]:
        def run(tx: Any) -> tuple[list[Any], list[Any], list[Any]]:
            return tx.find(IpAccessControlList), tx.find(IpAddress), tx.find(AclMapping)

        return await self.store.read(run)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = SqliteStore(tmp_path / "db")
    clock = ManualClock()
    recorder = Recorder()
    ctx = Context(store, clock=clock, new_sid=counter_sids(), publisher=recorder)
    yield World(
        ctx, clock, recorder, AclService(ctx), DomainService(ctx), AccountService(ctx), store
    )
    store.close_blocking()


def upper(sid: str) -> str:
    return sid[:2] + sid[2:].upper()


# -- lists ----------------------------------------------------------------------------------


async def test_list_lifecycle(world: World) -> None:
    ac = await world.account()
    acl = await world.acls.create_list(ac, "office")
    assert acl.sid.startswith("AL") and acl.account_sid == ac
    assert acl.date_created == acl.date_updated == world.clock.now
    assert await world.acls.get_list(ac, upper(acl.sid)) == acl

    world.clock.advance(5)
    renamed = await world.acls.update_list(ac, acl.sid, "branch")
    assert renamed.friendly_name == "branch"
    assert renamed.date_created == acl.date_created
    assert renamed.date_updated == world.clock.now != acl.date_updated
    page = await world.acls.list_lists(ac, PageRequest())
    assert page.items == [renamed] and not page.has_next

    await world.acls.delete_list(ac, acl.sid)
    with pytest.raises(NotFound):
        await world.acls.get_list(ac, acl.sid)
    with pytest.raises(NotFound):
        await world.acls.delete_list(ac, acl.sid)
    assert world.published.take() == []  # an empty list changes no recognition


@pytest.mark.parametrize(
    ("name", "error", "rule"),
    [
        (None, MissingParameter, None),
        ("", MissingParameter, None),
        ("   ", InvalidParameter, "must not be empty"),
        ("x" * 256, InvalidParameter, "must be at most 255 characters"),
        ("a\nb", InvalidParameter, "must not contain control characters"),
    ],
)
async def test_list_name_rules(
    world: World, name: str | None, error: type[ServiceError], rule: str | None
) -> None:
    ac = await world.account()
    with pytest.raises(error) as caught:
        await world.acls.create_list(ac, name)
    assert getattr(caught.value, "field", None) == "friendly_name"
    assert getattr(caught.value, "rule", None) == rule
    acl = await world.acls.create_list(ac, "x" * 255)
    with pytest.raises(error):
        await world.acls.update_list(ac, acl.sid, name)
    assert await world.acls.get_list(ac, acl.sid) == acl
    lists, _, _ = await world.rows()
    assert lists == [acl]


async def test_lists_belong_to_their_account(world: World) -> None:
    ac, other = await world.account(), await world.account()
    acl = await world.acls.create_list(ac, "mine")
    for attempt in (
        world.acls.get_list(other, acl.sid),
        world.acls.update_list(other, acl.sid, "stolen"),
        world.acls.delete_list(other, acl.sid),
        world.acls.list_addresses(other, acl.sid, PageRequest()),
        world.acls.create_address(other, acl.sid, "x", "10.0.0.1", None),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert (await world.acls.list_lists(other, PageRequest())).items == []
    assert await world.acls.get_list(ac, acl.sid) == acl


@pytest.mark.parametrize("sid", ["", "AL123", "IL" + "0" * 32, "AL" + "g" * 32, "al" + "0" * 32])
async def test_malformed_list_sids_are_not_found(world: World, sid: str) -> None:
    ac = await world.account()
    with pytest.raises(NotFound):
        await world.acls.get_list(ac, sid)
    with pytest.raises(NotFound):
        await world.acls.list_addresses(ac, sid, PageRequest())


async def test_list_limit_holds_under_racing_creates(world: World) -> None:
    ac = await world.account()
    extra = 7
    results = await asyncio.gather(
        *(world.acls.create_list(ac, f"l{i}") for i in range(MAX_LISTS_PER_ACCOUNT + extra)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == extra
    assert all(isinstance(f, LimitExceeded) for f in failures)
    assert "at most 1000 IP access control lists" in str(failures[0])
    lists, _, _ = await world.rows()
    assert len(lists) == MAX_LISTS_PER_ACCOUNT
    # Another account has its own allowance.
    other = await world.account()
    await world.acls.create_list(other, "fine")


# -- IP addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "prefix", "stored"),
    [
        ("192.168.1.1", None, ("192.168.1.1", 32)),
        ("192.168.1.1", 0, ("192.168.1.1", 32)),
        ("192.168.1.1", 1, ("192.168.1.1", 1)),
        ("10.1.2.3", 24, ("10.1.2.3", 24)),  # stored as given, not masked
        ("10.1.2.0/24", None, ("10.1.2.0", 24)),
        ("10.1.2.0/24", 24, ("10.1.2.0", 24)),
        ("10.1.2.3/32", 32, ("10.1.2.3", 32)),
        ("10.1.2.3/32", 0, ("10.1.2.3", 32)),
    ],
)
async def test_address_forms(
    world: World, ip: str, prefix: int | None, stored: tuple[str, int]
) -> None:
    ac = await world.account()
    acl = await world.acls.create_list(ac, "l")
    record = await world.acls.create_address(ac, acl.sid, "pbx", ip, prefix)
    assert (record.ip_address, record.cidr_prefix_length) == stored
    assert record.sid.startswith("IP")
    assert record.account_sid == ac and record.ip_access_control_list_sid == acl.sid
    assert await world.acls.get_address(ac, upper(acl.sid), upper(record.sid)) == record
    assert world.published.take() == [IpAddressSaved(record)]


@pytest.mark.parametrize(
    ("name", "ip", "prefix", "error", "field"),
    [
        (None, "10.0.0.1", None, MissingParameter, "friendly_name"),
        ("", "10.0.0.1", None, MissingParameter, "friendly_name"),
        ("x" * 256, "10.0.0.1", None, InvalidParameter, "friendly_name"),
        ("pbx", None, None, MissingParameter, "ip_address"),
        ("pbx", "", None, MissingParameter, "ip_address"),
        ("pbx", "10.0.0", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.256", None, InvalidParameter, "ip_address"),
        ("pbx", " 10.0.0.1", None, InvalidParameter, "ip_address"),
        ("pbx", "::1", None, InvalidParameter, "ip_address"),
        ("pbx", "example.com", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.0/0", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.0/33", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.0/", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.0/24/24", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.0/²", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.0/255.255.255.0", None, InvalidParameter, "ip_address"),
        ("pbx", "10.0.0.1", 33, InvalidParameter, "cidr_prefix_length"),
        ("pbx", "10.0.0.1", -1, InvalidParameter, "cidr_prefix_length"),
        ("pbx", "10.0.0.0/24", 16, InvalidParameter, "cidr_prefix_length"),
        ("pbx", "10.0.0.0/24", 0, InvalidParameter, "cidr_prefix_length"),
    ],
)
async def test_address_input_rules(
    world: World,
    name: str | None,
    ip: str | None,
    prefix: int | None,
    error: type[ServiceError],
    field: str,
) -> None:
    ac = await world.account()
    acl = await world.acls.create_list(ac, "l")
    with pytest.raises(error) as caught:
        await world.acls.create_address(ac, acl.sid, name, ip, prefix)
    assert getattr(caught.value, "field", None) == field
    assert caught.value.status == 400 and caught.value.code == 20001
    _, addresses, _ = await world.rows()
    assert addresses == []
    assert world.published.take() == []


async def test_address_update_changes_only_what_is_given(world: World) -> None:
    ac = await world.account()
    acl = await world.acls.create_list(ac, "l")
    record = await world.acls.create_address(ac, acl.sid, "pbx", "10.0.0.1", 24)
    world.published.take()

    async def update(**kw: Any) -> IpAddress:
        world.clock.advance()
        args = {"friendly_name": None, "ip_address": None, "cidr_prefix_length": None, **kw}
        return await world.acls.update_address(ac, acl.sid, record.sid, **args)

    renamed = await update(friendly_name="trunk")
    assert (renamed.friendly_name, renamed.ip_address, renamed.cidr_prefix_length) == (
        "trunk",
        "10.0.0.1",
        24,
    )
    assert renamed.date_updated == world.clock.now and renamed.date_created == record.date_created
    moved = await update(ip_address="10.9.9.9")  # keeps its prefix length
    assert (moved.ip_address, moved.cidr_prefix_length) == ("10.9.9.9", 24)
    widened = await update(cidr_prefix_length=16)
    assert (widened.ip_address, widened.cidr_prefix_length) == ("10.9.9.9", 16)
    both = await update(ip_address="172.16.0.0/12")
    assert (both.ip_address, both.cidr_prefix_length) == ("172.16.0.0", 12)
    host = await update(cidr_prefix_length=0)
    assert host.cidr_prefix_length == 32
    touched = await update()  # an empty update is valid
    assert touched.date_updated == world.clock.now
    assert world.published.take() == [
        IpAddressSaved(r) for r in (renamed, moved, widened, both, host, touched)
    ]

    for bad in (
        {"friendly_name": ""},
        {"friendly_name": " "},
        {"ip_address": ""},
        {"ip_address": "10.0.0.0/8", "cidr_prefix_length": 9},
        {"cidr_prefix_length": 40},
    ):
        with pytest.raises(InvalidParameter):
            await update(**bad)
    assert await world.acls.get_address(ac, acl.sid, record.sid) == touched
    assert world.published.take() == []


async def test_addresses_are_scoped_to_their_list(world: World) -> None:
    ac = await world.account()
    first, second = await world.acls.create_list(ac, "a"), await world.acls.create_list(ac, "b")
    record = await world.acls.create_address(ac, first.sid, "pbx", "10.0.0.1", None)
    other = await world.account()
    for account, list_sid, sid in (
        (ac, second.sid, record.sid),
        (other, first.sid, record.sid),
        (ac, first.sid, "IP123"),
        (ac, first.sid, "AL" + record.sid[2:]),
    ):
        with pytest.raises(NotFound):
            await world.acls.get_address(account, list_sid, sid)
        with pytest.raises(NotFound):
            await world.acls.update_address(account, list_sid, sid, "x", None, None)
        with pytest.raises(NotFound):
            await world.acls.delete_address(account, list_sid, sid)
    assert (await world.acls.list_addresses(ac, second.sid, PageRequest())).items == []
    assert (await world.acls.list_addresses(ac, first.sid, PageRequest())).items == [record]

    world.published.take()
    await world.acls.delete_address(ac, first.sid, record.sid)
    assert world.published.take() == [IpAddressDeleted(record)]
    with pytest.raises(NotFound):
        await world.acls.get_address(ac, first.sid, record.sid)


async def test_address_limit_holds_under_racing_creates(world: World) -> None:
    ac = await world.account()
    acl = await world.acls.create_list(ac, "l")
    extra = 9
    results = await asyncio.gather(
        *(
            world.acls.create_address(ac, acl.sid, f"a{i}", f"10.0.{i // 256}.{i % 256}", None)
            for i in range(MAX_ADDRESSES_PER_LIST + extra)
        ),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == extra and all(isinstance(f, LimitExceeded) for f in failures)
    first = failures[0]
    assert isinstance(first, LimitExceeded) and first.status == 400
    assert "at most 100 IP addresses" in str(first)
    _, addresses, _ = await world.rows()
    assert len(addresses) == MAX_ADDRESSES_PER_LIST
    assert len(world.published.take()) == MAX_ADDRESSES_PER_LIST  # failures publish nothing
    # Freeing one slot makes room for exactly one more; another list has its own allowance.
    await world.acls.delete_address(ac, acl.sid, addresses[0].sid)
    await world.acls.create_address(ac, acl.sid, "again", "10.1.0.1", None)
    with pytest.raises(LimitExceeded):
        await world.acls.create_address(ac, acl.sid, "over", "10.1.0.2", None)
    second = await world.acls.create_list(ac, "second")
    await world.acls.create_address(ac, second.sid, "fine", "10.1.0.3", None)


# -- mappings ----------------------------------------------------------------------------------


async def test_mapping_lifecycle_and_events(world: World) -> None:
    ac = await world.account()
    domain = await world.domain(ac, "office")
    acl = await world.acls.create_list(ac, "office")
    world.clock.advance(10)
    view = await world.acls.create_mapping(ac, upper(domain), upper(acl.sid))
    mapping = view.mapping
    assert mapping == AclMapping(acl.sid, ac, domain, world.clock.now, world.clock.now)
    assert view.friendly_name == "office"
    assert world.published.take() == [AclMappingSaved(mapping)]
    assert (await world.domains.get(ac, domain)).ip_acl_mapped is True

    await world.acls.update_list(ac, acl.sid, "renamed")  # joined when read
    assert (await world.acls.get_mapping(ac, domain, acl.sid)).friendly_name == "renamed"
    page = await world.acls.list_mappings(ac, domain, PageRequest())
    assert [(v.mapping, v.friendly_name) for v in page.items] == [(mapping, "renamed")]

    await world.acls.delete_mapping(ac, upper(domain), upper(acl.sid))
    assert world.published.take() == [AclMappingDeleted(mapping)]
    assert (await world.domains.get(ac, domain)).ip_acl_mapped is False
    with pytest.raises(NotFound):
        await world.acls.get_mapping(ac, domain, acl.sid)
    with pytest.raises(NotFound):
        await world.acls.delete_mapping(ac, domain, acl.sid)
    assert await world.acls.get_list(ac, acl.sid)  # the list itself stays


async def test_mapping_the_same_list_twice_is_21231(world: World) -> None:
    ac = await world.account()
    domain, other_domain = await world.domain(ac, "a"), await world.domain(ac, "b")
    acl = await world.acls.create_list(ac, "l")
    await world.acls.create_mapping(ac, domain, acl.sid)
    with pytest.raises(AclAlreadyMapped) as caught:
        await world.acls.create_mapping(ac, domain, upper(acl.sid))
    assert (caught.value.status, caught.value.code) == (400, 21231)
    # One list may serve several domains.
    await world.acls.create_mapping(ac, other_domain, acl.sid)
    _, _, mappings = await world.rows()
    assert [(m.domain_sid, m.sid) for m in mappings] == [(domain, acl.sid), (other_domain, acl.sid)]


async def test_racing_identical_mappings_store_one(world: World) -> None:
    ac = await world.account()
    domain = await world.domain(ac, "a")
    acl = await world.acls.create_list(ac, "l")
    results = await asyncio.gather(
        *(world.acls.create_mapping(ac, domain, acl.sid) for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, AclAlreadyMapped) for r in results) == 9
    assert len([e for e in world.published.take() if isinstance(e, AclMappingSaved)]) == 1


async def test_mapping_list_sid_rules(world: World) -> None:
    ac, other = await world.account(), await world.account()
    domain = await world.domain(ac, "a")
    foreign = await world.acls.create_list(other, "theirs")
    field = "ip_access_control_list_sid"
    for value, error in (
        (None, MissingParameter),
        ("", MissingParameter),
        ("AL123", InvalidParameter),
        ("SD" + domain[2:], InvalidParameter),
        (" " + foreign.sid, InvalidParameter),
        (foreign.sid, InvalidParameter),  # another account's list
        ("AL" + "f" * 32, InvalidParameter),  # unknown
    ):
        with pytest.raises(error) as caught:
            await world.acls.create_mapping(ac, domain, value)
        assert getattr(caught.value, "field", None) == field
        assert (caught.value.status, caught.value.code) == (400, 20001)
    _, _, mappings = await world.rows()
    assert mappings == []
    assert world.published.take() == []


async def test_mapping_domain_must_be_the_accounts(world: World) -> None:
    ac, other = await world.account(), await world.account()
    theirs = await world.domain(other, "theirs")
    mine = await world.domain(ac, "mine")
    acl = await world.acls.create_list(ac, "l")
    await world.acls.create_mapping(ac, mine, acl.sid)
    for domain in (theirs, "SD" + "f" * 32, "SD123", mine[:-1]):
        with pytest.raises(NotFound):
            await world.acls.create_mapping(ac, domain, acl.sid)
        with pytest.raises(NotFound):
            await world.acls.list_mappings(ac, domain, PageRequest())
        with pytest.raises(NotFound):
            await world.acls.get_mapping(ac, domain, acl.sid)
        with pytest.raises(NotFound):
            await world.acls.delete_mapping(ac, domain, acl.sid)
    # The other account sees nothing of ours, even naming our domain.
    with pytest.raises(NotFound):
        await world.acls.get_mapping(other, mine, acl.sid)
    with pytest.raises(NotFound):
        await world.acls.delete_mapping(other, mine, acl.sid)
    # A bad domain is a 404 before the body is looked at.
    with pytest.raises(NotFound):
        await world.acls.create_mapping(ac, theirs, None)


async def test_deleting_a_list_takes_its_addresses_and_mappings(world: World) -> None:
    ac = await world.account()
    first, second = await world.domain(ac, "a"), await world.domain(ac, "b")
    acl = await world.acls.create_list(ac, "l")
    keep = await world.acls.create_list(ac, "keep")
    addresses = [
        await world.acls.create_address(ac, acl.sid, f"a{i}", f"10.0.0.{i}", None) for i in range(3)
    ]
    kept_address = await world.acls.create_address(ac, keep.sid, "k", "10.9.0.1", None)
    m1 = (await world.acls.create_mapping(ac, first, acl.sid)).mapping
    m2 = (await world.acls.create_mapping(ac, second, acl.sid)).mapping
    kept_mapping = (await world.acls.create_mapping(ac, second, keep.sid)).mapping
    world.published.take()

    await world.acls.delete_list(ac, acl.sid)
    events = world.published.take()
    assert events == [
        AclMappingDeleted(m1),
        AclMappingDeleted(m2),
        *(IpAddressDeleted(a) for a in addresses),
    ]
    lists, stored_addresses, mappings = await world.rows()
    assert lists == [keep]
    assert stored_addresses == [kept_address]
    assert mappings == [kept_mapping]
    assert (await world.domains.get(ac, first)).ip_acl_mapped is False
    assert (await world.domains.get(ac, second)).ip_acl_mapped is True


async def test_deleting_a_domain_keeps_the_list(world: World) -> None:
    ac = await world.account()
    domain = await world.domain(ac, "a")
    acl = await world.acls.create_list(ac, "l")
    await world.acls.create_mapping(ac, domain, acl.sid)
    await world.domains.delete(ac, domain)
    _, _, mappings = await world.rows()
    assert mappings == []
    assert await world.acls.get_list(ac, acl.sid) == acl
    # A new domain can map it again.
    again = await world.domain(ac, "a")
    await world.acls.create_mapping(ac, again, acl.sid)


async def test_pages_of_addresses_and_mappings(world: World) -> None:
    ac = await world.account()
    domain = await world.domain(ac, "a")
    acl = await world.acls.create_list(ac, "l")
    records = [
        await world.acls.create_address(ac, acl.sid, f"a{i}", f"10.0.0.{i}", None) for i in range(5)
    ]
    lists = [await world.acls.create_list(ac, f"m{i}") for i in range(5)]
    for target in lists:
        await world.acls.create_mapping(ac, domain, target.sid)

    seen: list[str] = []
    request = PageRequest(page_size=2)
    while True:
        page = await world.acls.list_addresses(ac, acl.sid, request)
        seen += [r.sid for r in page.items]
        if not page.has_next:
            break
        request = PageRequest(2, request.page + 1, after_sid=page.items[-1].sid)
    assert seen == [r.sid for r in records]

    mapped: list[str] = []
    request = PageRequest(page_size=2)
    while True:
        views = await world.acls.list_mappings(ac, domain, request)
        mapped += [v.mapping.sid for v in views.items]
        if not views.has_next:
            break
        request = PageRequest(2, request.page + 1, after_sid=views.items[-1].mapping.sid)
    assert mapped == [acl.sid for acl in lists]
