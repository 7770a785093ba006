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

from .api.app import create_app
from .metrics import REGISTRY
from .service import open_service
from .sip.counters import SipCounters
from .sip.setup import StartupError, bind_sockets, build_edge, edge_config
from .store.open import open_store

SWITCH_INTERVAL = 0.0002  # seconds
# The cyclic GC's youngest generation is collected after this many net allocations
# of container objects (CPython's default: 700, i.e. every few requests). Request
# handling allocates many short-lived objects and few cycles; collecting 70 times
# less often measured 5-10% more requests per second (A/B, fetch and create).
GC_THRESHOLDS = (50_000, 50, 100)


async def _main(args: argparse.Namespace, account_sid: str | None, auth_token: str | None) -> None:
    # Background threads (the store's writer, a recogniser rebuild) hold the GIL in
    # stretches; at the default 5 ms switch interval the event loop waits up to 5 ms
    # for it each time (measured: 6 ms median heartbeat gaps during a rebuild). A
    # shorter interval bounds how long requests and SIP traffic wait behind them.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    # The SIP sockets first: a taken port is reported before anything else happens
    # (no store opened, no credentials created or printed).
    if args.sip_host is None:
        args.sip_host = args.host
    sip_sockets = bind_sockets(args.sip_host, args.sip_port) if args.sip_port else []
    try:
        sip_config = edge_config(args, sip_sockets) if sip_sockets else None
    except StartupError:
        for sock in sip_sockets:
            sock.close()
        raise
    store = open_store(args.db)
    service = open_service(store, sip_domain_suffix=args.sip_domain_suffix)
    # Before the load, so a mistaken environment is reported at once.
    account, token = await service.accounts.ensure_bootstrap(account_sid, auth_token)
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
    edge = None
    try:
        if sip_config is not None:
            counters = SipCounters(REGISTRY)
            edge = build_edge(args, sip_config, service.recognizer.recognize, counters)
            await edge.start(sip_sockets)
        await server.serve()
    finally:
        if edge is not None:
            await edge.close()
        for sock in sip_sockets:
            sock.close()
        await store.close()


def serve(args: argparse.Namespace, account_sid: str | None, auth_token: str | None) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        import uvloop

        run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is not built for every platform
        run = asyncio.run
    try:
        run(_main(args, account_sid, auth_token))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
