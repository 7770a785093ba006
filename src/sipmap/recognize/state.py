"""What the recogniser knows, compactly, and how one committed change edits it.

Per source IP mapping there is one entry in the longest-prefix table (`Table4`) and
one 40-byte slot in `Routes`, the table's value being the slot; nothing per mapping
is a Python object, so a million mappings cost about 100 bytes each and give the
cyclic GC nothing to walk. Several mappings of one network (IP records with the same
network, mapped to one domain) are the exception, listed in `groups`; the table
points at the oldest. Domains, IP ACL links and list addresses are few by comparison
and kept as Python objects; each domain's allowed addresses are merged into one
sorted bytes of ranges (`in_ranges`).

Edits are ordered so a reader in any thread sees a valid state between any two
steps: a slot is filled before the table entry that points at it, and a freed slot
keeps its old content until it is reused.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..core.events import (
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
from ..core.models import SourceIpMapping
from ._lpm import Routes, Table4

MAX32 = 0xFFFFFFFF

MappingRow = tuple[str, str, str, int, int]
"""(sid, ip_record_sid, sip_domain_sid, network, prefix_len), as `Routes.load` reads it."""


@dataclass(slots=True)
class Domain:
    sid: str
    account_sid: str
    name: str
    # Merged ranges of the addresses of its IP ACLs (`in_ranges`); None: no list mapped.
    allow: bytes | None = None


@dataclass(eq=False)
class State:
    table: Table4 = field(default_factory=Table4)
    routes: Routes = field(default_factory=Routes)
    free_slots: array[int] = field(default_factory=lambda: array("q"))
    # network key -> slots of its mappings in creation order, for networks with several
    groups: dict[int, list[int]] = field(default_factory=dict)
    domains: list[Domain | None] = field(default_factory=list)  # by index; never reused
    domain_ids: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, Domain] = field(default_factory=dict)
    acls_of_domain: dict[str, set[str]] = field(default_factory=dict)
    domains_of_acl: dict[str, set[str]] = field(default_factory=dict)
    addresses: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    inactive_accounts: set[str] = field(default_factory=set)  # suspended or closed

    # -- bulk ------------------------------------------------------------------------

    def load_mappings(self, rows: Iterable[MappingRow]) -> None:
        """Fill an empty state's table from rows in creation order (domains known first)."""
        routes, entries = Routes.load(rows, self.domain_ids)
        # C, with the GIL released while it sorts and packs.
        table = Table4.build(entries)
        del entries
        if len(table) < len(routes):  # a network mapped more than once: rare
            for slot in range(len(routes)):
                network, prefix_len = routes.network(slot)
                winner = table.get(network, prefix_len)
                if winner != slot:
                    key = network << 6 | prefix_len
                    self.groups.setdefault(key, [winner]).append(slot)
        self.table, self.routes = table, routes

    def refresh_all_acls(self) -> None:
        for domain_sid in self.acls_of_domain:
            self._refresh_allow(domain_sid)

    # -- events ----------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> None:
        for event in events:
            match event:
                case MappingSaved(mapping):
                    self._save_mapping(mapping)
                case MappingDeleted(mapping):
                    self._drop_mapping(mapping)
                case DomainSaved(domain):
                    self.save_domain(domain.sid, domain.account_sid, domain.domain_name)
                case DomainDeleted(domain):
                    self._delete_domain(domain.sid)
                case AclMappingSaved(link):
                    self.link(link.sid, link.domain_sid)
                    self._refresh_allow(link.domain_sid)
                case AclMappingDeleted(link):
                    self.acls_of_domain.get(link.domain_sid, set()).discard(link.sid)
                    self.domains_of_acl.get(link.sid, set()).discard(link.domain_sid)
                    self._refresh_allow(link.domain_sid)
                case IpAddressSaved(address):
                    acl_sid = address.ip_access_control_list_sid
                    self.add_address(
                        acl_sid, address.sid, address.network, address.cidr_prefix_length
                    )
                    self._refresh_acl(acl_sid)
                case IpAddressDeleted(address):
                    acl_sid = address.ip_access_control_list_sid
                    self.addresses.get(acl_sid, {}).pop(address.sid, None)
                    self._refresh_acl(acl_sid)
                case AccountStatusChanged(account_sid, status):
                    self.set_account_status(account_sid, status)

    def set_account_status(self, account_sid: str, status: str) -> None:
        if status == "active":
            self.inactive_accounts.discard(account_sid)
        else:
            self.inactive_accounts.add(account_sid)

    # -- mappings --------------------------------------------------------------------

    def _slots_of(self, key: int, winner: int) -> list[int]:
        return self.groups.get(key) or [winner]

    def _find(self, slots: list[int], sid: str) -> int | None:
        for slot in slots:
            if self.routes.sid(slot) == sid:
                return slot
        return None

    def _save_mapping(self, m: SourceIpMapping) -> None:
        # A mapping's network never changes (its IP record's address is immutable), so
        # the network finds it: no index of mapping SIDs is needed.
        domain = self._domain_id(m.sip_domain_sid, m.account_sid)
        fields = (m.sid, m.ip_record_sid, m.network, m.prefix_len, domain)
        winner = self.table.get(m.network, m.prefix_len)
        if winner < 0:
            slot = self._new_slot()
            self.routes.set(slot, *fields)
            self.table.insert(m.network, m.prefix_len, slot)
            return
        key = m.network << 6 | m.prefix_len
        slots = self._slots_of(key, winner)
        found = self._find(slots, m.sid)
        if found is not None:  # an update keeps its place (and its age)
            self.routes.set(found, *fields)
            return
        slot = self._new_slot()
        self.routes.set(slot, *fields)
        self.groups[key] = [*slots, slot]  # the newest; the oldest keeps winning

    def _drop_mapping(self, m: SourceIpMapping) -> None:
        winner = self.table.get(m.network, m.prefix_len)
        if winner < 0:
            return
        key = m.network << 6 | m.prefix_len
        slots = self._slots_of(key, winner)
        found = self._find(slots, m.sid)
        if found is None:
            return
        rest = [slot for slot in slots if slot != found]
        if found == winner:
            if rest:
                self.table.insert(m.network, m.prefix_len, rest[0])
            else:
                self.table.remove(m.network, m.prefix_len)
        if len(rest) > 1:
            self.groups[key] = rest
        else:
            self.groups.pop(key, None)
        self.free_slots.append(found)

    def _new_slot(self) -> int:
        return self.free_slots.pop() if self.free_slots else len(self.routes)

    # -- domains ---------------------------------------------------------------------

    def _domain_id(self, sid: str, account_sid: str) -> int:
        index = self.domain_ids.get(sid)
        if index is None:  # not published yet (the service always publishes it first)
            index = self.save_domain(sid, account_sid, "")
        return index

    def save_domain(self, sid: str, account_sid: str, name: str) -> int:
        index = self.domain_ids.get(sid)
        previous = None if index is None else self.domains[index]
        domain = Domain(sid, account_sid, name, previous.allow if previous else None)
        if index is None:
            index = len(self.domains)
            self.domains.append(domain)
            self.domain_ids[sid] = index
        else:
            self.domains[index] = domain  # one assignment: readers see old or new
        if name:
            self.by_name[name] = domain
        if previous is not None and self.by_name.get(previous.name) is previous:
            del self.by_name[previous.name]  # renamed: the old name is free
        return index

    def _delete_domain(self, sid: str) -> None:
        index = self.domain_ids.pop(sid, None)
        if index is None:
            return
        domain = self.domains[index]
        if domain is not None and self.by_name.get(domain.name) is domain:
            del self.by_name[domain.name]
        self.domains[index] = None
        for acl_sid in self.acls_of_domain.pop(sid, set()):
            self.domains_of_acl.get(acl_sid, set()).discard(sid)

    # -- IP access control lists -------------------------------------------------------

    def link(self, acl_sid: str, domain_sid: str) -> None:
        self.acls_of_domain.setdefault(domain_sid, set()).add(acl_sid)
        self.domains_of_acl.setdefault(acl_sid, set()).add(domain_sid)

    def add_address(self, acl_sid: str, sid: str, network: int, prefix_len: int) -> None:
        self.addresses.setdefault(acl_sid, {})[sid] = (network, prefix_len)

    def _refresh_acl(self, acl_sid: str) -> None:
        for domain_sid in self.domains_of_acl.get(acl_sid, ()):
            self._refresh_allow(domain_sid)

    def _refresh_allow(self, domain_sid: str) -> None:
        index = self.domain_ids.get(domain_sid)
        if index is None or (domain := self.domains[index]) is None:
            return
        acls = self.acls_of_domain.get(domain_sid)
        # Small (≤ 100 addresses per list): rebuilt whole, then swapped in.
        domain.allow = None if not acls else merged_ranges(self._networks(acls))

    def _networks(self, acls: Iterable[str]) -> Iterator[tuple[int, int]]:
        for acl_sid in acls:
            yield from self.addresses.get(acl_sid, {}).values()


def merged_ranges(networks: Iterable[tuple[int, int]]) -> bytes:
    """Networks as sorted, disjoint (first, last) address pairs, packed for `in_ranges`."""
    spans = sorted((network, network | (MAX32 >> prefix_len)) for network, prefix_len in networks)
    out: list[int] = []
    for first, last in spans:
        if out and first <= out[-1] + 1:
            out[-1] = max(out[-1], last)
        else:
            out += (first, last)
    return array("I", out).tobytes()
