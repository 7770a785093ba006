"""API 2010-04-01 handlers and JSON for IP access control lists, their IP addresses and
their SIP domain mappings (both Twilio's URL for them and the older `Auth/Calls` one).
"""

from __future__ import annotations

from collections.abc import Callable

from ..core import sids
from ..core.models import IpAccessControlList, IpAddress
from ..service.acls import AclMappingView
from . import render
from .call import Call, Handler, Reply
from .params import PREFIX_RULE
from .render import Json, domain_uri, rfc2822
from .v2010 import A

LISTS = f"{A}/SIP/IpAccessControlLists"
ADDRESSES = f"{LISTS}/{{IpAccessControlListSid}}/IpAddresses"


# -- rendering (field order as in Twilio's examples) ------------------------------------


def _canonical(sid: str, prefix: str) -> str:
    """A path SID as we show it (the path may spell its hex in upper case)."""
    return sids.normalize(sid, prefix) or sid


def _list_uri(account_sid: str, sid: str) -> str:
    return f"{render.account_uri(account_sid)}/SIP/IpAccessControlLists/{sid}"


def ip_access_control_list(acl: IpAccessControlList) -> Json:
    base = _list_uri(acl.account_sid, acl.sid)
    return {
        "account_sid": acl.account_sid,
        "date_created": rfc2822(acl.date_created),
        "date_updated": rfc2822(acl.date_updated),
        "friendly_name": acl.friendly_name,
        "sid": acl.sid,
        "subresource_uris": {"ip_addresses": f"{base}/IpAddresses.json"},
        "uri": f"{base}.json",
    }


def ip_address(record: IpAddress) -> Json:
    base = _list_uri(record.account_sid, record.ip_access_control_list_sid)
    return {
        "account_sid": record.account_sid,
        "date_created": rfc2822(record.date_created),
        "date_updated": rfc2822(record.date_updated),
        "friendly_name": record.friendly_name,
        "ip_access_control_list_sid": record.ip_access_control_list_sid,
        "ip_address": record.ip_address,
        "cidr_prefix_length": record.cidr_prefix_length,
        "sid": record.sid,
        "uri": f"{base}/IpAddresses/{record.sid}.json",
    }


def acl_mapping(view: AclMappingView) -> Json:
    m = view.mapping
    return {
        "account_sid": m.account_sid,
        "date_created": rfc2822(m.date_created),
        "date_updated": rfc2822(m.date_updated),
        "friendly_name": view.friendly_name,
        "domain_sid": m.domain_sid,
        "sid": m.sid,
        "uri": f"{domain_uri(m.account_sid, m.domain_sid)}/IpAccessControlListMappings/{m.sid}.json",
    }


def auth_calls_acl_mapping(view: AclMappingView) -> Json:
    m = view.mapping
    return {
        "account_sid": m.account_sid,
        "date_created": rfc2822(m.date_created),
        "date_updated": rfc2822(m.date_updated),
        "friendly_name": view.friendly_name,
        "sid": m.sid,
    }


# -- lists ---------------------------------------------------------------------------------


async def create_list(call: Call) -> Reply:
    account = await call.path_account()
    form = await call.form()
    acl = await call.service.acls.create_list(account.sid, form.text("FriendlyName"))
    return Reply(201, ip_access_control_list(acl))


async def list_lists(call: Call) -> Reply:
    account = await call.path_account()
    page = await call.service.acls.list_lists(account.sid, call.page_request())
    uri = f"{render.account_uri(account.sid)}/SIP/IpAccessControlLists.json"
    return Reply(
        200,
        render.list_2010(
            "ip_access_control_lists", page, ip_access_control_list, lambda a: a.sid, uri
        ),
    )


async def fetch_list(call: Call) -> Reply:
    account = await call.path_account()
    acl = await call.service.acls.get_list(account.sid, call.arg("Sid"))
    return Reply(200, ip_access_control_list(acl))


async def update_list(call: Call) -> Reply:
    account = await call.path_account()
    form = await call.form()
    acl = await call.service.acls.update_list(
        account.sid, call.arg("Sid"), form.text("FriendlyName")
    )
    return Reply(200, ip_access_control_list(acl))


async def delete_list(call: Call) -> Reply:
    account = await call.path_account()
    await call.service.acls.delete_list(account.sid, call.arg("Sid"))
    return Reply(204)


