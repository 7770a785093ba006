"""The recogniser: which SIP domain a request belongs to, and whether its IP ACLs allow it.

Rules (CONTRACT §6): a Request-URI host naming a SIP domain wins; otherwise the
domain mapped to the longest IP-record network containing the source IP; then a
domain whose account is suspended or closed accepts nothing, and otherwise the
source IP must be inside an address of one of the domain's mapped IP ACLs.

Consistency strategy: the service publishes every committed change here before
it acknowledges the write, so a later recognition in this process reflects it.
Changes are applied on the event loop thread, one small step at a time, in an
order that keeps every intermediate state valid for a reader in any thread
(state.py). A full build (`load` at start-up, `rebuild` while serving) reads the
store in one pass of plain tuples and builds a new `State` off the loop; `rebuild`
replays the changes published meanwhile onto it before swapping it in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from msgspec import Struct
from msgspec.structs import asdict

from ..core.events import Event
from ..core.models import (
    Account,
    AclMapping,
    IpAddress,
    SipDomain,
    SourceIpMapping,
    network_of,
)
from ..store.base import Store, Tx
from ._lpm import in_ranges
from .lpm import parse_source_ip
from .state import Domain, State
from .uri import request_uri_host

# Reasons, in the order the rules are tried.
INVALID_SOURCE_IP = "invalid_source_ip"
UNKNOWN_DOMAIN = "unknown_domain"  # the Request-URI names a host we don't serve
NO_SOURCE_MAPPING = "no_source_mapping"
ACCOUNT_NOT_ACTIVE = "account_not_active"  # the domain's account is suspended or closed
NO_ACL_MAPPED = "no_acl_mapped"  # a domain with no auth mapped accepts nothing
NOT_IN_ACL = "source_ip_not_in_acl"
ALLOWED = "allowed_by_acl"

# Changes published during a rebuild are replayed this many at a time between
# turns of the event loop, so a long backlog never holds the loop for long.
REPLAY_BATCH = 256


class Recognition(Struct, frozen=True, gc=False):
    """One answer. A msgspec Struct rather than a frozen dataclass, as the models are:
    one is made for every request recognised, and a frozen dataclass sets each of
    these ten fields through object.__setattr__ (measured: 1.08 µs to make one,
    against 0.07 µs for the Struct, which is as immutable and compares the same)."""

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
        return asdict(self)


class Recognizer:
    def __init__(self) -> None:
        self._state = State()
        # Bumped by every change to what `recognize` answers, so that a cache of its
        # answers (the SIP edge's fast path) knows when to forget them.
        self.generation = 0
        self._replay: list[Event] | None = None  # changes published during a rebuild
        self._rebuilding = asyncio.Lock()

    # -- lookups ------------------------------------------------------------------

    def recognize(self, source_ip: str, request_uri: str | None = None) -> Recognition:
        state = self._state
        value = state.table.lookup(source_ip)
        # The source as the ACL check takes it; None for IPv6, which no list can hold.
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
            return _decide(state, domain, source, "request_uri", None, None, None)
        if value >= 0:
            # The slot was filled before the table pointed at it (state.py).
            mapping_sid, record_sid, network, index = state.routes.get(value)
            found = state.domains[index]
            if found is not None:
                return _decide(state, found, source, "source_ip", record_sid, mapping_sid, network)
        return _unmatched(host)

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
        accounts: Iterable[Account] = (),
    ) -> Recognizer:
        """A recognizer over these rows; mappings in creation order, as the store lists them."""
        state = State()
        for account in accounts:
            state.set_account_status(account.sid, account.status)
        for domain in domains:
            state.save_domain(domain.sid, domain.account_sid, domain.domain_name)
        state.load_mappings(
            (m.sid, m.ip_record_sid, m.sip_domain_sid, m.network, m.prefix_len) for m in mappings
        )
        for link in acl_mappings:
            state.link(link.sid, link.domain_sid)
        for a in addresses:
            state.add_address(a.ip_access_control_list_sid, a.sid, a.network, a.cidr_prefix_length)
        state.refresh_all_acls()
        recognizer = cls()
        recognizer._state = state
        return recognizer

    def load(self, store: Store) -> None:
        """Build everything from the store's current content (blocking; run off the loop).

        For start-up, before anything publishes: a change published while it runs
        would be lost. While serving, use `rebuild`."""
        self._state = store.read_blocking(read_state)
        self.generation += 1

    async def rebuild(self, store: Store) -> None:
        """Replace the whole state with one built from the store, while serving.

        For a node whose view may have drifted from the store (e.g. its change feed
        was trimmed). The store is read and the new state built in a worker thread;
        meanwhile recognition keeps answering from the current state, and every
        change published is applied to it as usual and also kept. Once the build is
        done, the kept changes are replayed onto the new state (in batches between
        turns of the event loop), then the new state is swapped in at once. Replaying
        a change the store snapshot already contained is harmless: every event sets
        a row's state, so replaying the sequence in order ends where it should.

        Call it on the event loop thread, where `publish` is called; concurrent calls
        run one after the other.
        """
        async with self._rebuilding:
            self._replay = []
            try:
                state = await asyncio.to_thread(store.read_blocking, read_state)
                while self._replay:
                    batch = self._replay[:REPLAY_BATCH]
                    del self._replay[:REPLAY_BATCH]
                    state.apply(batch)
                    if self._replay:
                        await asyncio.sleep(0)
                # No await since the backlog was found empty: nothing published in between.
                retired = [self._state]
                self._state = state
                self.generation += 1
            finally:
                self._replay = None
            # Freed in a thread (the C parts without the GIL): at a million mappings,
            # giving back their memory takes the kernel tens of milliseconds.
            await asyncio.to_thread(retired.clear)

    def adopt(self, state: State) -> None:
        """Serve from `state`, built off the loop (`read_state`): one assignment, so a
        reader sees the old state or the new one. For a rebuild by a change feed that
        publishes nothing between the state's snapshot and this call."""
        self._state = state
        self.generation += 1

    # -- changes ----------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        """Apply committed changes (on the event loop thread)."""
        self.generation += 1  # first: even a change that fails half-way is a change
        self._state.apply(events)
        if self._replay is not None:
            self._replay.extend(events)


