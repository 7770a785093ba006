"""Voice v1: IP records and source IP mappings, with their referential rules."""

from __future__ import annotations

from ipaddress import IPv4Network

from msgspec.structs import replace

from ..core import sids, validation
from ..core.errors import Conflict, InvalidParameter, MissingParameter, NotFound
from ..core.events import Event, MappingDeleted, MappingSaved
from ..core.models import Account, IpRecord, M, SipDomain, SourceIpMapping
from ..core.paging import Page, PageRequest
from ..store.base import Tx
from .context import Context


def _cidr(network: int, prefix_len: int) -> str:
    return str(IPv4Network((network, prefix_len)))


class VoiceService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- IP records ---------------------------------------------------------------

    async def create_ip_record(
        self,
        account_sid: str,
        ip_address: str | None,
        cidr_prefix_length: int | None,
        friendly_name: str | None,
    ) -> IpRecord:
        if ip_address is None:
            raise MissingParameter("ip_address")
        address = validation.ipv4_address("ip_address", ip_address)
        length = validation.prefix_length("cidr_prefix_length", cidr_prefix_length or 0)
        name = None
        if friendly_name is not None:
            name = validation.text("friendly_name", friendly_name, max_length=255)
        now = self.ctx.clock()
        record = IpRecord(
            self.ctx.new_sid(sids.IP_RECORD), account_sid, name, address, length, now, now
        )
        await self.ctx.store.write(lambda tx: tx.insert(record))
        return record

    async def get_ip_record(self, account_sid: str, sid: str) -> IpRecord:
        return await self.ctx.get_owned(IpRecord, sids.IP_RECORD, sid, account_sid=account_sid)

    async def list_ip_records(self, account_sid: str, request: PageRequest) -> Page[IpRecord]:
        return await self.ctx.store.read(
            lambda tx: tx.page(IpRecord, request, account_sid=account_sid)
        )

    async def update_ip_record(
        self, account_sid: str, sid: str, friendly_name: str | None
    ) -> IpRecord:
        record = await self.get_ip_record(account_sid, sid)
        name = record.friendly_name
        if friendly_name is not None:
            name = validation.text("friendly_name", friendly_name, max_length=255)
        now = self.ctx.clock()

        def run(tx: Tx) -> IpRecord:
            current = tx.get(IpRecord, record.sid)
            if current is None:
                raise NotFound()
            updated = replace(current, friendly_name=name, date_updated=now)
            tx.update(updated)
            return updated

        return await self.ctx.store.write(run)

    async def delete_ip_record(self, account_sid: str, sid: str) -> None:
        record = await self.get_ip_record(account_sid, sid)

        def run(tx: Tx) -> list[Event]:
            # The record's mapping goes with it, in the same transaction.
            mappings = tx.find(SourceIpMapping, ip_record_sid=record.sid)
            tx.delete(SourceIpMapping, ip_record_sid=record.sid)
            if tx.delete(IpRecord, sid=record.sid) == 0:
                raise NotFound()
            return [MappingDeleted(m) for m in mappings]

        self.ctx.publisher.publish(await self.ctx.store.write(run))

    # -- source IP mappings ----------------------------------------------------------

    @staticmethod
    def _reference(
        tx: Tx, account_sid: str, field: str, value: str | None, model: type[M], prefix: str
    ) -> M:
        """The caller's row a SID parameter names, or the parameter's error."""
        if value is None:
            raise MissingParameter(field)
        sid = sids.normalize(value, prefix)
        if sid is None:
            raise InvalidParameter(field, f"must be a SID starting with {prefix}")
        found = tx.get(model, sid, account_sid=account_sid)
        if found is None:
            raise InvalidParameter(field, f"{value} does not exist in this account")
        return found

    @staticmethod
    def _check_network_free(tx: Tx, mapping: SourceIpMapping) -> None:
        # No account may take traffic from another: outside the caller's family (a
        # top-level account and its subaccounts), no network may overlap another in
        # any way, or the longer prefix would capture the other's traffic. Nothing about
        # the other mapping is said: not its account, its SIDs or its network.
        account = tx.get(Account, mapping.account_sid)
        family = account.owner_account_sid if account is not None else mapping.account_sid
        if tx.overlaps_outside_family(mapping.network, mapping.prefix_len, family):
            raise Conflict(
                f"The network of IP record {mapping.ip_record_sid} overlaps a network "
                "mapped by another account"
            )
        # Recognition must be unambiguous: one network, one domain.
        for other in tx.find(
            SourceIpMapping, network=mapping.network, prefix_len=mapping.prefix_len
        ):
            if other.sid != mapping.sid and other.sip_domain_sid != mapping.sip_domain_sid:
                raise Conflict(
                    f"The network {_cidr(mapping.network, mapping.prefix_len)} is already "
                    "mapped to another SIP domain"
                )

    async def create_mapping(
        self, account_sid: str, ip_record_sid: str | None, sip_domain_sid: str | None
    ) -> SourceIpMapping:
        now = self.ctx.clock()
        new_sid = self.ctx.new_sid(sids.SOURCE_IP_MAPPING)

        def run(tx: Tx) -> SourceIpMapping:
            record = self._reference(
                tx, account_sid, "ip_record_sid", ip_record_sid, IpRecord, sids.IP_RECORD
            )
            domain = self._reference(
                tx, account_sid, "sip_domain_sid", sip_domain_sid, SipDomain, sids.SIP_DOMAIN
            )
            if record.cidr_prefix_length < self.ctx.min_mapping_prefix:
                raise InvalidParameter(
                    "ip_record_sid",
                    f"a network shorter than /{self.ctx.min_mapping_prefix} cannot be mapped",
                )
            existing = tx.find(SourceIpMapping, ip_record_sid=record.sid)
            if existing:
                raise Conflict(
                    f"IP record {record.sid} is already mapped by source IP mapping {existing[0].sid}"
                )
            mapping = SourceIpMapping(
                new_sid,
                account_sid,
                record.sid,
                domain.sid,
                record.network,
                record.cidr_prefix_length,
                now,
                now,
            )
            self._check_network_free(tx, mapping)
            tx.insert(mapping)
            return mapping

        mapping = await self.ctx.store.write(run)
        self.ctx.publisher.publish([MappingSaved(mapping)])
        return mapping

    async def get_mapping(self, account_sid: str, sid: str) -> SourceIpMapping:
        return await self.ctx.get_owned(
            SourceIpMapping, sids.SOURCE_IP_MAPPING, sid, account_sid=account_sid
        )

    async def list_mappings(self, account_sid: str, request: PageRequest) -> Page[SourceIpMapping]:
        return await self.ctx.store.read(
            lambda tx: tx.page(SourceIpMapping, request, account_sid=account_sid)
        )

    async def update_mapping(
        self, account_sid: str, sid: str, sip_domain_sid: str | None
    ) -> SourceIpMapping:
        mapping = await self.get_mapping(account_sid, sid)
        now = self.ctx.clock()

        def run(tx: Tx) -> SourceIpMapping:
            domain = self._reference(
                tx, account_sid, "sip_domain_sid", sip_domain_sid, SipDomain, sids.SIP_DOMAIN
            )
            current = tx.get(SourceIpMapping, mapping.sid)
            if current is None:
                raise NotFound()
            updated = replace(current, sip_domain_sid=domain.sid, date_updated=now)
            self._check_network_free(tx, updated)
            tx.update(updated)
            return updated

        updated = await self.ctx.store.write(run)
        self.ctx.publisher.publish([MappingSaved(updated)])
        return updated

    async def delete_mapping(self, account_sid: str, sid: str) -> None:
        mapping = await self.get_mapping(account_sid, sid)

        def run(tx: Tx) -> SourceIpMapping:
            current = tx.get(SourceIpMapping, mapping.sid)
            if current is None or tx.delete(SourceIpMapping, sid=mapping.sid) == 0:
                raise NotFound()
            return current

        deleted = await self.ctx.store.write(run)
        self.ctx.publisher.publish([MappingDeleted(deleted)])
