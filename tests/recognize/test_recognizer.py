"""The Recognizer against CONTRACT §6, read literally.

A brute-force reference written here with the stdlib `ipaddress` module decides
every probe; the Recognizer must agree with it whether it was built in one go
(`from_rows`), event by event (`publish`), or edited by random changes after
that. Then one table test per rule and per reason constant.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import ipaddress
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from sipmap.core import sids
from sipmap.core.clock import ManualClock
from sipmap.core.events import (
    AccountStatusChanged,
    AclMappingDeleted,
    AclMappingSaved,
    DomainDeleted,
    DomainSaved,
    Event,
    IpAddressDeleted,
    IpAddressSaved,
    MappingDeleted,
    MappingSaved,
)
from sipmap.core.models import (
    Account,
    AclMapping,
    IpAddress,
    SipDomain,
    SourceIpMapping,
    network_of,
)
from sipmap.recognize import recognizer as rec
from sipmap.recognize.recognizer import Recognition, Recognizer
from sipmap.service import open_service
from sipmap.store.sqlite import SqliteStore

T = TypeVar("T")
MAX32 = 2**32 - 1
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNTS = ("AC" + "a" * 32, "AC" + "b" * 32)
SUFFIX = ".sip.twilio.com"


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_domain(n: int, name: str, account: str = ACCOUNTS[0], t: int = 0) -> SipDomain:
    return SipDomain(
        sid("SD", n), account, name, None, None, "POST", None, "POST", None, "POST",
        False, False, False, None, None, at(t), at(t),
    )  # fmt: skip


def make_mapping(
    n: int, domain: SipDomain, ip: str, prefix_len: int, t: int = 0, record: int | None = None
) -> SourceIpMapping:
    return SourceIpMapping(
        sid("IB", n),
        domain.account_sid,
        sid("IL", n if record is None else record),
        domain.sid,
        network_of(ip, prefix_len),
        prefix_len,
        at(t),
        at(t),
    )


def make_address(n: int, acl: str, ip: str, prefix_len: int = 32) -> IpAddress:
    return IpAddress(sid("IP", n), ACCOUNTS[0], acl, f"a{n}", ip, prefix_len, T0, T0)


def make_link(acl: str, domain: SipDomain) -> AclMapping:
    return AclMapping(acl, domain.account_sid, domain.sid, T0, T0)


def dotted(number: int) -> str:
    return str(IPv4Address(number))


# -- the reference: CONTRACT §6, literally -----------------------------------------------


@dataclass
class Rows:
    """Everything recognition depends on; dicts keep creation order (updates keep their place)."""

    domains: dict[str, SipDomain] = field(default_factory=dict)
    mappings: dict[str, SourceIpMapping] = field(default_factory=dict)
    links: dict[tuple[str, str], AclMapping] = field(default_factory=dict)  # (acl, domain)
    addresses: dict[str, IpAddress] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)  # account -> status, if set

    def build(self) -> Recognizer:
        return Recognizer.from_rows(
            self.domains.values(),
            self.mappings.values(),
            self.links.values(),
            self.addresses.values(),
            [
                Account(account, account, "a", status, "0" * 64, T0, T0)
                for account, status in self.statuses.items()
            ],
        )


def cidr(network: int, prefix_len: int) -> IPv4Network:
    return IPv4Network((network, prefix_len))


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def reference(rows: Rows, source_ip: str, host: str | None) -> Recognition:
    """What §6 says about a request from `source_ip` whose Request-URI host is `host`."""
    try:
        parsed = ipaddress.ip_address(source_ip)
    except ValueError:
        return Recognition(False, False, rec.INVALID_SOURCE_IP)
    # §6.5: an IPv4-mapped IPv6 address is IPv4; every other IPv6 address stays IPv6.
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    source = parsed if isinstance(parsed, IPv4Address) else None  # families never mix

    target: SipDomain | None = None
    winner: SourceIpMapping | None = None
    by_name = {d.domain_name: d for d in rows.domains.values()}
    if host is not None and host in by_name:  # §6.1
        target = by_name[host]
    elif source is not None:  # §6.2: the longest network containing the source
        containing = [m for m in rows.mappings.values() if source in cidr(m.network, m.prefix_len)]
        if containing:
            longest = max(m.prefix_len for m in containing)
            # Several records may share that network (same domain, by the service's
            # rule): the oldest mapping wins; min() keeps the first created on ties.
            winner = min(
                (m for m in containing if m.prefix_len == longest), key=lambda m: m.date_created
            )
            target = rows.domains[winner.sip_domain_sid]
    if target is None:  # §6.3
        unknown_name = host is not None and not is_ip_literal(host)
        return Recognition(
            False, False, rec.UNKNOWN_DOMAIN if unknown_name else rec.NO_SOURCE_MAPPING
        )

    # §6.4: inside an address of one of the domain's mapped lists; no list, no entry;
    # and nothing at all for a suspended or closed account.
    lists = {acl for acl, domain_sid in rows.links if domain_sid == target.sid}
    if rows.statuses.get(target.account_sid, "active") != "active":
        allowed, reason = False, rec.ACCOUNT_NOT_ACTIVE
    elif not lists:
        allowed, reason = False, rec.NO_ACL_MAPPED
    elif source is not None and any(
        source in cidr(a.network, a.cidr_prefix_length)
        for a in rows.addresses.values()
        if a.ip_access_control_list_sid in lists
    ):
        allowed, reason = True, rec.ALLOWED
    else:
        allowed, reason = False, rec.NOT_IN_ACL
    return Recognition(
        True,
        allowed,
        reason,
        "source_ip" if winner else "request_uri",
        target.sid,
        target.domain_name,
        target.account_sid,
        winner.ip_record_sid if winner else None,
        winner.sid if winner else None,
        str(cidr(winner.network, winner.prefix_len)) if winner else None,
    )


# -- a random world, changed the way the service changes it ---------------------------------

NAMES = [f"{label}{SUFFIX}" for label in ("alpha", "bravo", "charlie", "delta", "echo", "fox")]
PREFIX_LENGTHS = st.one_of(
    st.just(32), st.sampled_from([1, 2, 4, 8, 16, 24, 28, 31, 32]), st.integers(1, 32)
)


class World:
    """The rows, plus the events the service would publish for each change."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.rows = Rows()
        self.lists: set[str] = set()
        self.clock = 0
        self.serial = 0
        self.bases = data.draw(
            st.lists(st.integers(0, MAX32), min_size=1, max_size=4).map(lambda b: [*b, 0, MAX32]),
            label="bases",
        )

    def draw(self, strategy: st.SearchStrategy[T]) -> T:
        return self.data.draw(strategy)

    def next_sid(self, prefix: str) -> str:
        return sid(prefix, self.fresh())

    def fresh(self) -> int:
        # SIDs are random in the service: their order says nothing about age.
        self.serial += 1
        return (self.serial * 0x9E3779B97F4A7C15) % 2**64

    def tick(self) -> int:
        # Whole seconds, as the service stores them: several writes often share one.
        self.clock += self.draw(st.sampled_from([0, 0, 1]))
        return self.clock

    def address_in_pool(self) -> str:
        base = self.draw(st.sampled_from(self.bases))
        offset = self.draw(st.sampled_from([0, 1, 2, 255, 256, 65535, 2**24, -1]))
        return dotted((base + offset) & MAX32)

    def free_names(self) -> list[str]:
        taken = {d.domain_name for d in self.rows.domains.values()}
        return [n for n in NAMES if n not in taken]

    def domain_of_network(self, key: tuple[int, int]) -> str | None:
        for m in self.rows.mappings.values():
            if (m.network, m.prefix_len) == key:
                return m.sip_domain_sid
        return None

    # -- creates --------------------------------------------------------------------

    def create_domain(self) -> list[Event]:
        names = self.free_names()
        if not names:
            return []
        domain = make_domain(
            self.fresh(), self.draw(st.sampled_from(names)), self.draw(st.sampled_from(ACCOUNTS))
        )
        self.rows.domains[domain.sid] = domain
        return [DomainSaved(domain)]

    def create_mapping(self) -> list[Event]:
        if not self.rows.domains:
            return []
        ip, prefix_len = self.address_in_pool(), self.draw(PREFIX_LENGTHS)
        key = (network_of(ip, prefix_len), prefix_len)
        # One network, one domain (CONTRACT §3): a second record of a mapped network
        # can only be mapped to that same domain.
        domain_sid = self.domain_of_network(key) or self.draw(
            st.sampled_from(list(self.rows.domains))
        )
        mapping = make_mapping(
            self.fresh(), self.rows.domains[domain_sid], ip, prefix_len, self.tick()
        )
        self.rows.mappings[mapping.sid] = mapping
        return [MappingSaved(mapping)]

    def create_list(self) -> list[Event]:
        self.lists.add(self.next_sid("AL"))
        return []

    def create_address(self) -> list[Event]:
        if not self.lists:
            return []
        acl = self.draw(st.sampled_from(sorted(self.lists)))
        address = make_address(self.fresh(), acl, self.address_in_pool(), self.draw(PREFIX_LENGTHS))
        self.rows.addresses[address.sid] = address
        return [IpAddressSaved(address)]

    def create_link(self) -> list[Event]:
        free = [
            (acl, d)
            for acl in sorted(self.lists)
            for d in self.rows.domains
            if (acl, d) not in self.rows.links
        ]
        if not free:
            return []
        acl, domain_sid = self.draw(st.sampled_from(free))
        link = make_link(acl, self.rows.domains[domain_sid])
        self.rows.links[acl, domain_sid] = link
        return [AclMappingSaved(link)]

    # -- updates and deletes ------------------------------------------------------------

    def update_mapping(self) -> list[Event]:
        if not self.rows.mappings:
            return []
        mapping = self.rows.mappings[self.draw(st.sampled_from(list(self.rows.mappings)))]
        others = [
            m
            for m in self.rows.mappings.values()
            if (m.network, m.prefix_len) == (mapping.network, mapping.prefix_len)
            and m.sid != mapping.sid
        ]
        # Moving to another domain is refused while other records share the network.
        choices = [others[0].sip_domain_sid] if others else list(self.rows.domains)
        updated = replace(
            mapping,
            sip_domain_sid=self.draw(st.sampled_from(choices)),
            date_updated=at(self.tick()),
        )
        self.rows.mappings[updated.sid] = updated
        return [MappingSaved(updated)]

    def delete_mapping(self) -> list[Event]:
        # Also what deleting its IP record publishes.
        if not self.rows.mappings:
            return []
        mapping = self.rows.mappings.pop(self.draw(st.sampled_from(list(self.rows.mappings))))
        return [MappingDeleted(mapping)]

    def rename_domain(self) -> list[Event]:
        names = self.free_names()
        if not self.rows.domains or not names:
            return []
        domain = self.rows.domains[self.draw(st.sampled_from(list(self.rows.domains)))]
        renamed = replace(domain, domain_name=self.draw(st.sampled_from(names)))
        self.rows.domains[domain.sid] = renamed
        return [DomainSaved(renamed)]

    def delete_domain(self) -> list[Event]:
        if not self.rows.domains:
            return []
        domain = self.rows.domains.pop(self.draw(st.sampled_from(list(self.rows.domains))))
        mappings = [m for m in self.rows.mappings.values() if m.sip_domain_sid == domain.sid]
        links = [k for k in self.rows.links if k[1] == domain.sid]
        for m in mappings:
            del self.rows.mappings[m.sid]
        return [
            *(MappingDeleted(m) for m in mappings),
            *(AclMappingDeleted(self.rows.links.pop(k)) for k in links),
            DomainDeleted(domain),
        ]

    def update_address(self) -> list[Event]:
        if not self.rows.addresses:
            return []
        address = self.rows.addresses[self.draw(st.sampled_from(list(self.rows.addresses)))]
        updated = replace(
            address, ip_address=self.address_in_pool(), cidr_prefix_length=self.draw(PREFIX_LENGTHS)
        )
        self.rows.addresses[address.sid] = updated
        return [IpAddressSaved(updated)]

    def delete_address(self) -> list[Event]:
        if not self.rows.addresses:
            return []
        address = self.rows.addresses.pop(self.draw(st.sampled_from(list(self.rows.addresses))))
        return [IpAddressDeleted(address)]

    def change_account_status(self) -> list[Event]:
        account = self.draw(st.sampled_from(ACCOUNTS))
        status = self.draw(st.sampled_from(["active", "suspended", "closed"]))
        self.rows.statuses[account] = status
        return [AccountStatusChanged(account, status)]

    def delete_link(self) -> list[Event]:
        if not self.rows.links:
            return []
        return [
            AclMappingDeleted(
                self.rows.links.pop(self.draw(st.sampled_from(list(self.rows.links))))
            )
        ]

    def delete_list(self) -> list[Event]:
        if not self.lists:
            return []
        acl = self.draw(st.sampled_from(sorted(self.lists)))
        self.lists.discard(acl)
        links = [k for k in self.rows.links if k[0] == acl]
        addresses = [a for a in self.rows.addresses.values() if a.ip_access_control_list_sid == acl]
        for a in addresses:
            del self.rows.addresses[a.sid]
        return [
            *(AclMappingDeleted(self.rows.links.pop(k)) for k in links),
            *(IpAddressDeleted(a) for a in addresses),
        ]

    CREATES = (
        "create_domain",
        "create_mapping",
        "create_mapping",
        "create_list",
        "create_address",
        "create_link",
        "change_account_status",
    )
    CHANGES = (
        *CREATES,
        "update_mapping", "delete_mapping", "delete_mapping", "rename_domain", "delete_domain",
        "update_address", "delete_address", "delete_link", "delete_list",
    )  # fmt: skip

    def step(self, choices: Sequence[str]) -> list[Event]:
        events: list[Event] = getattr(self, self.draw(st.sampled_from(choices)))()
        return events

    # -- probes ---------------------------------------------------------------------------
    # Probes come from a Random that Hypothesis seeds (and replays): drawing each one
    # through Hypothesis would cost most of the test's time.

    def networks(self) -> list[tuple[int, int]]:
        nets = [(m.network, m.prefix_len) for m in self.rows.mappings.values()]
        nets += [(a.network, a.cidr_prefix_length) for a in self.rows.addresses.values()]
        return nets or [(b, 32) for b in self.bases]

    def source_ip(self, rnd: random.Random) -> str:
        kind = rnd.choice(["inside"] * 5 + ["edge", "random", "ipv6", "garbage"])
        if kind in ("inside", "edge", "random"):
            network, prefix_len = rnd.choice(self.networks())
            span = MAX32 >> prefix_len
            if kind == "inside":
                number = network | (rnd.getrandbits(32) & span)
            elif kind == "edge":
                number = (network + rnd.choice([-1, 0, span, span + 1])) & MAX32
            else:
                number = rnd.getrandbits(32)
            return rnd.choice(ipv4_spellings(number))
        if kind == "ipv6":
            return rnd.choice(ipv6_sources(rnd.choice(self.networks())[0], rnd))
        if rnd.random() < 0.8:
            return rnd.choice(GARBAGE)
        return "".join(
            rnd.choice("0123456789abcdef.:%[] f\uff11") for _ in range(rnd.randrange(12))
        )

    def request_uri(self, rnd: random.Random) -> tuple[str | None, str | None]:
        """A Request-URI and the host it carries (None: absent, or no host in it)."""
        names = [d.domain_name for d in self.rows.domains.values()]
        kind = rnd.choice(["absent", "served", "served", "unknown", "ipv4", "ipv6", "hostless"])
        if kind == "absent":
            return None, None
        if kind == "hostless":
            return rnd.choice(["", "sip:", "tel:+15551234567", "sip:bob@"]), None
        if kind == "served" and names:
            host = rnd.choice(names)
        elif kind in ("served", "unknown"):
            host = rnd.choice([*NAMES, "example.com", "sip.twilio.com"])
        elif kind == "ipv4":
            host = dotted(rnd.choice(self.networks())[0])
        else:
            host = "2001:db8::5"
        return sip_uri(host, rnd), host


