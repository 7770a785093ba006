"""`sipmap serve`: one process, the HTTP API over the store `--db` names (SQLite or PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from . import keyfile
from .api.app import create_app
from .core.errors import ServiceError
from .metrics import REGISTRY
from .service import Service, open_service
from .sip.counters import SipCounters
from .sip.setup import StartupError, bind_sockets, build_edge, edge_config
from .store.open import open_store

log = logging.getLogger("sipmap.server")

SWITCH_INTERVAL = 0.0002  # seconds
# The cyclic GC's youngest generation is collected after this many net allocations
# of container objects (CPython's default: 700, i.e. every few requests). Request
# handling allocates many short-lived objects and few cycles; collecting 70 times
# less often measured 5-10% more requests per second (A/B, fetch and create).
GC_THRESHOLDS = (50_000, 50, 100)


async def _main(
    args: argparse.Namespace,
    account_sid: str | None,
    auth_token: str | None,
    credential_key: str | None,
) -> None:
    # Background threads (the store's writer, a recogniser rebuild) hold the GIL in
    # stretches; at the default 5 ms switch interval the event loop waits up to 5 ms
    # for it each time (measured: 6 ms median heartbeat gaps during a rebuild). A
    # shorter interval bounds how long requests and SIP traffic wait behind them.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    if not 0 <= args.min_mapping_prefix <= 32:
        raise ValueError("--min-mapping-prefix must be from 0 to 32")
    if args.page_token_lifetime < 1:
        raise ValueError("--page-token-lifetime must be at least 1 second")
    if args.login_failures_per_source < 0 or args.login_failures_per_account < 0:
        raise ValueError("--login-failures-per-source and -per-account must be 0 or more")
    # The SIP sockets first: a taken port is reported before anything else happens
    # (no store opened, no credentials created or printed).
    if args.sip_host is None:
        args.sip_host = args.host
    sip_sockets = bind_sockets(args.sip_host, args.sip_port) if args.sip_port else []
    try:
        sip_config = edge_config(args, sip_sockets) if sip_sockets else None
        key = keyfile.resolve(args.db, args.credential_key_file, credential_key)
    except (StartupError, keyfile.KeyFileError):
        for sock in sip_sockets:
            sock.close()
        raise
    store = open_store(args.db)
    service = open_service(
        store,
        sip_domain_suffix=args.sip_domain_suffix,
        min_mapping_prefix=args.min_mapping_prefix,
        credential_key=key,
        login_failures_per_source=args.login_failures_per_source,
        login_failures_per_account=args.login_failures_per_account,
    )
    try:
        # Before the load, so a mistaken environment or key is reported at once.
        account, token = await service.accounts.ensure_bootstrap(account_sid, auth_token)
    except BaseException:
        await store.close()
        raise
    # Off the loop: at a million mappings the load takes a while.
    await asyncio.to_thread(service.recognizer.load, store)
    if token is not None:
        print(
            f"Created account {account.sid} with auth token {token}\n"
            "The token is shown only now; keep it.",
            flush=True,
        )
    else:
        print(f"Bootstrap account: {account.sid}", flush=True)
    app = create_app(
        service,
        public_base_url=args.public_base_url,
        max_concurrent=args.max_concurrent_requests,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        server_header=False,
        # URLs come from the Host header or --public-base-url; X-Forwarded-* is not trusted.
        proxy_headers=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    upkeep = asyncio.create_task(_prune_tombstones(service, args.page_token_lifetime))
    edge = None
    try:
        if sip_config is not None:
            counters = SipCounters(REGISTRY)
            edge = build_edge(args, sip_config, service.recognizer.recognize, counters)
            await edge.start(sip_sockets)
        await server.serve()
    finally:
        upkeep.cancel()
        if edge is not None:
            await edge.close()
        for sock in sip_sockets:
            sock.close()
        await store.close()


async def _prune_tombstones(service: Service, lifetime: int) -> None:
    """Forget deleted items' places once no page token can need them, from time to time."""
    interval = max(1.0, min(lifetime / 10, 3600.0))
    while True:
        await asyncio.sleep(interval)
        try:
            await service.prune_tombstones(lifetime)
        except Exception:  # a store that is briefly away: try again next time
            log.exception("pruning tombstones failed")


def serve(
    args: argparse.Namespace,
    account_sid: str | None = None,
    auth_token: str | None = None,
    credential_key: str | None = None,
) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        import uvloop

        run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is not built for every platform
        run = asyncio.run
    try:
        run(_main(args, account_sid, auth_token, credential_key))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return 0
