"""Models → Twilio JSON, in the two dialects: Voice v1 and API 2010-04-01.

Field order follows Twilio's own responses; dates are ISO 8601 (v1) or RFC 2822 (2010).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote_plus

from ..core.models import Account, ApiKey, IpRecord, SourceIpMapping
from ..core.paging import Page, token_after, token_before
from ..service.domains import DomainView

T = TypeVar("T")
Json = dict[str, Any]

API_PREFIX = "/2010-04-01"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Dates repeat (every fetch of a row formats the same two), and a hit costs a
# fifth of formatting; memoising a pure function shares nothing else.
@lru_cache(maxsize=4096)
def iso(value: datetime) -> str:
    """'2015-07-20T17:27:10Z' (values are whole seconds, UTC)."""
    return value.isoformat()[:19] + "Z"


@lru_cache(maxsize=4096)
def rfc2822(value: datetime) -> str:
    """'Mon, 20 Jul 2015 17:27:10 +0000', whatever the process locale.

    Built by hand: email.utils.format_datetime costs four times as much, twice per
    item of every 2010 list page.
    """
    return (
        f"{_DAYS[value.weekday()]}, {value.day:02d} {_MONTHS[value.month - 1]} {value.year:04d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} +0000"
    )


# -- Voice v1 ---------------------------------------------------------------------


def ip_record(record: IpRecord, base_url: str) -> Json:
    return {
        "account_sid": record.account_sid,
        "sid": record.sid,
        "friendly_name": record.friendly_name,
        "ip_address": record.ip_address,
        "cidr_prefix_length": record.cidr_prefix_length,
        "date_created": iso(record.date_created),
        "date_updated": iso(record.date_updated),
        "url": f"{base_url}/v1/IpRecords/{record.sid}",
    }


def source_ip_mapping(mapping: SourceIpMapping, base_url: str) -> Json:
    return {
        "sid": mapping.sid,
        "ip_record_sid": mapping.ip_record_sid,
        "sip_domain_sid": mapping.sip_domain_sid,
        "date_created": iso(mapping.date_created),
        "date_updated": iso(mapping.date_updated),
        "url": f"{base_url}/v1/SourceIpMappings/{mapping.sid}",
    }


# What quote_plus leaves as it is: text made only of these needs no quoting.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


def query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """urlencode(pairs), byte for byte, for a fifth of its cost when nothing needs
    quoting (page sizes, numbers and tokens: three of these per list page)."""
    return "&".join(
        f"{k if _UNQUOTED.fullmatch(k) else quote_plus(k)}="
        f"{v if _UNQUOTED.fullmatch(v) else quote_plus(v)}"
        for k, v in pairs
    )


def _page_query(size: int, number: int, token: str | None, extra: Iterable[tuple[str, str]]) -> str:
    query = [*extra, ("PageSize", str(size)), ("Page", str(number))]
    if token is not None:
        query.append(("PageToken", token))
    return query_string(query)


def _links(
    page: Page[Any], sid_of: Callable[[Any], str], extra: list[tuple[str, str]]
) -> dict[str, str | None]:
    req = page.request
    links: dict[str, str | None] = {
        "first": _page_query(req.page_size, 0, None, extra),
        "self": _page_query(req.page_size, req.page, req.token, extra),
        "next": None,
        "previous": None,
    }
    if page.has_next and page.items:
        links["next"] = _page_query(
            req.page_size, req.page + 1, token_after(sid_of(page.items[-1])), extra
        )
    if page.has_previous:
        links["previous"] = _page_query(
            req.page_size, req.page - 1, token_before(sid_of(page.items[0])), extra
        )
    return links


def v1_list(
    key: str,
    page: Page[T],
    render: Callable[[T], Json],
    sid_of: Callable[[T], str],
    list_url: str,
) -> Json:
    links = _links(page, sid_of, [])
    return {
        key: [render(item) for item in page.items],
        "meta": {
            "page": page.request.page,
            "page_size": page.request.page_size,
            "first_page_url": f"{list_url}?{links['first']}",
            "previous_page_url": links["previous"] and f"{list_url}?{links['previous']}",
            "url": f"{list_url}?{links['self']}",
            "next_page_url": links["next"] and f"{list_url}?{links['next']}",
            "key": key,
        },
    }


# -- API 2010-04-01 -----------------------------------------------------------------


def list_2010(
    key: str,
    page: Page[T],
    render: Callable[[T], Json],
    sid_of: Callable[[T], str],
    list_uri: str,
    filters: list[tuple[str, str]] | None = None,
) -> Json:
    links = _links(page, sid_of, filters or [])
    start = page.request.page * page.request.page_size
    return {
        "first_page_uri": f"{list_uri}?{links['first']}",
        "end": start + len(page.items) - 1 if page.items else 0,
        "previous_page_uri": links["previous"] and f"{list_uri}?{links['previous']}",
        key: [render(item) for item in page.items],
        "uri": f"{list_uri}?{links['self']}",
        "page_size": page.request.page_size,
        "start": start,
        "next_page_uri": links["next"] and f"{list_uri}?{links['next']}",
        "page": page.request.page,
    }


def account_uri(account_sid: str) -> str:
    return f"{API_PREFIX}/Accounts/{account_sid}"


def account(record: Account, auth_token: str | None = None) -> Json:
    base = account_uri(record.sid)
    return {
        # Tokens are stored hashed: shown once, when the account is created.
        "auth_token": auth_token,
        "date_created": rfc2822(record.date_created),
        "date_updated": rfc2822(record.date_updated),
        "friendly_name": record.friendly_name,
        "owner_account_sid": record.owner_account_sid,
        "sid": record.sid,
        "status": record.status,
        # Only what sipmap serves: Twilio also lists sip (SIP.json), calls and the
        # rest, which would answer 404 here (docs/api-coverage.md).
        "subresource_uris": {"keys": f"{base}/Keys.json"},
        "type": "Full",
        "uri": f"{base}.json",
    }


def key(record: ApiKey, secret: str | None = None) -> Json:
    body: Json = {
        "sid": record.sid,
        "friendly_name": record.friendly_name,
        "date_created": rfc2822(record.date_created),
        "date_updated": rfc2822(record.date_updated),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def domain_uri(account_sid: str, sid: str) -> str:
    return f"{account_uri(account_sid)}/SIP/Domains/{sid}"


def sip_domain(view: DomainView) -> Json:
    d = view.domain
    base = domain_uri(d.account_sid, d.sid)
    return {
        "account_sid": d.account_sid,
        "api_version": "2010-04-01",
        # Twilio lists the kinds of auth mapped, comma-separated; sipmap has IP ACLs only.
        "auth_type": "IP_ACL" if view.ip_acl_mapped else "",
        "date_created": rfc2822(d.date_created),
        "date_updated": rfc2822(d.date_updated),
        "domain_name": d.domain_name,
        "friendly_name": d.friendly_name,
        "sip_registration": d.sip_registration,
        "sid": d.sid,
        "subresource_uris": {
            "ip_access_control_list_mappings": f"{base}/IpAccessControlListMappings.json",
        },
        "uri": f"{base}.json",
        "voice_fallback_method": d.voice_fallback_method,
        "voice_fallback_url": d.voice_fallback_url,
        "voice_method": d.voice_method,
        "voice_status_callback_method": d.voice_status_callback_method,
        "voice_status_callback_url": d.voice_status_callback_url,
        "voice_url": d.voice_url,
        "emergency_calling_enabled": d.emergency_calling_enabled,
        "secure": d.secure,
        "byoc_trunk_sid": d.byoc_trunk_sid,
        "emergency_caller_sid": d.emergency_caller_sid,
    }