def ipv4_spellings(number: int) -> list[str]:
    """The ways one IPv4 peer can be written: dotted, and IPv4-mapped IPv6 in several forms."""
    text, hi, lo = dotted(number), number >> 16, number & 0xFFFF
    return [
        text,
        text,
        f"::ffff:{text}",
        f"::FFFF:{text}",
        f"::ffff:{hi:04x}:{lo:04x}",
        f"::ffff:{hi:x}:{lo:X}",
        f"0:0:0:0:0:ffff:{text}",
        f"0000:0000:0000:0000:0000:ffff:{hi:04x}:{lo:04x}",
    ]


def ipv6_sources(network: int, rnd: random.Random) -> list[str]:
    """IPv6 peers, including ones that embed a mapped IPv4 network without being IPv4."""
    text = dotted(network)
    return [
        f"::{text}",  # IPv4-compatible (deprecated): IPv6, not mapped
        f"64:ff9b::{text}",  # NAT64
        f"::ffff:0:{text}",  # SIIT "IPv4-translated": IPv6
        "2001:db8::1",
        "::1",
        "::",
        "fe80::1%eth0",
        str(IPv6Address(rnd.getrandbits(128))),
    ]


GARBAGE = [
    "",
    " ",
    "localhost",
    "10.0.0",
    "10.0.0.1.2",
    "256.0.0.1",
    "010.0.0.1",  # leading zeros are ambiguous (octal?): refused
    "10.0.0.01",
    " 10.0.0.1",
    "10.0.0.1 ",
    "10.0.0.1\n",
    "10.0.0.1:5060",  # a port is never part of the source IP
    "[::1]",
    "[::ffff:10.0.0.1]:5060",
    "10.0.0.1/32",
    "::ffff:",
    "::ffff:10.0.0",
    "::ffff:010.0.0.1",
    "\uff11.0.0.1",  # a fullwidth digit
    "\u0661.0.0.1",  # an Arabic-Indic digit
    "1.2.3.4\x00",
    "::ffff:1.2.3.4.",
    "::ffff:10000:1",
]


