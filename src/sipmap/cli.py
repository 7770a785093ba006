"""The `sipmap` command: serve the API, and thin operator commands over the service layer."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import __version__
from .core import sids
from .core.errors import ServiceError
from .core.paging import MAX_PAGE_SIZE, PageRequest
from .service import Context, Principal, Service
from .settings import ENVIRONMENT, SERVE_SETTINGS, Setting
from .store.open import open_store

DB_SETTING = next(s for s in SERVE_SETTINGS if s.name == "db")


def _add(parser: argparse.ArgumentParser, setting: Setting) -> None:
    if isinstance(setting.default, bool):
        parser.add_argument(setting.flag, dest=setting.name, action="store_true", help=setting.help)
        return
    kind = int if isinstance(setting.default, int) else str
    parser.add_argument(
        setting.flag,
        dest=setting.name,
        type=kind,
        default=setting.default,
        choices=setting.choices,
        help=f"{setting.help} (default: {setting.default})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sipmap",
        description="Twilio-compatible Source IP Mappings: REST API, recognition and SIP edge.",
        epilog="Environment: " + "; ".join(f"{s.env}: {s.help}" for s in ENVIRONMENT),
    )
    parser.add_argument("--version", action="version", version=f"sipmap {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="Run the HTTP API and the SIP edge on the SQLite or PostgreSQL store --db names.",
    )
    for setting in SERVE_SETTINGS:
        _add(serve, setting)

    account = commands.add_parser("accounts", help="Create and list accounts.")
    account_cmds = account.add_subparsers(dest="action", required=True)
    create = account_cmds.add_parser(
        "create", help="Create an account; prints its auth token once."
    )
    create.add_argument("--friendly-name", default=None, help="Name of the account.")
    create.add_argument(
        "--owner", default=None, help="SID of a top-level account to create a subaccount of."
    )
    account_cmds.add_parser("list", help="List top-level accounts and their subaccounts.")

    keys = commands.add_parser("keys", help="Create and list API keys.")
    key_cmds = keys.add_subparsers(dest="action", required=True)
    key_create = key_cmds.add_parser("create", help="Create an API key; prints its secret once.")
    key_create.add_argument("--account", required=True, help="SID of the key's account.")
    key_create.add_argument("--friendly-name", default=None, help="Name of the key.")
    key_list = key_cmds.add_parser("list", help="List an account's API keys.")
    key_list.add_argument("--account", required=True, help="SID of the account.")

    listing = commands.add_parser("list", help="List an account's resources as JSON lines.")
    listing.add_argument("resource", choices=sorted(LISTS), help="What to list.")
    listing.add_argument("--account", required=True, help="SID of the account.")

    recognize = commands.add_parser(
        "recognize", help="Recognise a SIP request by source IP (and Request-URI); prints JSON."
    )
    recognize.add_argument("source_ip", metavar="SOURCE_IP", help="The request's source address.")
    recognize.add_argument("--request-uri", default=None, help="The request's Request-URI.")

    for sub in (create, account_cmds.choices["list"], key_create, key_list, listing, recognize):
        _add(sub, DB_SETTING)
    return parser


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, default=str))


def _json(model: Any) -> dict[str, Any]:
    fields = getattr(type(model), "__dataclass_fields__", {})
    return {name: getattr(model, name) for name in fields if not name.endswith("_hash")}


def _canonical_sids(args: argparse.Namespace) -> argparse.Namespace:
    """--account and --owner in canonical form: SIDs' hex is case-insensitive, as in the API."""
    for name in ("account", "owner"):
        value = getattr(args, name, None)
        if value is not None:
            sid = sids.normalize(value, sids.ACCOUNT)
            if sid is None:
                raise ServiceError(f"--{name} must be AC followed by 32 hex digits")
            setattr(args, name, sid)
    return args


async def _each_page(fetch: Callable[[PageRequest], Awaitable[Any]]) -> list[Any]:
    items: list[Any] = []
    request = PageRequest(MAX_PAGE_SIZE)
    while True:
        page = await fetch(request)
        items.extend(page.items)
        if not page.has_next:
            return items
        last = page.items[-1]
        sid = last.domain.sid if hasattr(last, "domain") else last.sid
        request = PageRequest(MAX_PAGE_SIZE, request.page + 1, after_sid=sid)


LISTS: dict[str, Callable[[Service, str], Callable[[PageRequest], Awaitable[Any]]]] = {
    "ip-records": lambda s, a: lambda r: s.voice.list_ip_records(a, r),
    "source-ip-mappings": lambda s, a: lambda r: s.voice.list_mappings(a, r),
    "domains": lambda s, a: lambda r: s.domains.list(a, r),
}


async def _operate(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    service = Service(Context(store))
    try:
        if args.command == "recognize":
            service.recognizer.load(store)
            _print(service.recognizer.recognize(args.source_ip, args.request_uri).as_dict())
        elif args.command == "accounts" and args.action == "create":
            principal = None
            if args.owner:
                owner = await service.accounts.get_account(args.owner)
                if owner.owner_account_sid != owner.sid:
                    print("error: --owner must be a top-level account", file=sys.stderr)
                    return 2
                principal = Principal(owner.sid, False)
            account, token = await service.accounts.create_account(principal, args.friendly_name)
            _print({**_json(account), "auth_token": token})
        elif args.command == "accounts":
            for account in await service.accounts.all_accounts():
                _print(_json(account))
        elif args.command == "keys":
            account = await service.accounts.get_account(args.account)
            if args.action == "create":
                key, secret = await service.accounts.create_key(account, args.friendly_name)
                _print({**_json(key), "secret": secret})
            else:
                for key in await _each_page(lambda r: service.accounts.list_keys(account, r)):
                    _print(_json(key))
        elif args.command == "list":
            for item in await _each_page(LISTS[args.resource](service, args.account)):
                if hasattr(item, "domain"):
                    _print({**_json(item.domain), "ip_acl_mapped": item.ip_acl_mapped})
                else:
                    _print(_json(item))
        return 0
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .server import serve

        env = {s.name: os.environ.get(s.env or "") or None for s in ENVIRONMENT}
        return serve(args, **env)
    try:
        return asyncio.run(_operate(_canonical_sids(args)))
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