# -- IP addresses ----------------------------------------------------------------------------


async def create_address(call: Call) -> Reply:
    account = await call.path_account()
    form = await call.form()
    record = await call.service.acls.create_address(
        account.sid,
        call.arg("IpAccessControlListSid"),
        form.text("FriendlyName"),
        form.text("IpAddress"),
        form.integer("CidrPrefixLength", PREFIX_RULE),
    )
    return Reply(201, ip_address(record))


async def list_addresses(call: Call) -> Reply:
    account = await call.path_account()
    list_sid = call.arg("IpAccessControlListSid")
    page = await call.service.acls.list_addresses(account.sid, list_sid, call.page_request())
    uri = f"{_list_uri(account.sid, _canonical(list_sid, sids.IP_ACCESS_CONTROL_LIST))}/IpAddresses.json"
    return Reply(200, render.list_2010("ip_addresses", page, ip_address, lambda r: r.sid, uri))


async def fetch_address(call: Call) -> Reply:
    account = await call.path_account()
    record = await call.service.acls.get_address(
        account.sid, call.arg("IpAccessControlListSid"), call.arg("Sid")
    )
    return Reply(200, ip_address(record))


async def update_address(call: Call) -> Reply:
    account = await call.path_account()
    form = await call.form()
    record = await call.service.acls.update_address(
        account.sid,
        call.arg("IpAccessControlListSid"),
        call.arg("Sid"),
        form.text("FriendlyName"),
        form.text("IpAddress"),
        form.integer("CidrPrefixLength", PREFIX_RULE),
    )
    return Reply(200, ip_address(record))


async def delete_address(call: Call) -> Reply:
    account = await call.path_account()
    await call.service.acls.delete_address(
        account.sid, call.arg("IpAccessControlListSid"), call.arg("Sid")
    )
    return Reply(204)


# -- domain mappings: one set of mappings, two URLs ---------------------------------------------


def _mapping_routes(
    tail: str, key: str, render_one: Callable[[AclMappingView], Json]
) -> dict[str, dict[str, Handler]]:
    """The four mapping operations at `SIP/Domains/{DomainSid}/<tail>`."""

    async def create(call: Call) -> Reply:
        account = await call.path_account()
        form = await call.form()
        view = await call.service.acls.create_mapping(
            account.sid, call.arg("DomainSid"), form.text("IpAccessControlListSid")
        )
        return Reply(201, render_one(view))

    async def list_all(call: Call) -> Reply:
        account = await call.path_account()
        domain_sid = call.arg("DomainSid")
        page = await call.service.acls.list_mappings(account.sid, domain_sid, call.page_request())
        uri = f"{domain_uri(account.sid, _canonical(domain_sid, sids.SIP_DOMAIN))}/{tail}.json"
        return Reply(200, render.list_2010(key, page, render_one, lambda v: v.mapping.sid, uri))

    async def fetch(call: Call) -> Reply:
        account = await call.path_account()
        view = await call.service.acls.get_mapping(
            account.sid, call.arg("DomainSid"), call.arg("Sid")
        )
        return Reply(200, render_one(view))

    async def delete(call: Call) -> Reply:
        account = await call.path_account()
        await call.service.acls.delete_mapping(account.sid, call.arg("DomainSid"), call.arg("Sid"))
        return Reply(204)

    base = f"{A}/SIP/Domains/{{DomainSid}}/{tail}"
    return {
        f"{base}.json": {"GET": list_all, "POST": create},
        f"{base}/{{Sid}}.json": {"GET": fetch, "DELETE": delete},
    }


ROUTES: dict[str, dict[str, Handler]] = {
    f"{LISTS}.json": {"GET": list_lists, "POST": create_list},
    f"{LISTS}/{{Sid}}.json": {"GET": fetch_list, "POST": update_list, "DELETE": delete_list},
    f"{ADDRESSES}.json": {"GET": list_addresses, "POST": create_address},
    f"{ADDRESSES}/{{Sid}}.json": {
        "GET": fetch_address,
        "POST": update_address,
        "DELETE": delete_address,
    },
    **_mapping_routes(
        "IpAccessControlListMappings", "ip_access_control_list_mappings", acl_mapping
    ),
    # Twilio's older spelling of call authentication: the same mappings, a shorter JSON.
    **_mapping_routes("Auth/Calls/IpAccessControlListMappings", "contents", auth_calls_acl_mapping),
}