def sip_uri(host: str, rnd: random.Random) -> str:
    reference = f"[{host}]" if ":" in host else host
    cases: list[Callable[[str], str]] = [str, str.upper, str.title, lambda h: h + "."]
    case = rnd.choice(cases if ":" not in host else cases[:3])
    scheme = rnd.choice(["sip", "sips", "SIP"])
    user = rnd.choice(["", "alice@", "+15551234567@", "bob:pw@", "alice;day=tuesday@"])
    port = rnd.choice(["", ":5060", ":5061", ":65000"])
    params = rnd.choice(["", ";transport=tcp", ";lr;user=phone"])
    headers = rnd.choice(["", "?subject=hi", "?X-Foo=a:b&y=z"])
    return f"{scheme}:{user}{case(reference)}{port}{params}{headers}"


def events_one_by_one(rows: Rows, data: st.DataObject) -> list[Event]:
    """The rows as the Saved events that would have created them, domains first,
    the rest interleaved at random (each kind keeps its creation order)."""
    queues: list[list[Event]] = [
        [MappingSaved(m) for m in rows.mappings.values()],
        [AclMappingSaved(link) for link in rows.links.values()],
        [IpAddressSaved(a) for a in rows.addresses.values()],
    ]
    events: list[Event] = [DomainSaved(d) for d in rows.domains.values()]
    events += [AccountStatusChanged(a, status) for a, status in rows.statuses.items()]
    while any(queues):
        queue = data.draw(st.sampled_from([q for q in queues if q]))
        events.append(queue.pop(0))
    return events


