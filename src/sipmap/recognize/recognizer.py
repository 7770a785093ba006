"""The recogniser: which SIP domain a request belongs to, and whether its IP ACLs allow it.

Rules (CONTRACT §6): a Request-URI host naming a SIP domain wins; otherwise the
domain mapped to the longest IP-record network containing the source IP; then
the source IP must be inside an address of one of the domain's mapped IP ACLs.

Consistency strategy: the service publishes every committed change here before
it acknowledges the write, so a later recognition in this process reflects it.
Changes are applied on the event loop thread, one small step at a time, in an
order that keeps every intermediate state valid for a reader in any thread:
route info is added before the LPM entry that points at it and removed after;
each LPM update is one C call that holds the GIL, so it is atomic. A full load
(`Recognizer.load`) is for start-up, before anything publishes or asks: it builds a
complete `_State` off the loop and sets it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from ..core.events import (
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
from ..core.models import AclMapping, IpAddress, SipDomain, SourceIpMapping
from ..store.base import Store, Tx
from .lpm import Table4, pack_entries, parse_source_ip
from .uri import request_uri_host

# Reasons, in the order the rules are tried.
INVALID_SOURCE_IP = "invalid_source_ip"
UNKNOWN_DOMAIN = "unknown_domain"  # the Request-URI names a host we don't serve
NO_SOURCE_MAPPING = "no_source_mapping"
NO_ACL_MAPPED = "no_acl_mapped"  # a domain with no auth mapped accepts nothing
NOT_IN_ACL = "source_ip_not_in_acl"
ALLOWED = "allowed_by_acl"


@dataclass(frozen=True, slots=True)
class Recognition:
    recognized: bool
    allowed: bool
    reason: str
    matched_by: str | None = None  # "request_uri" | "source_ip"
    sip_domain_sid: str | None = None
    domain_name: str | None = None
    account_sid: str | None = None
    ip_record_sid: str | None = None
    source_ip_mapping_sid: str | None = None
    network: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class _Route:
    mapping_sid: str
    ip_record_sid: str
    domain_sid: str
    network: str


@dataclass
class _State:
    table: Table4 = field(default_factory=Table4)
    routes: dict[int, _Route] = field(default_factory=dict)
    # A network is keyed by one int (`_key`), not a (network, length) tuple: a dict of
    # ints and strings is never tracked by the cyclic GC, while a dict of a million
    # tuples, once a collection has untracked it, is re-tracked into the youngest
    # generation by the next tuple inserted, and the next young collection then walks
    # all of it — a 50-130 ms pause on the event loop at 1M mappings.
    # Every mapping of a network (same domain by the service's rule); the oldest wins.
    by_network: dict[int, list[SourceIpMapping]] = field(default_factory=dict)
    mapping_network: dict[str, int] = field(default_factory=dict)
    # LPM values are small ids, one per mapped network; freed ids are reused
    ids: dict[int, int] = field(default_factory=dict)
    free_ids: list[int] = field(default_factory=list)
    domains: dict[str, SipDomain] = field(default_factory=dict)
    by_name: dict[str, SipDomain] = field(default_factory=dict)
    acls_of_domain: dict[str, set[str]] = field(default_factory=dict)
    domains_of_acl: dict[str, set[str]] = field(default_factory=dict)
    addresses: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    allow: dict[str, Table4] = field(default_factory=dict)


def _winner(mappings: list[SourceIpMapping]) -> SourceIpMapping:
    # Groups are kept in creation order and min() returns the first of equals, so
    # the oldest wins even among mappings created within the same (whole) second.
    return min(mappings, key=lambda m: m.date_created)


def _key(mapping: SourceIpMapping) -> int:
    return mapping.network << 6 | mapping.prefix_len


def _network(key: int) -> tuple[int, int]:
    return key >> 6, key & 63


def _route(key: int, mapping: SourceIpMapping) -> _Route:
    network = str(IPv4Network(_network(key)))
    return _Route(mapping.sid, mapping.ip_record_sid, mapping.sip_domain_sid, network)


class Recognizer:
    def __init__(self) -> None:
        self._state = _State()

    # -- lookups ------------------------------------------------------------------

    def recognize(self, source_ip: str, request_uri: str | None = None) -> Recognition:
        state = self._state
        value = state.table.lookup(source_ip)
        # The source as the ACL tables take it; None for IPv6, which no list can hold.
        source: str | int | None = source_ip
        if value == -2:  # not dotted IPv4: IPv6, the hex form of ::ffff:, or garbage
            parsed = parse_source_ip(source_ip)
            if parsed is None:
                return Recognition(False, False, INVALID_SOURCE_IP)
            family, number = parsed
            source = number if family == 4 else None
            value = state.table.lookup_int(number) if family == 4 else -1
        host = request_uri_host(request_uri) if request_uri else None
        if host is not None and (domain := state.by_name.get(host)) is not None:
            return self._decide(state, domain, source, "request_uri", None)
        if value >= 0:
            # Present by the order changes are applied in (route before LPM entry).
            route = state.routes[value]
            return self._decide(state, state.domains[route.domain_sid], source, "source_ip", route)
        return _unmatched(host)

    @staticmethod
    def _decide(
        state: _State, domain: SipDomain, source: str | int | None, by: str, route: _Route | None
    ) -> Recognition:
        allow = state.allow.get(domain.sid)
        if allow is None:
            allowed, reason = False, NO_ACL_MAPPED
        else:
            if source is None:
                hit = -1
            elif isinstance(source, str):
                hit = allow.lookup(source)
            else:
                hit = allow.lookup_int(source)
            allowed, reason = (True, ALLOWED) if hit >= 0 else (False, NOT_IN_ACL)
        return Recognition(
            True,
            allowed,
            reason,
            by,
            domain.sid,
            domain.domain_name,
            domain.account_sid,
            route.ip_record_sid if route else None,
            route.mapping_sid if route else None,
            route.network if route else None,
        )

    def __len__(self) -> int:
        return len(self._state.table)

    # -- loading --------------------------------------------------------------------

    @classmethod
    def from_rows(
        cls,
        domains: Iterable[SipDomain],
        mappings: Iterable[SourceIpMapping],
        acl_mappings: Iterable[AclMapping],
        addresses: Iterable[IpAddress],
    ) -> Recognizer:
        """A recognizer over these rows; mappings in creation order, as the store lists them."""
        recognizer = cls()
        recognizer._replace(lambda: _build_state(domains, mappings, acl_mappings, addresses))
        return recognizer

    def load(self, store: Store) -> None:
        """Build everything from the store's current content (blocking; run off the loop).

        For start-up: changes published while it runs would be lost, and a state it
        replaced would be freed in one go."""

        def rows(tx: Tx) -> tuple[Any, ...]:
            return (
                tx.find(SipDomain),
                tx.find(SourceIpMapping),
                tx.find(AclMapping),
                tx.find(IpAddress),
            )

        self._replace(lambda: _build_state(*store.read_blocking(rows)))

    def adopt(self, other: Recognizer) -> None:
        """Take over the state of `other`, built off the loop (`from_rows`): one
        assignment, so a reader sees the old state or the new one. For a rebuild while
        serving — nothing may publish between `other`'s snapshot and this call."""
        self._state = other._state

    def _replace(self, build: Callable[[], _State]) -> None:
        # A full build makes millions of GC-tracked objects; left alone, the cyclic
        # collector walks the whole heap again and again meanwhile, holding the GIL
        # for up to a second at a time — the event loop stalls even though the build
        # runs in another thread. So: no collections during the build, and the new
        # state frozen out of every later collection (gc.freeze), since it lives as
        # long as the process and holds no reference cycles worth collecting.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._state = build()
        finally:
            if was_enabled:
                gc.enable()
        gc.freeze()

    # -- changes ----------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            match event:
                case MappingSaved(mapping):
                    self._save_mapping(mapping)
                case MappingDeleted(mapping):
                    self._drop_mapping(mapping.sid)
                case DomainSaved(domain):
                    self._save_domain(domain)
                case DomainDeleted(domain):
                    self._delete_domain(domain)
                case AclMappingSaved(link):
                    self._state.acls_of_domain.setdefault(link.domain_sid, set()).add(link.sid)
                    self._state.domains_of_acl.setdefault(link.sid, set()).add(link.domain_sid)
                    self._refresh_allow(link.domain_sid)
                case AclMappingDeleted(link):
                    self._state.acls_of_domain.get(link.domain_sid, set()).discard(link.sid)
                    self._state.domains_of_acl.get(link.sid, set()).discard(link.domain_sid)
                    self._refresh_allow(link.domain_sid)
                case IpAddressSaved(address):
                    acl = self._state.addresses.setdefault(address.ip_access_control_list_sid, {})
                    acl[address.sid] = (address.network, address.cidr_prefix_length)
                    self._refresh_acl(address.ip_access_control_list_sid)
                case IpAddressDeleted(address):
                    acl_sid = address.ip_access_control_list_sid
                    self._state.addresses.get(acl_sid, {}).pop(address.sid, None)
                    self._refresh_acl(acl_sid)

    def _save_mapping(self, mapping: SourceIpMapping) -> None:
        s = self._state
        key = _key(mapping)
        if s.mapping_network.get(mapping.sid) != key:
            self._drop_mapping(mapping.sid)
            self._add_mapping(mapping)
            return
        # An update keeps its place: the group stays in creation order.
        group = [mapping if m.sid == mapping.sid else m for m in s.by_network[key]]
        s.by_network[key] = group
        self._point(key, group)

    def _add_mapping(self, mapping: SourceIpMapping) -> None:
        s = self._state
        key = _key(mapping)
        group = s.by_network.setdefault(key, [])
        group.append(mapping)
        s.mapping_network[mapping.sid] = key
        self._point(key, group)

    def _drop_mapping(self, mapping_sid: str) -> None:
        s = self._state
        key = s.mapping_network.pop(mapping_sid, None)
        if key is None:
            return
        group = [m for m in s.by_network[key] if m.sid != mapping_sid]
        if group:
            s.by_network[key] = group
            self._point(key, group)
        else:
            del s.by_network[key]
            route_id = s.ids.pop(key)
            s.table.remove(*_network(key))
            del s.routes[route_id]
            s.free_ids.append(route_id)

    def _point(self, key: int, group: list[SourceIpMapping]) -> None:
        s = self._state
        route = _route(key, _winner(group))
        route_id = s.ids.get(key)
        if route_id is not None:
            s.routes[route_id] = route  # one assignment: readers see old or new
            return
        route_id = s.free_ids.pop() if s.free_ids else len(s.ids)
        s.ids[key] = route_id
        s.routes[route_id] = route
        s.table.insert(*_network(key), route_id)

    def _save_domain(self, domain: SipDomain) -> None:
        s = self._state
        previous = s.domains.get(domain.sid)
        s.domains[domain.sid] = domain
        s.by_name[domain.domain_name] = domain
        if previous is not None and previous.domain_name != domain.domain_name:
            s.by_name.pop(previous.domain_name, None)

    def _delete_domain(self, domain: SipDomain) -> None:
        s = self._state
        s.by_name.pop(domain.domain_name, None)
        s.allow.pop(domain.sid, None)
        for acl_sid in s.acls_of_domain.pop(domain.sid, set()):
            s.domains_of_acl.get(acl_sid, set()).discard(domain.sid)
        s.domains.pop(domain.sid, None)

    def _refresh_acl(self, acl_sid: str) -> None:
        for domain_sid in self._state.domains_of_acl.get(acl_sid, ()):
            self._refresh_allow(domain_sid)

    def _refresh_allow(self, domain_sid: str) -> None:
        s = self._state
        acls = s.acls_of_domain.get(domain_sid)
        if not acls:
            s.allow.pop(domain_sid, None)
            return
        # Small (≤ 100 addresses per list): rebuilt whole, then swapped in.
        s.allow[domain_sid] = _allow_table(s, acls)


