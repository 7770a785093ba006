"""`sipmap serve`: one process, the HTTP API over the store `--db` names (SQLite or PostgreSQL).

Start-up runs in a fixed order, so an operator's mistake is reported before anything
happens that would mislead (such as printing a one-time token for a server that never
started): validate the settings → bind every listening socket (HTTP, then the SIP
edge's UDP and TCP) → open the store → ensure the bootstrap account and print its
credentials → serve. A taken port therefore creates nothing, not even the database.

SIGINT and SIGTERM stop it cleanly: no new connections, in-flight requests get
SHUTDOWN_GRACE seconds to finish (then they are cancelled), the store is closed
(SQLite checkpoints its WAL) and the process exits 0 after one log line. A second
SIGINT stops waiting for in-flight requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from prometheus_client import Gauge

from . import keyfile
from .api.app import create_app
from .api.connection import Limits, fit_connections, protocol_class
from .api.limits import TenantLimits
from .core.errors import ServiceError
from .exits import Exit, Failure
from .metrics import REGISTRY
from .node import node_over
from .service import Service
from .service.accounts import check_bootstrap_environment
from .sip.counters import SipCounters
from .sip.responder import EdgeConfig
from .sip.setup import StartupError, bind_sockets, build_edge, edge_config
from .store.feed import ChangeFeed
from .store.open import StoreUnavailable, open_store, shown

log = logging.getLogger("sipmap")

SWITCH_INTERVAL = 0.0002  # seconds
# The cyclic GC's youngest generation is collected after this many net allocations
# of container objects (CPython's default: 700, i.e. every few requests). Request
# handling allocates many short-lived objects and few cycles; collecting 70 times
# less often measured 5-10% more requests per second (A/B, fetch and create).
GC_THRESHOLDS = (50_000, 50, 100)
SHUTDOWN_GRACE = 10  # seconds in-flight requests get to finish after a stop signal
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop:
    """Which stop signal arrived, if any; tells the server to stop once it runs."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.server: uvicorn.Server | None = None

    def __call__(self, sig: signal.Signals) -> None:
        if self.signal is not None and sig == signal.SIGINT and self.server is not None:
            self.server.force_exit = True  # a second Ctrl+C: stop waiting for requests
        self.signal = self.signal or sig.name
        if self.server is not None:
            self.server.should_exit = True


class _Server(uvicorn.Server):
    # uvicorn's own handlers re-raise the signal once it has shut down, which kills
    # the process before the store is closed; ours (installed by `_main`) do not.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """The HTTP API's listening socket, or a Failure naming the flag and saying why not."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        if sock is not None:
            sock.close()
        reason = error.strerror or str(error)
        raise Failure(
            Exit.LISTEN, f"--port {port}: cannot listen on {host}:{port}: {reason}"
        ) from None
    return sock


def _listen(
    args: argparse.Namespace,
) -> tuple[list[socket.socket], list[socket.socket], EdgeConfig | None]:
    """Every listening socket (HTTP, then the SIP edge's), bound before the store is
    opened: a taken port or a bad SIP option ends start-up with nothing created."""
    if args.sip_host is None:
        args.sip_host = args.host
    sockets = [_bind(args.host, args.port)]
    try:
        try:
            sip_sockets = bind_sockets(args.sip_host, args.sip_port) if args.sip_port else []
        except StartupError as error:
            raise Failure(Exit.LISTEN, str(error)) from None
        sockets += sip_sockets
        try:
            sip_config = edge_config(args, sip_sockets) if sip_sockets else None
        except StartupError as error:
            raise Failure(Exit.USAGE, str(error)) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets[:1], sip_sockets, sip_config


async def _main(
    args: argparse.Namespace,
    account_sid: str | None,
    auth_token: str | None,
    credential_key: str | None,
) -> None:
    stop = _Stop()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    # Background threads (the store's writer, a recogniser rebuild) hold the GIL in
    # stretches; at the default 5 ms switch interval the event loop waits up to 5 ms
    # for it each time (measured: 6 ms median heartbeat gaps during a rebuild). A
    # shorter interval bounds how long requests and SIP traffic wait behind them.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        check_bootstrap_environment(account_sid, auth_token)
        keyfile.check_given(args.db, args.credential_key_file, credential_key)
    except ValueError as error:
        raise Failure(Exit.USAGE, str(error)) from None
    sockets, sip_sockets, sip_config = _listen(args)
    edge = None
    upkeep: asyncio.Task[None] | None = None
    try:
        try:
            # Off the loop: opening may wait on a lock or a server; signals still arrive.
            store = await asyncio.to_thread(lambda: open_store(args.db, timeout=args.db_timeout))
        except StoreUnavailable as error:
            raise Failure(Exit.DATABASE, f"--db {shown(args.db)}: {error}") from None
        try:
            try:
                # After the sockets and the store: a taken port or a mistaken --db ends
                # start-up before a key file is created.
                key = keyfile.resolve(args.db, args.credential_key_file, credential_key)
            except keyfile.KeyFileError as error:
                raise Failure(Exit.USAGE, str(error)) from None
            node = node_over(
                store,
                sip_domain_suffix=args.sip_domain_suffix,
                min_mapping_prefix=args.min_mapping_prefix,
                credential_key=key,
                login_failures_per_source=args.login_failures_per_source,
                login_failures_per_account=args.login_failures_per_account,
            )
            service = node.service
            try:
                account, token = await service.accounts.ensure_bootstrap(account_sid, auth_token)
            except ServiceError as error:  # e.g. a bootstrap token the stored key rejects
                raise Failure(Exit.USAGE, error.message) from None
            # Off the loop: at a million mappings the load takes a while. On PostgreSQL
            # the node then follows the change feed (the store's close stops it).
            await node.load()
            _announce(account.sid, token)
            host, port = sockets[0].getsockname()[:2]
            log.info("sipmap listening on http://%s:%d (Ctrl+C or SIGTERM stops it)", host, port)
            app = create_app(
                service,
                public_base_url=args.public_base_url,
                max_concurrent=args.max_concurrent_requests,
                tenants=TenantLimits(args.max_account_requests, args.max_account_body_bytes),
                health=_feed_health(node.feed),
            )
            stop.server = server = _http_server(args, app, sip=sip_config is not None)
            upkeep = asyncio.create_task(_prune_tombstones(service, args.page_token_lifetime))
            if sip_config is not None:
                edge = build_edge(args, sip_config, service.recognizer, SipCounters(REGISTRY))
                await edge.start(sip_sockets)
            if stop.signal is None:  # a signal during start-up: stop before serving
                await server.serve(sockets=sockets)
        finally:
            if upkeep is not None:
                upkeep.cancel()
            if edge is not None:
                await edge.close()
            await store.close()
    finally:
        for sock in (*sockets, *sip_sockets):
            sock.close()
    log.info("sipmap stopped (%s); the store is closed", stop.signal or "server exited")