def assert_agrees(world: World, recognizers: dict[str, Recognizer], probes: int) -> None:
    distinct = {(m.network, m.prefix_len) for m in world.rows.mappings.values()}
    for name, recognizer in recognizers.items():
        assert len(recognizer) == len(distinct), name
    rnd = world.draw(st.randoms(use_true_random=False))
    for _ in range(probes):
        source_ip = world.source_ip(rnd)
        uri, host = world.request_uri(rnd)
        expected = reference(world.rows, source_ip, host)
        for name, recognizer in recognizers.items():
            got = recognizer.recognize(source_ip, uri)
            assert got == expected, (name, source_ip, uri)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_recognizer_equals_the_reference(data: st.DataObject) -> None:
    world = World(data)
    for _ in range(data.draw(st.integers(0, 30), label="creates")):
        world.step(World.CREATES)
    built = world.rows.build()
    published = Recognizer()
    for event in events_one_by_one(world.rows, data):
        published.publish([event])
    assert_agrees(world, {"from_rows": built, "published": published}, probes=40)

    # Random changes, each published as the service publishes it (one batch per write).
    for _ in range(data.draw(st.integers(0, 30), label="changes")):
        events = world.step(World.CHANGES)
        published.publish(events)
        assert_agrees(world, {"published": published}, probes=2)
    assert_agrees(world, {"published": published, "rebuilt": world.rows.build()}, probes=40)


# -- table tests: one rule, or one reason, at a time --------------------------------------

ACL_1, ACL_2 = sid("AL", 1), sid("AL", 2)


def build(
    domains: Iterable[SipDomain] = (),
    mappings: Iterable[SourceIpMapping] = (),
    links: Iterable[AclMapping] = (),
    addresses: Iterable[IpAddress] = (),
) -> Recognizer:
    return Recognizer.from_rows(domains, mappings, links, addresses)


def built_both_ways(
    domains: Sequence[SipDomain] = (),
    mappings: Sequence[SourceIpMapping] = (),
    links: Sequence[AclMapping] = (),
    addresses: Sequence[IpAddress] = (),
) -> list[Recognizer]:
    published = Recognizer()
    published.publish(
        [
            *(DomainSaved(d) for d in domains),
            *(MappingSaved(m) for m in mappings),
            *(AclMappingSaved(link) for link in links),
            *(IpAddressSaved(a) for a in addresses),
        ]
    )
    return [build(domains, mappings, links, addresses), published]


D1 = make_domain(1, "one" + SUFFIX)
D2 = make_domain(2, "two" + SUFFIX, ACCOUNTS[1])
D3 = make_domain(3, "three" + SUFFIX)


def test_reason_constants_are_distinct_and_all_covered_below() -> None:
    reasons = {
        rec.INVALID_SOURCE_IP,
        rec.UNKNOWN_DOMAIN,
        rec.NO_SOURCE_MAPPING,
        rec.ACCOUNT_NOT_ACTIVE,
        rec.NO_ACL_MAPPED,
        rec.NOT_IN_ACL,
        rec.ALLOWED,
    }
    assert len(reasons) == 7
    constants = {
        value
        for name, value in vars(rec).items()
        if name.isupper() and isinstance(value, str) and not name.startswith("_")
    }
    assert constants == reasons


