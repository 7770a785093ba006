"""SIP domains: create, read, update, delete; deleting one removes what references it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from msgspec.structs import replace

from ..core import sids, validation
from ..core.errors import DomainNameUnavailable, InvalidParameter, MissingParameter, NotFound
from ..core.events import AclMappingDeleted, DomainDeleted, DomainSaved, Event, MappingDeleted
from ..core.models import AclMapping, SipDomain, SourceIpMapping
from ..core.paging import Page, PageRequest
from ..store.base import Tx
from .context import Context


@dataclass(frozen=True, slots=True)
class DomainView:
    """A domain with what is derived from its mappings."""

    domain: SipDomain
    ip_acl_mapped: bool  # an IP access control list authenticates its calls


def _sid_field(prefix: str) -> Callable[[str, Any], str | None]:
    def check(field: str, value: Any) -> str | None:
        if value == "":
            return None
        sid = sids.normalize(str(value), prefix)
        if sid is None:
            raise InvalidParameter(field, f"must be a SID starting with {prefix}")
        return sid

    return check


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameter(field, "must be true or false")
    return value


# Every settable field, with its check. Strings from the wire; booleans already parsed.
_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "friendly_name": lambda f, v: validation.text(f, v, max_length=64) or None,
    "voice_url": validation.http_url,
    "voice_method": validation.http_method,
    "voice_fallback_url": validation.http_url,
    "voice_fallback_method": validation.http_method,
    "voice_status_callback_url": validation.http_url,
    "voice_status_callback_method": validation.http_method,
    "sip_registration": _bool,
    "emergency_calling_enabled": _bool,
    "secure": _bool,
    "byoc_trunk_sid": _sid_field("BY"),
    "emergency_caller_sid": _sid_field("PN"),
}

DOMAIN_FIELDS = ("domain_name", *_FIELDS)
BOOLEAN_DOMAIN_FIELDS = frozenset(name for name, check in _FIELDS.items() if check is _bool)


class DomainService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _clean(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "domain_name":
                clean[name] = validation.sip_domain_name(
                    name, value, suffix=self.ctx.sip_domain_suffix
                )
            elif name in _FIELDS:
                clean[name] = _FIELDS[name](name, value)
        return clean

    @staticmethod
    def _view(tx: Tx, domain: SipDomain) -> DomainView:
        mapped = tx.count(AclMapping, domain_sid=domain.sid) > 0
        return DomainView(domain, mapped)

    @staticmethod
    def _name_free(tx: Tx, name: str, sid: str) -> None:
        # Unique system-wide, like DNS names; checked inside the write transaction.
        for other in tx.find(SipDomain, domain_name=name):
            if other.sid != sid:
                raise DomainNameUnavailable(f"The domain name {name} is already in use")

    async def create(self, account_sid: str, changes: Mapping[str, Any]) -> DomainView:
        if not changes.get("domain_name"):
            raise MissingParameter("domain_name")
        clean = self._clean(changes)
        now = self.ctx.clock()
        defaults: dict[str, Any] = {
            "friendly_name": None,
            "voice_url": None,
            "voice_method": "POST",
            "voice_fallback_url": None,
            "voice_fallback_method": "POST",
            "voice_status_callback_url": None,
            "voice_status_callback_method": "POST",
            "sip_registration": False,
            "emergency_calling_enabled": False,
            "secure": False,
            "byoc_trunk_sid": None,
            "emergency_caller_sid": None,
        }
        domain = SipDomain(
            sid=self.ctx.new_sid(sids.SIP_DOMAIN),
            account_sid=account_sid,
            date_created=now,
            date_updated=now,
            **{**defaults, **clean},
        )

        def run(tx: Tx) -> DomainView:
            self._name_free(tx, domain.domain_name, domain.sid)
            tx.insert(domain)
            return DomainView(domain, False)

        view = await self.ctx.store.write(run)
        self.ctx.publisher.publish([DomainSaved(domain)])
        return view

    async def get(self, account_sid: str, sid: str) -> DomainView:
        canonical = sids.normalize(sid, sids.SIP_DOMAIN)

        def run(tx: Tx) -> DomainView | None:
            domain = tx.get(SipDomain, canonical, account_sid=account_sid) if canonical else None
            return self._view(tx, domain) if domain else None

        view = await self.ctx.store.read(run)
        if view is None:
            raise NotFound()
        return view

    async def list(self, account_sid: str, request: PageRequest) -> Page[DomainView]:
        def run(tx: Tx) -> Page[DomainView]:
            page = tx.page(SipDomain, request, account_sid=account_sid)
            views = [self._view(tx, d) for d in page.items]
            return Page(views, page.request, page.has_next)

        return await self.ctx.store.read(run)

    async def update(self, account_sid: str, sid: str, changes: Mapping[str, Any]) -> DomainView:
        view = await self.get(account_sid, sid)
        clean = self._clean(changes)
        now = self.ctx.clock()

        def run(tx: Tx) -> DomainView:
            current = tx.get(SipDomain, view.domain.sid)
            if current is None:
                raise NotFound()
            updated = replace(current, **clean, date_updated=now)
            self._name_free(tx, updated.domain_name, updated.sid)
            tx.update(updated)
            return self._view(tx, updated)

        result = await self.ctx.store.write(run)
        self.ctx.publisher.publish([DomainSaved(result.domain)])
        return result

    async def delete(self, account_sid: str, sid: str) -> None:
        view = await self.get(account_sid, sid)
        domain_sid = view.domain.sid

        def run(tx: Tx) -> list[Event]:
            # What references the domain goes with it, in the same transaction.
            mappings = tx.find(SourceIpMapping, sip_domain_sid=domain_sid)
            acl_mappings = tx.find(AclMapping, domain_sid=domain_sid)
            tx.delete(SourceIpMapping, sip_domain_sid=domain_sid)
            tx.delete(AclMapping, domain_sid=domain_sid)
            current = tx.get(SipDomain, domain_sid)
            if current is None or tx.delete(SipDomain, sid=domain_sid) == 0:
                raise NotFound()
            return [
                *(MappingDeleted(m) for m in mappings),
                *(AclMappingDeleted(m) for m in acl_mappings),
                DomainDeleted(current),
            ]

        self.ctx.publisher.publish(await self.ctx.store.write(run))