def read_state(tx: Tx) -> State:
    """One pass over the rows recognition needs, as plain tuples (no models)."""
    state = State()
    for sid, status in tx.scan(Account, ("sid", "status")):
        if status != "active":
            state.set_account_status(sid, status)
    for sid, account_sid, name in tx.scan(SipDomain, ("sid", "account_sid", "domain_name")):
        state.save_domain(sid, account_sid, name)
    columns = ("sid", "ip_record_sid", "sip_domain_sid", "network", "prefix_len")
    state.load_mappings(tx.scan(SourceIpMapping, columns))
    for acl_sid, domain_sid in tx.scan(AclMapping, ("sid", "domain_sid")):
        state.link(acl_sid, domain_sid)
    address_columns = ("ip_access_control_list_sid", "sid", "ip_address", "cidr_prefix_length")
    for acl_sid, sid, ip_address, prefix_len in tx.scan(IpAddress, address_columns):
        state.add_address(acl_sid, sid, network_of(ip_address, prefix_len), prefix_len)
    state.refresh_all_acls()
    return state


def _decide(
    state: State,
    domain: Domain,
    source: str | int | None,
    by: str,
    record_sid: str | None,
    mapping_sid: str | None,
    network: str | None,
) -> Recognition:
    allow = domain.allow
    if domain.account_sid in state.inactive_accounts:
        allowed, reason = False, ACCOUNT_NOT_ACTIVE
    elif allow is None:
        allowed, reason = False, NO_ACL_MAPPED
    elif source is not None and in_ranges(allow, source) == 1:
        allowed, reason = True, ALLOWED
    else:
        allowed, reason = False, NOT_IN_ACL
    return Recognition(
        True,
        allowed,
        reason,
        by,
        domain.sid,
        domain.name,
        domain.account_sid,
        record_sid,
        mapping_sid,
        network,
    )


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
