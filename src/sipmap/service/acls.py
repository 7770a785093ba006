"""IP access control lists, their IP addresses, and their mappings to SIP domains.

A mapping's SID is the mapped list's SID; one set of mappings per domain serves
both of Twilio's URLs for it (`IpAccessControlListMappings` and the older
`Auth/Calls/IpAccessControlListMappings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from msgspec.structs import replace

from ..core import sids, validation
from ..core.errors import (
    AclAlreadyMapped,
    InvalidParameter,
    LimitExceeded,
    MissingParameter,
    NotFound,
)
from ..core.events import (
    AclMappingDeleted,
    AclMappingSaved,
    Event,
    IpAddressDeleted,
    IpAddressSaved,
)
from ..core.models import AclMapping, IpAccessControlList, IpAddress, SipDomain
from ..core.paging import Page, PageRequest
from ..store.base import Tx
from .context import Context

MAX_LISTS_PER_ACCOUNT = 1000
MAX_ADDRESSES_PER_LIST = 100
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class AclMappingView:
    """A mapping with the mapped list's current name (joined when read, so renames show)."""

    mapping: AclMapping
    friendly_name: str


def _friendly_name(value: str | None) -> str:
    if not value:
        raise MissingParameter("friendly_name")
    return validation.text("friendly_name", value, max_length=MAX_NAME_LENGTH, required=True)


def _split_cidr(value: str) -> tuple[str, int | None]:
    """`a.b.c.d` or `a.b.c.d/n`: the address, and the prefix length the notation gives."""
    address, slash, suffix = value.partition("/")
    validation.ipv4_address("ip_address", address)
    if not slash:
        return address, None
    # In CIDR notation /0 means "every address", so it is refused rather than read as /32.
    if not (suffix.isascii() and suffix.isdigit() and len(suffix) <= 2 and 1 <= int(suffix) <= 32):
        raise InvalidParameter("ip_address", "the prefix length after / must be from 1 to 32")
    return address, int(suffix)


def _address_and_prefix(
    ip_address: str | None, cidr_prefix_length: int | None
) -> tuple[str | None, int | None]:
    """The address and prefix length a request sets; None where it leaves one unchanged."""
    address, notation = _split_cidr(ip_address) if ip_address is not None else (None, None)
    given = None
    if cidr_prefix_length is not None:
        given = validation.prefix_length("cidr_prefix_length", cidr_prefix_length)
    if notation is not None and given is not None and notation != given:
        raise InvalidParameter(
            "cidr_prefix_length",
            f"{given} conflicts with the prefix length /{notation} in the address",
        )
    return address, notation if notation is not None else given


def _list_sid(value: str) -> str:
    sid = sids.normalize(value, sids.IP_ACCESS_CONTROL_LIST)
    if sid is None:
        raise NotFound()
    return sid


def _domain_sid(value: str) -> str:
    sid = sids.normalize(value, sids.SIP_DOMAIN)
    if sid is None:
        raise NotFound()
    return sid


def _get_list(tx: Tx, account_sid: str, sid: str) -> IpAccessControlList:
    acl = tx.get(IpAccessControlList, sid, account_sid=account_sid)
    if acl is None:
        raise NotFound()
    return acl


def _check_domain(tx: Tx, account_sid: str, sid: str) -> None:
    if tx.get(SipDomain, sid, account_sid=account_sid) is None:
        raise NotFound()