def _allow_table(state: _State, acls: Iterable[str]) -> Table4:
    table = Table4()
    for acl_sid in acls:
        for network, prefix_len in state.addresses.get(acl_sid, {}).values():
            table.insert(network, prefix_len, 0)
    return table


def _build_state(
    domains: Iterable[SipDomain],
    mappings: Iterable[SourceIpMapping],
    acl_mappings: Iterable[AclMapping],
    addresses: Iterable[IpAddress],
) -> _State:
    s = _State()
    for domain in domains:
        s.domains[domain.sid] = domain
        s.by_name[domain.domain_name] = domain
    for mapping in mappings:
        key = _key(mapping)
        s.by_network.setdefault(key, []).append(mapping)
        s.mapping_network[mapping.sid] = key
    entries = []
    for route_id, (key, group) in enumerate(s.by_network.items()):
        s.ids[key] = route_id
        s.routes[route_id] = _route(key, _winner(group))
        entries.append((*_network(key), route_id))
    # One bulk build (the C code releases the GIL while it sorts and packs).
    s.table = Table4.build(pack_entries(entries))
    for link in acl_mappings:
        s.acls_of_domain.setdefault(link.domain_sid, set()).add(link.sid)
        s.domains_of_acl.setdefault(link.sid, set()).add(link.domain_sid)
    for address in addresses:
        acl = s.addresses.setdefault(address.ip_access_control_list_sid, {})
        acl[address.sid] = (address.network, address.cidr_prefix_length)
    for domain_sid, acls in s.acls_of_domain.items():
        if acls:
            s.allow[domain_sid] = _allow_table(s, acls)
    return s


def not_recognized(request_uri: str | None) -> Recognition:
    """The answer for a request that matches no domain (what hiding a match must look like)."""
    return _unmatched(request_uri_host(request_uri) if request_uri else None)


# Results are frozen, so the two unmatched answers can be shared.
_UNKNOWN_DOMAIN = Recognition(False, False, UNKNOWN_DOMAIN)
_NO_SOURCE_MAPPING = Recognition(False, False, NO_SOURCE_MAPPING)


def _unmatched(host: str | None) -> Recognition:
    if host is not None and not _is_ip_literal(host):
        return _UNKNOWN_DOMAIN
    return _NO_SOURCE_MAPPING


def _is_ip_literal(host: str) -> bool:
    # Only digits-and-dots (IPv4) or anything with ':' (IPv6) can be an address; the
    # cheap test spares host names the cost of ipaddress raising on them.
    if ":" not in host and not host.replace(".", "").isdigit():
        return False
    return parse_source_ip(host.strip("[]")) is not None