def test_longest_prefix_wins_across_overlaps() -> None:
    mappings = [
        make_mapping(1, D1, "10.0.0.0", 8),
        make_mapping(2, D2, "10.1.2.0", 24),
        make_mapping(3, D3, "10.1.2.3", 32),
        make_mapping(4, D1, "0.0.0.0", 1),
    ]
    for r in built_both_ways([D1, D2, D3], mappings):
        assert r.recognize("10.1.2.3").source_ip_mapping_sid == sid("IB", 3)
        assert r.recognize("10.1.2.3").network == "10.1.2.3/32"
        assert r.recognize("10.1.2.4").sip_domain_sid == D2.sid
        assert r.recognize("10.1.2.4").network == "10.1.2.0/24"
        assert r.recognize("10.1.3.4").sip_domain_sid == D1.sid
        assert r.recognize("10.1.3.4").network == "10.0.0.0/8"
        assert r.recognize("11.0.0.1").network == "0.0.0.0/1"
        assert r.recognize("128.0.0.1") == Recognition(False, False, rec.NO_SOURCE_MAPPING)
        assert len(r) == 4


def test_a_match_by_source_ip_reports_everything() -> None:
    mapping = make_mapping(7, D2, "192.0.2.77", 24, record=70)
    for r in built_both_ways([D2], [mapping]):
        assert r.recognize("192.0.2.1") == Recognition(
            recognized=True,
            allowed=False,
            reason=rec.NO_ACL_MAPPED,
            matched_by="source_ip",
            sip_domain_sid=D2.sid,
            domain_name="two.sip.twilio.com",
            account_sid=ACCOUNTS[1],
            ip_record_sid=sid("IL", 70),
            source_ip_mapping_sid=sid("IB", 7),
            network="192.0.2.0/24",  # masked, although the record keeps 192.0.2.77
        )


def test_request_uri_naming_a_domain_wins_over_the_source_ip() -> None:
    mapping = make_mapping(1, D1, "10.0.0.0", 8)
    for r in built_both_ways([D1, D2], [mapping]):
        result = r.recognize("10.0.0.1", "sip:bob@TWO.sip.twilio.com:5060;transport=tcp")
        assert result == Recognition(
            True, False, rec.NO_ACL_MAPPED, "request_uri", D2.sid, D2.domain_name, ACCOUNTS[1]
        )
        # An unknown name or an IP literal in the URI leaves it to the source IP.
        assert r.recognize("10.0.0.1", "sip:bob@nobody.sip.twilio.com").sip_domain_sid == D1.sid
        assert r.recognize("10.0.0.1", "sip:bob@10.9.9.9").matched_by == "source_ip"
        assert r.recognize("10.0.0.1", "sip:bob@[2001:db8::1]").matched_by == "source_ip"
        assert r.recognize("10.0.0.1", "tel:+15551234567").matched_by == "source_ip"
        assert r.recognize("10.0.0.1", None).matched_by == "source_ip"
        # The name matches from any source, even an unmapped one.
        assert r.recognize("203.0.113.9", "sip:two.sip.twilio.com").sip_domain_sid == D2.sid


def test_unknown_domain_versus_no_source_mapping() -> None:
    for r in built_both_ways([D1], [make_mapping(1, D1, "10.0.0.0", 8)]):
        unknown = Recognition(False, False, rec.UNKNOWN_DOMAIN)
        unmapped = Recognition(False, False, rec.NO_SOURCE_MAPPING)
        assert r.recognize("192.0.2.1", "sip:bob@nobody.sip.twilio.com") == unknown
        assert r.recognize("192.0.2.1", "sip:bob@example.com") == unknown
        assert r.recognize("192.0.2.1", "sip:bob@192.0.2.200") == unmapped
        assert r.recognize("192.0.2.1", "sip:bob@[::1]") == unmapped
        assert r.recognize("192.0.2.1", "tel:+15551234567") == unmapped
        assert r.recognize("192.0.2.1", "") == unmapped
        assert r.recognize("192.0.2.1") == unmapped
        assert r.recognize("2001:db8::1") == unmapped


@pytest.mark.parametrize(
    "source",
    ["", "bob", "10.0.0", "10.0.0.1:5060", "010.0.0.1", " 10.0.0.1", "[::1]", "\uff11.0.0.1"],
)
def test_invalid_source_ip(source: str) -> None:
    for r in built_both_ways([D1], [make_mapping(1, D1, "0.0.0.0", 1)]):
        # Checked before anything else: a name in the URI does not rescue it.
        assert r.recognize(source, "sip:one.sip.twilio.com") == Recognition(
            False, False, rec.INVALID_SOURCE_IP
        )


def test_acl_none_miss_hit() -> None:
    mapping = make_mapping(1, D1, "10.0.0.0", 8)
    addresses = [make_address(1, ACL_1, "10.0.0.5"), make_address(2, ACL_2, "172.16.9.9", 12)]
    cases: list[tuple[list[AclMapping], str, bool, str]] = [
        ([], "10.0.0.5", False, rec.NO_ACL_MAPPED),
        ([make_link(ACL_1, D1)], "10.0.0.6", False, rec.NOT_IN_ACL),
        ([make_link(ACL_1, D1)], "10.0.0.5", True, rec.ALLOWED),
        ([make_link(ACL_1, D1)], "::ffff:10.0.0.5", True, rec.ALLOWED),
        ([make_link(ACL_1, D1)], "::ffff:a00:5", True, rec.ALLOWED),
        ([make_link(ACL_2, D1)], "10.0.0.5", False, rec.NOT_IN_ACL),
        ([make_link(ACL_1, D1), make_link(ACL_2, D1)], "10.0.0.5", True, rec.ALLOWED),
        ([make_link(ACL_2, D2)], "10.0.0.5", False, rec.NO_ACL_MAPPED),  # another domain's list
    ]
    for links, source, allowed, reason in cases:
        for r in built_both_ways([D1, D2], [mapping], links, addresses):
            result = r.recognize(source)
            assert (result.recognized, result.allowed, result.reason) == (True, allowed, reason)
    # A list's address anywhere: the FQDN path checks the ACL with the source IP too.
    for r in built_both_ways([D1, D2], [mapping], [make_link(ACL_2, D2)], addresses):
        result = r.recognize("172.31.0.1", "sip:two.sip.twilio.com")
        assert (result.sip_domain_sid, result.allowed, result.reason) == (D2.sid, True, rec.ALLOWED)
        assert r.recognize("172.32.0.1", "sip:two.sip.twilio.com").reason == rec.NOT_IN_ACL