def _announce(account_sid: str, token: str | None) -> None:
    """The bootstrap account on stdout; a new one's token once, ready to paste into the
    shell the curl examples and SDK scripts run in."""
    if token is None:
        print(f"Bootstrap account: {account_sid}", flush=True)
        return
    print(
        f"Created account {account_sid}; its auth token is shown only now, keep it:\n"
        f"export TWILIO_ACCOUNT_SID={account_sid} TWILIO_AUTH_TOKEN={token}",
        flush=True,
    )


def _http_server(args: argparse.Namespace, app: Any, *, sip: bool) -> _Server:
    """uvicorn with the limits it lacks (api/connection.py); the HTTP and SIP connection
    caps share the open-file budget, so this runs before the SIP edge is built."""
    limits = Limits(
        max_header_bytes=args.max_header_bytes,
        max_headers=args.max_headers,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
        max_connections=_fit_connections(args, sip),
    )
    config = uvicorn.Config(
        app,
        # httptools' parser, with the limits uvicorn lacks (api/connection.py).
        http=protocol_class(limits),
        ws="none",
        timeout_keep_alive=args.keep_alive_timeout,
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        server_header=False,
        # URLs come from the Host header or --public-base-url; X-Forwarded-* is not trusted.
        proxy_headers=False,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
    if args.log_level != "debug":
        # uvicorn narrates start and stop in several info lines; sipmap logs one
        # line for each (listening, stopped). Its warnings and errors still show.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    return _Server(config)


def _feed_health(feed: ChangeFeed | None) -> Callable[[], dict[str, Any]] | None:
    """The feed's state for /health, and its gauges on /metrics (PostgreSQL only)."""
    if feed is None:
        return None
    gauges: list[tuple[str, str, Callable[[], float]]] = [
        (
            "sipmap_change_feed_behind_seconds",
            "Seconds since this node's recognition was last known to reflect every committed "
            "write (PostgreSQL change feed); 0 while it is following.",
            lambda: feed.status().behind_seconds,
        ),
        (
            "sipmap_change_feed_position",
            "The last change-log position applied to this node's recogniser.",
            lambda: feed.status().position,
        ),
        (
            "sipmap_change_feed_connected",
            "1 while the change feed's connection is listening, else 0.",
            lambda: float(feed.status().connected),
        ),
        (
            "sipmap_change_feed_reloads",
            "Full rebuilds of the recogniser because the log was trimmed past this node's "
            "position.",
            lambda: feed.reloads,
        ),
        (
            "sipmap_lease_held",
            "1 while this node holds its lease (store/leases.py): writes anywhere wait for it, "
            "and it answers fetches from its cache; else 0.",
            lambda: float(feed.lease_held()),
        ),
    ]
    for name, documentation, read in gauges:
        Gauge(name, documentation, registry=REGISTRY).set_function(read)
    return lambda: {"change_feed": {**feed.status().as_dict(), "lease_held": feed.lease_held()}}


def _fit_connections(args: argparse.Namespace, sip: bool) -> int:
    """The HTTP connection cap, with the SIP edge's TCP cap (set on `args`) sharing one
    open-file budget: an idle SIP client must not use up the descriptors HTTP needs."""
    http_wanted: int = args.max_connections
    wanted = http_wanted + (args.sip_tcp_max_connections if sip else 0)
    total = fit_connections(wanted)
    if total >= wanted:
        return http_wanted
    http = max(1, total * http_wanted // wanted)
    if sip:
        args.sip_tcp_max_connections = max(1, total - http)
    return http


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
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s: %(message)s"
    )
    try:
        import uvloop

        run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is not built for every platform
        run = asyncio.run
    run(_main(args, account_sid, auth_token, credential_key))
    return Exit.OK
