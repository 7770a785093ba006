"""Resource models: frozen values, free of any wire format.

msgspec Structs rather than frozen dataclasses: every row read from the store becomes
one of these, and a frozen dataclass's __init__ sets each field through
object.__setattr__ (measured: 1.4 µs for an IpRecord against 0.1 µs for the Struct,
which is as immutable and compares and hashes by value the same way). gc=False: they
hold only strings, numbers, booleans and datetimes, so they can be in no reference
cycle, and the collector need not walk the cached ones.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Address
from typing import TypeVar

from msgspec import Struct


class Account(Struct, frozen=True, gc=False):
    sid: str
    owner_account_sid: str  # its own SID for a top-level account, as Twilio shows it
    friendly_name: str
    status: str  # active | suspended | closed
    auth_token_hash: str
    date_created: datetime
    date_updated: datetime


class ApiKey(Struct, frozen=True, gc=False):
    sid: str
    account_sid: str
    friendly_name: str | None
    secret_hash: str
    date_created: datetime
    date_updated: datetime


def network_of(ip_address: str, prefix_len: int) -> int:
    """The integer network an IPv4 address falls in at `prefix_len` (host bits cleared)."""
    mask = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF
    return int(IPv4Address(ip_address)) & mask


class IpRecord(Struct, frozen=True, gc=False):
    sid: str
    account_sid: str
    friendly_name: str | None
    ip_address: str  # as given; not masked
    cidr_prefix_length: int
    date_created: datetime
    date_updated: datetime

    @property
    def network(self) -> int:
        return network_of(self.ip_address, self.cidr_prefix_length)


class SourceIpMapping(Struct, frozen=True, gc=False):
    sid: str
    account_sid: str
    ip_record_sid: str
    sip_domain_sid: str
    # The record's network, copied here so "one domain per network" is a plain
    # indexed lookup; records' addresses are immutable, so it cannot go stale.
    network: int
    prefix_len: int
    date_created: datetime
    date_updated: datetime


class SipDomain(Struct, frozen=True, gc=False):
    sid: str
    account_sid: str
    domain_name: str
    friendly_name: str | None
    voice_url: str | None
    voice_method: str
    voice_fallback_url: str | None
    voice_fallback_method: str
    voice_status_callback_url: str | None
    voice_status_callback_method: str
    sip_registration: bool
    emergency_calling_enabled: bool
    secure: bool
    byoc_trunk_sid: str | None
    emergency_caller_sid: str | None
    date_created: datetime
    date_updated: datetime


class IpAccessControlList(Struct, frozen=True, gc=False):
    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime


class IpAddress(Struct, frozen=True, gc=False):
    sid: str
    account_sid: str
    ip_access_control_list_sid: str
    friendly_name: str
    ip_address: str
    cidr_prefix_length: int
    date_created: datetime
    date_updated: datetime

    @property
    def network(self) -> int:
        return network_of(self.ip_address, self.cidr_prefix_length)


class AclMapping(Struct, frozen=True, gc=False):
    """An IP access control list mapped to a SIP domain for call authentication."""

    sid: str  # the mapped list's SID, as Twilio shows it
    account_sid: str
    domain_sid: str
    date_created: datetime
    date_updated: datetime


Model = (
    Account
    | ApiKey
    | IpRecord
    | SourceIpMapping
    | SipDomain
    | IpAccessControlList
    | IpAddress
    | AclMapping
)
M = TypeVar("M", bound=Model)