def test_mapped_lists_without_addresses_allow_nothing() -> None:
    for r in built_both_ways([D1], [make_mapping(1, D1, "10.0.0.0", 8)], [make_link(ACL_1, D1)]):
        assert r.recognize("10.0.0.1").reason == rec.NOT_IN_ACL


def test_acl_changes_apply_at_once() -> None:
    r = build([D1], [make_mapping(1, D1, "10.0.0.0", 8)])
    assert r.recognize("10.0.0.5").reason == rec.NO_ACL_MAPPED
    address = make_address(1, ACL_1, "10.0.0.5")
    r.publish([IpAddressSaved(address)])  # an address of a list no domain uses yet
    assert r.recognize("10.0.0.5").reason == rec.NO_ACL_MAPPED
    r.publish([AclMappingSaved(make_link(ACL_1, D1))])
    assert r.recognize("10.0.0.5").reason == rec.ALLOWED
    moved = replace(address, ip_address="10.0.0.0", cidr_prefix_length=30)
    r.publish([IpAddressSaved(moved)])
    assert r.recognize("10.0.0.3").reason == rec.ALLOWED
    assert r.recognize("10.0.0.5").reason == rec.NOT_IN_ACL
    r.publish([IpAddressDeleted(moved)])
    assert r.recognize("10.0.0.3").reason == rec.NOT_IN_ACL
    r.publish([IpAddressSaved(address), AclMappingDeleted(make_link(ACL_1, D1))])
    assert r.recognize("10.0.0.5").reason == rec.NO_ACL_MAPPED


def test_domain_rename() -> None:
    for r in built_both_ways([D1], [make_mapping(1, D1, "10.0.0.0", 8)]):
        renamed = replace(D1, domain_name="uno" + SUFFIX)
        r.publish([DomainSaved(renamed)])
        assert r.recognize("192.0.2.1", "sip:one.sip.twilio.com").reason == rec.UNKNOWN_DOMAIN
        assert r.recognize("192.0.2.1", "sip:uno.sip.twilio.com").sip_domain_sid == D1.sid
        assert r.recognize("10.0.0.1").domain_name == "uno.sip.twilio.com"
        # The old name is free again, and another domain may take it.
        r.publish([DomainSaved(replace(D3, domain_name="one" + SUFFIX))])
        assert r.recognize("192.0.2.1", "sip:one.sip.twilio.com").sip_domain_sid == D3.sid
        assert r.recognize("192.0.2.1", "sip:uno.sip.twilio.com").sip_domain_sid == D1.sid


def test_domain_swap_names() -> None:
    r = build([D1, D3])
    # one→tmp, three→one, one(tmp)→three: each write valid on its own.
    r.publish([DomainSaved(replace(D1, domain_name="tmp" + SUFFIX))])
    r.publish([DomainSaved(replace(D3, domain_name=D1.domain_name))])
    r.publish([DomainSaved(replace(D1, domain_name=D3.domain_name))])
    assert r.recognize("192.0.2.1", "sip:" + D1.domain_name).sip_domain_sid == D3.sid
    assert r.recognize("192.0.2.1", "sip:" + D3.domain_name).sip_domain_sid == D1.sid
    assert r.recognize("192.0.2.1", "sip:tmp" + SUFFIX).reason == rec.UNKNOWN_DOMAIN


def test_domain_delete_takes_its_mappings_and_lists_with_it() -> None:
    mapping = make_mapping(1, D1, "10.0.0.0", 8)
    link = make_link(ACL_1, D1)
    address = make_address(1, ACL_1, "10.0.0.5")
    for r in built_both_ways([D1, D2], [mapping], [link, make_link(ACL_1, D2)], [address]):
        # what DomainService.delete publishes
        r.publish([MappingDeleted(mapping), AclMappingDeleted(link), DomainDeleted(D1)])
        assert r.recognize("10.0.0.5") == Recognition(False, False, rec.NO_SOURCE_MAPPING)
        assert r.recognize("10.0.0.5", "sip:one.sip.twilio.com").reason == rec.UNKNOWN_DOMAIN
        assert len(r) == 0
        # the list still serves the other domain it is mapped to
        assert r.recognize("10.0.0.5", "sip:two.sip.twilio.com").reason == rec.ALLOWED


def test_mapping_moved_to_another_domain() -> None:
    mapping = make_mapping(1, D1, "10.0.0.0", 8)
    for r in built_both_ways([D1, D2], [mapping]):
        r.publish([MappingSaved(replace(mapping, sip_domain_sid=D2.sid, date_updated=at(5)))])
        result = r.recognize("10.0.0.1")
        assert (result.sip_domain_sid, result.source_ip_mapping_sid) == (D2.sid, mapping.sid)
        assert len(r) == 1


def test_mapping_delete_and_ip_record_delete() -> None:
    wide, narrow = make_mapping(1, D1, "10.0.0.0", 8), make_mapping(2, D2, "10.1.0.0", 16)
    for r in built_both_ways([D1, D2], [wide, narrow]):
        assert r.recognize("10.1.0.1").sip_domain_sid == D2.sid
        r.publish([MappingDeleted(narrow)])
        assert r.recognize("10.1.0.1").sip_domain_sid == D1.sid  # falls back to the /8
        r.publish([MappingDeleted(narrow)])  # a repeat changes nothing
        r.publish([MappingDeleted(wide)])
        assert r.recognize("10.1.0.1").reason == rec.NO_SOURCE_MAPPING
        assert len(r) == 0
        r.publish([MappingSaved(narrow)])
        assert r.recognize("10.1.0.1").sip_domain_sid == D2.sid


