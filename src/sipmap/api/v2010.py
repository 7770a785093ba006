"""API 2010-04-01 handlers: accounts, API keys and SIP domains."""

from __future__ import annotations

from typing import Any

from ..service.domains import BOOLEAN_DOMAIN_FIELDS, DOMAIN_FIELDS
from . import render
from .call import Call, Reply
from .params import wire_name

A = f"{render.API_PREFIX}/Accounts/{{AccountSid}}"  # the route every 2010 resource is under

# (field, its wire name, whether it is a boolean), worked out once.
_DOMAIN_PARAMS = tuple(
    (field, wire_name(field), field in BOOLEAN_DOMAIN_FIELDS) for field in DOMAIN_FIELDS
)


def _manage(call: Call) -> None:
    assert call.principal is not None
    call.service.accounts.check_may_manage(call.principal)


# -- accounts -----------------------------------------------------------------------


async def create_account(call: Call) -> Reply:
    _manage(call)
    form = await call.form()
    account, token = await call.service.accounts.create_account(
        call.principal, form.text("FriendlyName")
    )
    return Reply(201, render.account(account, token))


async def list_accounts(call: Call) -> Reply:
    _manage(call)
    assert call.principal is not None
    query = call.query()
    name, status = query.text("FriendlyName"), query.text("Status")
    page = await call.service.accounts.list_accounts(
        call.principal, call.page_request(), name, status
    )
    filters = [(k, v) for k, v in (("FriendlyName", name), ("Status", status)) if v is not None]
    return Reply(
        200,
        render.list_2010(
            "accounts", page, render.account, lambda a: a.sid, "/2010-04-01/Accounts.json", filters
        ),
    )


async def fetch_account(call: Call) -> Reply:
    _manage(call)
    return Reply(200, render.account(await call.path_account()))


async def update_account(call: Call) -> Reply:
    _manage(call)
    assert call.principal is not None
    form = await call.form()
    account = await call.service.accounts.update_account(
        call.principal, call.arg("AccountSid"), form.text("FriendlyName"), form.text("Status")
    )
    return Reply(200, render.account(account))


# -- API keys -------------------------------------------------------------------------


async def create_key(call: Call) -> Reply:
    _manage(call)
    account = await call.path_account()
    form = await call.form()
    key, secret = await call.service.accounts.create_key(account, form.text("FriendlyName"))
    return Reply(201, render.key(key, secret))


async def list_keys(call: Call) -> Reply:
    _manage(call)
    account = await call.path_account()
    page = await call.service.accounts.list_keys(account, call.page_request())
    uri = f"{render.account_uri(account.sid)}/Keys.json"
    return Reply(200, render.list_2010("keys", page, render.key, lambda k: k.sid, uri))


async def fetch_key(call: Call) -> Reply:
    _manage(call)
    account = await call.path_account()
    return Reply(200, render.key(await call.service.accounts.get_key(account, call.arg("Sid"))))


async def update_key(call: Call) -> Reply:
    _manage(call)
    account = await call.path_account()
    form = await call.form()
    key = await call.service.accounts.update_key(
        account, call.arg("Sid"), form.text("FriendlyName")
    )
    return Reply(200, render.key(key))


async def delete_key(call: Call) -> Reply:
    _manage(call)
    account = await call.path_account()
    await call.service.accounts.delete_key(account, call.arg("Sid"))
    return Reply(204)


# -- SIP domains ------------------------------------------------------------------------


async def _domain_changes(call: Call) -> dict[str, Any]:
    form = await call.form()
    changes: dict[str, Any] = {}
    for field, name, is_boolean in _DOMAIN_PARAMS:
        if name in form:
            changes[field] = form.boolean(name) if is_boolean else form.text(name)
    return changes


async def create_domain(call: Call) -> Reply:
    account = await call.path_account()
    view = await call.service.domains.create(account.sid, await _domain_changes(call))
    return Reply(201, render.sip_domain(view))


async def list_domains(call: Call) -> Reply:
    account = await call.path_account()
    page = await call.service.domains.list(account.sid, call.page_request())
    uri = f"{render.account_uri(account.sid)}/SIP/Domains.json"
    return Reply(
        200, render.list_2010("domains", page, render.sip_domain, lambda v: v.domain.sid, uri)
    )


async def fetch_domain(call: Call) -> Reply:
    account = await call.path_account()
    return Reply(
        200, render.sip_domain(await call.service.domains.get(account.sid, call.arg("Sid")))
    )


async def update_domain(call: Call) -> Reply:
    account = await call.path_account()
    changes = await _domain_changes(call)
    view = await call.service.domains.update(account.sid, call.arg("Sid"), changes)
    return Reply(200, render.sip_domain(view))


async def delete_domain(call: Call) -> Reply:
    account = await call.path_account()
    await call.service.domains.delete(account.sid, call.arg("Sid"))
    return Reply(204)


ROUTES = {
    "/2010-04-01/Accounts.json": {"GET": list_accounts, "POST": create_account},
    "/2010-04-01/Accounts/{AccountSid}.json": {"GET": fetch_account, "POST": update_account},
    f"{A}/Keys.json": {"GET": list_keys, "POST": create_key},
    f"{A}/Keys/{{Sid}}.json": {"GET": fetch_key, "POST": update_key, "DELETE": delete_key},
    f"{A}/SIP/Domains.json": {"GET": list_domains, "POST": create_domain},
    f"{A}/SIP/Domains/{{Sid}}.json": {
        "GET": fetch_domain,
        "POST": update_domain,
        "DELETE": delete_domain,
    },
}
