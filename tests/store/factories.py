"""Models for the store tests, numbered: `record(3)` is IL00…03 of the top account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from msgspec.structs import replace

from sipmap.core.models import Account, IpAccessControlList, IpRecord, SipDomain, SourceIpMapping

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


TOP = Account(sid("AC", 1), sid("AC", 1), "top", "active", "a" * 64, T0, T0)
SUB = Account(sid("AC", 2), sid("AC", 1), "sub", "suspended", "b" * 64, T0, T0)


def record(n: int, account: Account = TOP, **changes: Any) -> IpRecord:
    base = IpRecord(sid("IL", n), account.sid, f"r{n}", f"10.0.{n % 256}.1", 24, T0, T0)
    return replace(base, **changes)


def domain(n: int, account: Account = TOP, **changes: Any) -> SipDomain:
    base = SipDomain(
        sid=sid("SD", n),
        account_sid=account.sid,
        domain_name=f"d{n}.sip.twilio.com",
        friendly_name=None,
        voice_url=None,
        voice_method="POST",
        voice_fallback_url="https://example.com/fallback",
        voice_fallback_method="GET",
        voice_status_callback_url=None,
        voice_status_callback_method="POST",
        sip_registration=False,
        emergency_calling_enabled=True,
        secure=False,
        byoc_trunk_sid=None,
        emergency_caller_sid=sid("PN", n),
        date_created=T0,
        date_updated=T0,
    )
    return replace(base, **changes)


def mapping(n: int, rec: IpRecord, dom: SipDomain) -> SourceIpMapping:
    return SourceIpMapping(sid("IB", n), rec.account_sid, rec.sid, dom.sid, rec.network, 24, T0, T0)


def acl(n: int, account: Account = TOP) -> IpAccessControlList:
    return IpAccessControlList(sid("AL", n), account.sid, f"acl{n}", T0, T0)