def test_oldest_mapping_of_a_shared_network_wins() -> None:
    # Three records whose networks are all 10.0.0.0/24, mapped to one domain.
    older = make_mapping(5, D1, "10.0.0.9", 24, t=1)
    same_second = make_mapping(3, D1, "10.0.0.1", 24, t=1)  # created after, smaller SID
    newest = make_mapping(1, D1, "10.0.0.0", 24, t=2)
    for r in built_both_ways([D1], [older, same_second, newest]):
        assert r.recognize("10.0.0.200").source_ip_mapping_sid == older.sid
        assert len(r) == 1
        # An update keeps the mapping's age, so it keeps winning.
        r.publish([MappingSaved(replace(older, date_updated=at(9)))])
        assert r.recognize("10.0.0.200").source_ip_mapping_sid == older.sid
        r.publish([MappingDeleted(older)])
        assert r.recognize("10.0.0.200").source_ip_mapping_sid == same_second.sid
        assert r.recognize("10.0.0.200").ip_record_sid == same_second.ip_record_sid
        r.publish([MappingDeleted(same_second)])
        assert r.recognize("10.0.0.200").source_ip_mapping_sid == newest.sid
        r.publish([MappingDeleted(newest)])
        assert r.recognize("10.0.0.200").reason == rec.NO_SOURCE_MAPPING


@pytest.mark.parametrize(
    "source",
    [
        "192.0.2.10",
        "::ffff:192.0.2.10",
        "::FFFF:192.0.2.10",
        "::ffff:c000:20a",
        "::ffff:c000:020a",
        "0:0:0:0:0:ffff:192.0.2.10",
        "0:0:0:0:0:FFFF:C000:020A",
        "::ffff:192.0.2.10%eth0",
    ],
)
def test_ipv4_mapped_ipv6_is_ipv4(source: str) -> None:
    mapping = make_mapping(1, D1, "192.0.2.0", 24)
    link, address = make_link(ACL_1, D1), make_address(1, ACL_1, "192.0.2.10")
    for r in built_both_ways([D1], [mapping], [link], [address]):
        result = r.recognize(source)
        assert (result.sip_domain_sid, result.reason) == (D1.sid, rec.ALLOWED)
        assert r.recognize(source, "sip:one.sip.twilio.com").reason == rec.ALLOWED


@pytest.mark.parametrize(
    "source",
    [
        "::192.0.2.10",  # IPv4-compatible: an IPv6 address
        "64:ff9b::192.0.2.10",  # NAT64
        "::ffff:0:192.0.2.10",  # IPv4-translated: IPv6
        "2001:db8::c000:20a",
        "::c000:20a",
    ],
)
def test_families_never_mix(source: str) -> None:
    mapping = make_mapping(1, D1, "192.0.2.0", 24)
    everything = make_mapping(2, D1, "0.0.0.0", 1), make_mapping(3, D1, "128.0.0.0", 1)
    link = make_link(ACL_1, D1)
    addresses = [make_address(1, ACL_1, "0.0.0.0", 1), make_address(2, ACL_1, "128.0.0.0", 1)]
    for r in built_both_ways([D1], [mapping, *everything], [link], addresses):
        assert r.recognize(source) == Recognition(False, False, rec.NO_SOURCE_MAPPING)
        # By name it is recognised, but no IPv4 list can hold an IPv6 source.
        result = r.recognize(source, "sip:one.sip.twilio.com")
        assert (result.recognized, result.allowed, result.reason) == (True, False, rec.NOT_IN_ACL)


def test_the_source_port_is_never_involved() -> None:
    assert list(inspect.signature(Recognizer.recognize).parameters) == [
        "self",
        "source_ip",
        "request_uri",
    ]
    mapping = make_mapping(1, D1, "192.0.2.0", 24)
    for r in built_both_ways([D1], [mapping]):
        # Only the URI's port varies here; a source written with a port is not an address.
        results = {
            r.recognize("192.0.2.1", f"sip:bob@nobody.example.com{port}")
            for port in ("", ":5060", ":5061", ":12345")
        }
        assert len(results) == 1 and results.pop().sip_domain_sid == D1.sid
        assert r.recognize("192.0.2.1:5060").reason == rec.INVALID_SOURCE_IP


def test_publish_matches_a_full_load_through_the_service(tmp_path: Path) -> None:
    """open_service's recognizer (events) and a fresh load from the store agree."""

    twin_sid: list[str] = []

    async def scenario() -> tuple[Recognizer, Recognizer]:
        store = SqliteStore(tmp_path / "load.db")
        clock = ManualClock()
        service = open_service(store, clock=clock, new_sid=sids.counter_sids())
        try:
            account = ACCOUNTS[0]
            await store.write(
                lambda tx: tx.insert(Account(account, account, "a", "active", "0" * 64, T0, T0))
            )
            one = (await service.domains.create(account, {"domain_name": "one" + SUFFIX})).domain
            two = (await service.domains.create(account, {"domain_name": "two" + SUFFIX})).domain
            wide = await service.voice.create_ip_record(account, "10.0.0.0", 8, None)
            narrow = await service.voice.create_ip_record(account, "10.1.2.3", 24, None)
            twin = await service.voice.create_ip_record(account, "10.1.2.4", 24, None)
            gone = await service.voice.create_ip_record(account, "10.9.0.0", 16, None)
            await service.voice.create_mapping(account, wide.sid, one.sid)
            first = await service.voice.create_mapping(account, narrow.sid, one.sid)
            await service.voice.create_mapping(account, twin.sid, one.sid)
            await service.voice.create_mapping(account, gone.sid, two.sid)
            await service.voice.delete_ip_record(account, gone.sid)
            # Unmapped and mapped again: now younger than its twin, which takes over.
            await service.voice.delete_mapping(account, first.sid)
            clock.advance()
            await service.voice.create_mapping(account, narrow.sid, one.sid)
            acl = await service.acls.create_list(account, "office")
            await service.acls.create_address(account, acl.sid, "pbx", "10.1.2.0/28", None)
            await service.acls.create_mapping(account, one.sid, acl.sid)
            await service.domains.update(account, one.sid, {"domain_name": "uno" + SUFFIX})
            twin_sid.append(twin.sid)
            loaded = Recognizer()
            await asyncio.to_thread(loaded.load, store)
            return service.recognizer, loaded
        finally:
            await store.close()

    live, loaded = asyncio.run(scenario())
    assert len(live) == len(loaded) == 2
    for source in ("10.1.2.1", "10.1.2.100", "10.2.0.1", "10.9.0.1", "11.0.0.1", "::ffff:a01:201"):
        for uri in (
            None,
            "sip:one.sip.twilio.com",
            "sip:uno.sip.twilio.com",
            "sip:two.sip.twilio.com",
        ):
            assert live.recognize(source, uri) == loaded.recognize(source, uri), (source, uri)
    assert live.recognize("10.1.2.1").reason == rec.ALLOWED
    assert live.recognize("10.1.2.1").ip_record_sid == twin_sid[0]
    assert live.recognize("10.1.2.100").reason == rec.NOT_IN_ACL
    assert live.recognize("10.2.0.1").domain_name == "uno" + SUFFIX


