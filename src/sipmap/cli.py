"""The `sipmap` command: serve the API, and thin operator commands over the service layer.

An operator's mistake ends a command with one line on stderr and an exit code from
exits.py (documented in docs/configuration.md), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import __version__, keyfile
from .core import sids
from .core.errors import NotFound, ServiceError
from .core.paging import MAX_PAGE_SIZE, PageRequest
from .exits import Exit, Failure
from .recognize.recognizer import INVALID_SOURCE_IP
from .service import Context, Principal, Service
from .service.credentials import CredentialKeyMismatch
from .settings import ENVIRONMENT, SERVE_SETTINGS, Setting
from .store.base import Store
from .store.open import StoreUnavailable, open_store, shown

DB_SETTING = next(s for s in SERVE_SETTINGS if s.name == "db")
KEY_SETTING = next(s for s in SERVE_SETTINGS if s.name == "credential_key_file")


def _integer(setting: Setting) -> Callable[[str], int]:
    """An argparse type: an integer within the setting's range (argparse reports misses)."""
    low, high = setting.minimum, setting.maximum

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if low is not None and high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value} is more than {high}")
        return value

    return parse


def _positive(text: str) -> float:
    """An argparse type: a number of seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not more than 0")
    return value


def _add(parser: argparse.ArgumentParser, setting: Setting) -> None:
    if isinstance(setting.default, bool):
        parser.add_argument(setting.flag, dest=setting.name, action="store_true", help=setting.help)
        return
    kind: Callable[[str], Any] = str
    if isinstance(setting.default, int):
        kind = _integer(setting)
    elif isinstance(setting.default, float):
        kind = _positive
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
        epilog="Environment: "
        + "; ".join(f"{s.env}: {s.help}" for s in ENVIRONMENT)
        + " Exit codes: "
        + ", ".join(f"{code.value} {code.name.lower().replace('_', ' ')}" for code in Exit)
        + ".",
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
        "recognize",
        help="Recognise a SIP request by source IP (and Request-URI); prints JSON. "
        "Exits 0 if recognised and allowed, 1 if not, 2 on a usage error such as an invalid "
        "address (like grep).",
    )
    recognize.add_argument("source_ip", metavar="SOURCE_IP", help="The request's source address.")
    recognize.add_argument("--request-uri", default=None, help="The request's Request-URI.")

    for sub in (create, account_cmds.choices["list"], key_create, key_list, listing, recognize):
        _add(sub, DB_SETTING)
    for sub in (create, key_create):  # the commands that store a credential
        _add(sub, KEY_SETTING)
    return parser


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, default=str))


def _json(model: Any) -> dict[str, Any]:
    fields = getattr(type(model), "__struct_fields__", ())
    return {name: getattr(model, name) for name in fields if not name.endswith("_hash")}


def _canonical_sids(args: argparse.Namespace) -> argparse.Namespace:
    """--account and --owner in canonical form: SIDs' hex is case-insensitive, as in the API."""
    for name in ("account", "owner"):
        value = getattr(args, name, None)
        if value is not None:
            sid = sids.normalize(value, sids.ACCOUNT)
            if sid is None:
                raise Failure(Exit.USAGE, f"--{name} must be AC followed by 32 hex digits")
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


# Commands that write: they may create the database, and refuse a read-only one.
WRITING = {("accounts", "create"), ("keys", "create")}


def _open(args: argparse.Namespace) -> Store:
    writes = (args.command, getattr(args, "action", None)) in WRITING
    try:
        return open_store(args.db, create=writes, writable=writes)
    except StoreUnavailable as error:
        raise Failure(Exit.DATABASE, f"--db {shown(args.db)}: {error}") from None


async def _account(service: Service, sid: str, flag: str) -> Any:
    try:
        return await service.accounts.get_account(sid)
    except NotFound:
        raise Failure(Exit.REFUSED, f"{flag} {sid}: no such account") from None


def _credential_key(args: argparse.Namespace) -> bytes:
    try:
        env = os.environ.get(keyfile.ENV_VAR) or None
        return keyfile.resolve(args.db, args.credential_key_file, env)
    except keyfile.KeyFileError as error:
        raise Failure(Exit.USAGE, str(error)) from None


async def _operate(args: argparse.Namespace) -> int:
    if hasattr(args, "credential_key_file"):
        try:  # a PostgreSQL URL without a key: said before anything is opened
            env = os.environ.get(keyfile.ENV_VAR) or None
            keyfile.check_given(args.db, args.credential_key_file, env)
        except keyfile.KeyFileError as error:
            raise Failure(Exit.USAGE, str(error)) from None
    store = _open(args)
    context = Context(store)
    if hasattr(args, "credential_key_file"):
        # A command that stores a credential needs the key; only once the database is
        # known to be usable, so a mistaken --db leaves no key file behind.
        try:
            context.credential_key = _credential_key(args)
        except Failure:
            await store.close()
            raise
    service = Service(context)
    try:
        if args.command == "recognize":
            service.recognizer.load(store)
            result = service.recognizer.recognize(args.source_ip, args.request_uri)
            _print(result.as_dict())
            if result.reason == INVALID_SOURCE_IP:
                print(f"error: {args.source_ip!r} is not an IP address", file=sys.stderr)
                return Exit.USAGE
            return Exit.OK if result.recognized and result.allowed else Exit.NOT_RECOGNIZED
        elif args.command == "accounts" and args.action == "create":
            principal = None
            if args.owner:
                owner = await _account(service, args.owner, "--owner")
                if owner.owner_account_sid != owner.sid:
                    raise Failure(Exit.USAGE, "--owner must be a top-level account")
                principal = Principal(owner.sid, False)
            account, token = await service.accounts.create_account(principal, args.friendly_name)
            _print({**_json(account), "auth_token": token})
        elif args.command == "accounts":
            for account in await service.accounts.all_accounts():
                _print(_json(account))
        elif args.command == "keys":
            account = await _account(service, args.account, "--account")
            if args.action == "create":
                key, secret = await service.accounts.create_key(account, args.friendly_name)
                _print({**_json(key), "secret": secret})
            else:
                for key in await _each_page(lambda r: service.accounts.list_keys(account, r)):
                    _print(_json(key))
        elif args.command == "list":
            await _account(service, args.account, "--account")
            for item in await _each_page(LISTS[args.resource](service, args.account)):
                if hasattr(item, "domain"):
                    _print({**_json(item.domain), "ip_acl_mapped": item.ip_acl_mapped})
                else:
                    _print(_json(item))
        return Exit.OK
    finally:
        await store.close()


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from .server import serve

        env = {s.name: os.environ.get(s.env or "") or None for s in ENVIRONMENT}
        return serve(args, **env)
    try:
        return asyncio.run(_operate(_canonical_sids(args)))
    except CredentialKeyMismatch as error:
        raise Failure(Exit.USAGE, error.message) from None
    except ServiceError as error:  # a rule the service applies (e.g. a quota)
        raise Failure(Exit.REFUSED, error.message) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # now, so a closed pipe is reported here, not at exit
        return code
    except Failure as failure:
        print(f"error: {failure.message}", file=sys.stderr)
        return failure.code
    except BrokenPipeError:
        # The reader went away (`… | head`). Point stdout at /dev/null so the
        # interpreter's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        print("error: output closed before everything was written", file=sys.stderr)
        return Exit.OUTPUT_CLOSED
    except KeyboardInterrupt:  # Ctrl+C on an operator command (serve handles its own)
        print("error: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    raise SystemExit(main())