class AclService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- lists ----------------------------------------------------------------------

    async def create_list(self, account_sid: str, friendly_name: str | None) -> IpAccessControlList:
        name = _friendly_name(friendly_name)
        now = self.ctx.clock()
        acl = IpAccessControlList(
            self.ctx.new_sid(sids.IP_ACCESS_CONTROL_LIST), account_sid, name, now, now
        )

        def run(tx: Tx) -> None:
            # Counted inside the write transaction, so racing creates cannot pass the limit.
            if tx.count(IpAccessControlList, account_sid=account_sid) >= MAX_LISTS_PER_ACCOUNT:
                raise LimitExceeded(
                    f"An account can have at most {MAX_LISTS_PER_ACCOUNT} IP access control lists"
                )
            tx.insert(acl)

        await self.ctx.store.write(run)
        return acl

    async def get_list(self, account_sid: str, sid: str) -> IpAccessControlList:
        canonical = _list_sid(sid)
        return await self.ctx.store.read(lambda tx: _get_list(tx, account_sid, canonical))

    async def list_lists(self, account_sid: str, request: PageRequest) -> Page[IpAccessControlList]:
        return await self.ctx.store.read(
            lambda tx: tx.page(IpAccessControlList, request, account_sid=account_sid)
        )

    async def update_list(
        self, account_sid: str, sid: str, friendly_name: str | None
    ) -> IpAccessControlList:
        acl = await self.get_list(account_sid, sid)
        name = _friendly_name(friendly_name)
        now = self.ctx.clock()

        def run(tx: Tx) -> IpAccessControlList:
            updated = replace(
                _get_list(tx, account_sid, acl.sid), friendly_name=name, date_updated=now
            )
            tx.update(updated)
            return updated

        return await self.ctx.store.write(run)

    async def delete_list(self, account_sid: str, sid: str) -> None:
        canonical = _list_sid(sid)

        def run(tx: Tx) -> list[Event]:
            _get_list(tx, account_sid, canonical)
            # Its mappings and addresses go with it, in the same transaction.
            mappings = tx.find(AclMapping, sid=canonical)
            addresses = tx.find(IpAddress, ip_access_control_list_sid=canonical)
            tx.delete(AclMapping, sid=canonical)
            tx.delete(IpAddress, ip_access_control_list_sid=canonical)
            tx.delete(IpAccessControlList, sid=canonical)
            return [
                *(AclMappingDeleted(m) for m in mappings),
                *(IpAddressDeleted(a) for a in addresses),
            ]

        self.ctx.publisher.publish(await self.ctx.store.write(run))

    # -- IP addresses -----------------------------------------------------------------

    async def create_address(
        self,
        account_sid: str,
        list_sid: str,
        friendly_name: str | None,
        ip_address: str | None,
        cidr_prefix_length: int | None,
    ) -> IpAddress:
        acl = await self.get_list(account_sid, list_sid)
        name = _friendly_name(friendly_name)
        if not ip_address:
            raise MissingParameter("ip_address")
        address, prefix = _address_and_prefix(ip_address, cidr_prefix_length)
        assert address is not None
        now = self.ctx.clock()
        record = IpAddress(
            self.ctx.new_sid(sids.IP_ADDRESS),
            account_sid,
            acl.sid,
            name,
            address,
            32 if prefix is None else prefix,
            now,
            now,
        )

        def run(tx: Tx) -> None:
            _get_list(tx, account_sid, acl.sid)
            count = tx.count(IpAddress, ip_access_control_list_sid=acl.sid)
            if count >= MAX_ADDRESSES_PER_LIST:
                raise LimitExceeded(
                    f"An IP access control list can have at most {MAX_ADDRESSES_PER_LIST} "
                    "IP addresses"
                )
            tx.insert(record)

        await self.ctx.store.write(run)
        self.ctx.publisher.publish([IpAddressSaved(record)])
        return record

    async def get_address(self, account_sid: str, list_sid: str, sid: str) -> IpAddress:
        return await self.ctx.get_owned(
            IpAddress,
            sids.IP_ADDRESS,
            sid,
            account_sid=account_sid,
            ip_access_control_list_sid=_list_sid(list_sid),
        )

    async def list_addresses(
        self, account_sid: str, list_sid: str, request: PageRequest
    ) -> Page[IpAddress]:
        acl_sid = _list_sid(list_sid)

        def run(tx: Tx) -> Page[IpAddress]:
            _get_list(tx, account_sid, acl_sid)
            return tx.page(IpAddress, request, ip_access_control_list_sid=acl_sid)

        return await self.ctx.store.read(run)

    async def update_address(
        self,
        account_sid: str,
        list_sid: str,
        sid: str,
        friendly_name: str | None,
        ip_address: str | None,
        cidr_prefix_length: int | None,
    ) -> IpAddress:
        record = await self.get_address(account_sid, list_sid, sid)
        name = None
        if friendly_name is not None:
            name = validation.text(
                "friendly_name", friendly_name, max_length=MAX_NAME_LENGTH, required=True
            )
        # An address without /n keeps the stored prefix length unless one is given.
        address, prefix = _address_and_prefix(ip_address, cidr_prefix_length)
        now = self.ctx.clock()

        def run(tx: Tx) -> IpAddress:
            current = tx.get(IpAddress, record.sid)
            if current is None:
                raise NotFound()
            updated = replace(
                current,
                friendly_name=current.friendly_name if name is None else name,
                ip_address=current.ip_address if address is None else address,
                cidr_prefix_length=current.cidr_prefix_length if prefix is None else prefix,
                date_updated=now,
            )
            tx.update(updated)
            return updated

        updated = await self.ctx.store.write(run)
        self.ctx.publisher.publish([IpAddressSaved(updated)])
        return updated

    async def delete_address(self, account_sid: str, list_sid: str, sid: str) -> None:
        record = await self.get_address(account_sid, list_sid, sid)

        def run(tx: Tx) -> IpAddress:
            current = tx.get(IpAddress, record.sid)
            if current is None or tx.delete(IpAddress, sid=record.sid) == 0:
                raise NotFound()
            return current

        deleted = await self.ctx.store.write(run)
        self.ctx.publisher.publish([IpAddressDeleted(deleted)])

    # -- mappings to SIP domains ----------------------------------------------------------

    async def create_mapping(
        self, account_sid: str, domain_sid: str, ip_access_control_list_sid: str | None
    ) -> AclMappingView:
        domain = _domain_sid(domain_sid)
        await self.ctx.store.read(lambda tx: _check_domain(tx, account_sid, domain))
        field = "ip_access_control_list_sid"
        if not ip_access_control_list_sid:
            raise MissingParameter(field)
        acl_sid = sids.normalize(ip_access_control_list_sid, sids.IP_ACCESS_CONTROL_LIST)
        if acl_sid is None:
            raise InvalidParameter(
                field, f"must be a SID starting with {sids.IP_ACCESS_CONTROL_LIST}"
            )
        now = self.ctx.clock()
        mapping = AclMapping(acl_sid, account_sid, domain, now, now)

        def run(tx: Tx) -> AclMappingView:
            _check_domain(tx, account_sid, domain)
            acl = tx.get(IpAccessControlList, acl_sid, account_sid=account_sid)
            if acl is None:
                raise InvalidParameter(
                    field, f"{ip_access_control_list_sid} does not exist in this account"
                )
            if tx.get(AclMapping, acl_sid, domain_sid=domain) is not None:
                raise AclAlreadyMapped()
            tx.insert(mapping)
            return AclMappingView(mapping, acl.friendly_name)

        view = await self.ctx.store.write(run)
        self.ctx.publisher.publish([AclMappingSaved(mapping)])
        return view

    async def get_mapping(self, account_sid: str, domain_sid: str, sid: str) -> AclMappingView:
        domain = _domain_sid(domain_sid)
        acl_sid = _list_sid(sid)

        def run(tx: Tx) -> AclMappingView:
            mapping = tx.get(AclMapping, acl_sid, domain_sid=domain, account_sid=account_sid)
            acl = tx.get(IpAccessControlList, acl_sid) if mapping else None
            if mapping is None or acl is None:
                raise NotFound()
            return AclMappingView(mapping, acl.friendly_name)

        return await self.ctx.store.read(run)

    async def list_mappings(
        self, account_sid: str, domain_sid: str, request: PageRequest
    ) -> Page[AclMappingView]:
        domain = _domain_sid(domain_sid)

        def run(tx: Tx) -> Page[AclMappingView]:
            _check_domain(tx, account_sid, domain)
            page = tx.page(AclMapping, request, account_sid=account_sid, domain_sid=domain)
            names = {
                acl.sid: acl.friendly_name
                for acl in tx.find(IpAccessControlList, sid=[m.sid for m in page.items])
            }
            views = [AclMappingView(m, names[m.sid]) for m in page.items]
            return Page(views, page.request, page.has_next)

        return await self.ctx.store.read(run)

    async def delete_mapping(self, account_sid: str, domain_sid: str, sid: str) -> None:
        domain = _domain_sid(domain_sid)
        acl_sid = _list_sid(sid)

        def run(tx: Tx) -> AclMapping:
            mapping = tx.get(AclMapping, acl_sid, domain_sid=domain, account_sid=account_sid)
            if mapping is None:
                raise NotFound()
            tx.delete(AclMapping, domain_sid=domain, sid=acl_sid)
            return mapping

        deleted = await self.ctx.store.write(run)
        self.ctx.publisher.publish([AclMappingDeleted(deleted)])