def test_a_domain_of_a_suspended_or_closed_account_accepts_nothing() -> None:
    mapping = make_mapping(1, D1, "10.0.0.0", 8)
    link, address = make_link(ACL_1, D1), make_address(1, ACL_1, "10.0.0.5")
    other = make_mapping(2, D2, "192.0.2.0", 24)
    for r in built_both_ways([D1, D2], [mapping, other], [link], [address]):
        assert r.recognize("10.0.0.5").reason == rec.ALLOWED
        for status in ("suspended", "closed"):
            r.publish([AccountStatusChanged(ACCOUNTS[0], status)])
            for uri in (None, "sip:one.sip.twilio.com"):
                result = r.recognize("10.0.0.5", uri)
                # Still recognised (the proxy learns whose it is), never allowed.
                assert (result.recognized, result.allowed, result.reason) == (
                    True,
                    False,
                    rec.ACCOUNT_NOT_ACTIVE,
                )
                assert result.sip_domain_sid == D1.sid
            # Another account's domains are untouched.
            assert r.recognize("192.0.2.1").reason == rec.NO_ACL_MAPPED
        r.publish([AccountStatusChanged(ACCOUNTS[0], "active")])
        assert r.recognize("10.0.0.5").reason == rec.ALLOWED
    suspended = Account(ACCOUNTS[0], ACCOUNTS[0], "a", "suspended", "0" * 64, T0, T0)
    r = Recognizer.from_rows([D1], [mapping], [link], [address], [suspended])
    assert r.recognize("10.0.0.5").reason == rec.ACCOUNT_NOT_ACTIVE


def test_the_state_holds_no_gc_tracked_object_per_mapping() -> None:
    """At a million mappings, every GC-tracked object per mapping is one more the cyclic
    collector walks on the event loop: tens of ms per young collection once a big dict
    is re-tracked, and over a second for a full one after a build (the race between
    re-enabling the GC and freezing the new state that this design removed). Mappings
    must live in the packed C structures only, however the state was made."""
    domains = [make_domain(n, f"d{n}{SUFFIX}") for n in range(1, 5)]
    mappings = [make_mapping(n, domains[n % 4], dotted(n << 8), 24) for n in range(1, 5001)]
    mappings += [make_mapping(9000 + n, domains[n % 4], dotted(n << 8), 24) for n in range(1, 50)]
    gc.collect()
    before = len(gc.get_objects())
    built = build(domains, mappings)
    loaded = Recognizer()
    loaded.load(_RowsStore(domains, mappings))  # type: ignore[arg-type]
    published = Recognizer()
    published.publish([*(DomainSaved(d) for d in domains), *(MappingSaved(m) for m in mappings)])
    for m in mappings[:1000]:
        published.publish([MappingDeleted(m)])
        published.publish([MappingSaved(m)])
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert len(built) == len(loaded) == len(published) == 5000
    assert grown < 200, grown  # a few per domain and per shared network, not per mapping
    # And nothing here switches the collector off or freezes objects behind its back.
    assert gc.isenabled() and gc.get_freeze_count() == 0


class _RowsStore:
    """Just enough of a Store for `Recognizer.load`: domains and mappings, as scanned."""

    def __init__(self, domains: list[SipDomain], mappings: list[SourceIpMapping]) -> None:
        self.rows: dict[type, list[object]] = {SipDomain: domains, SourceIpMapping: mappings}

    def read_blocking(self, fn: Callable[[object], T]) -> T:
        return fn(self)

    def scan(self, model: type, columns: Sequence[str]) -> Iterable[tuple[object, ...]]:
        return (tuple(getattr(row, c) for c in columns) for row in self.rows.get(model, []))


def test_the_documented_examples_hold() -> None:
    """Every row of the examples table in docs/recognition.md, as written there."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "recognition.md").read_text()
    section = doc.split("### Examples", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    assert len(rows) >= 9
    alpha = make_domain(1, "alpha" + SUFFIX)
    beta = make_domain(2, "beta" + SUFFIX)
    gamma = make_domain(3, "gamma" + SUFFIX)
    acl = sid("AL", 1)
    for recognizer in built_both_ways(
        [alpha, beta, gamma],
        [
            make_mapping(1, alpha, "10.0.0.0", 8),
            make_mapping(2, beta, "10.1.2.0", 24),
            make_mapping(3, gamma, "10.1.2.3", 32),
        ],
        [make_link(acl, beta)],
        [make_address(1, acl, "10.1.2.0", 28)],
    ):
        for source, uri, domain, allowed, reason in rows:
            result = recognizer.recognize(source, None if uri == "—" else uri)
            expected_domain = domain.split(" ")[0]
            found = (result.domain_name or "—").removesuffix(SUFFIX)
            assert (found, result.allowed, result.reason) == (
                expected_domain,
                allowed == "yes",
                reason.strip("`"),
            ), (source, uri)
