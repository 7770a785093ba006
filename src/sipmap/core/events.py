"""Changes a committed write made that recognition must reflect."""

from __future__ import annotations

from dataclasses import dataclass

from .models import AclMapping, IpAddress, SipDomain, SourceIpMapping


@dataclass(frozen=True, slots=True)
class MappingSaved:
    mapping: SourceIpMapping


@dataclass(frozen=True, slots=True)
class MappingDeleted:
    mapping: SourceIpMapping


@dataclass(frozen=True, slots=True)
class DomainSaved:
    domain: SipDomain


@dataclass(frozen=True, slots=True)
class DomainDeleted:
    domain: SipDomain


@dataclass(frozen=True, slots=True)
class AclMappingSaved:
    mapping: AclMapping


@dataclass(frozen=True, slots=True)
class AclMappingDeleted:
    mapping: AclMapping


@dataclass(frozen=True, slots=True)
class IpAddressSaved:
    address: IpAddress


@dataclass(frozen=True, slots=True)
class IpAddressDeleted:
    address: IpAddress


@dataclass(frozen=True, slots=True)
class AccountStatusChanged:
    """An account was suspended, closed or reactivated (its domains follow it)."""

    account_sid: str
    status: str  # active | suspended | closed


@dataclass(frozen=True, slots=True)
class CredentialsChanged:
    """An account's auth token or an API key changed or went away (on PostgreSQL, from
    the change feed): credentials verified before it must be verified again."""

    sid: str  # the account's or the key's


Event = (
    MappingSaved
    | MappingDeleted
    | DomainSaved
    | DomainDeleted
    | AclMappingSaved
    | AclMappingDeleted
    | IpAddressSaved
    | IpAddressDeleted
    | AccountStatusChanged
    | CredentialsChanged
)
