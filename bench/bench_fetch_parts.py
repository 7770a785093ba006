"""Where a fetch's time goes: the ASGI app called in-process, its handler replaced piece
by piece, against `GET /health` in the same rounds.

No HTTP server and no load generator: the app is called directly in a warm loop (the
event loop given a turn every 30 requests, as a live server's turns carry about that
many), so what is left is sipmap's own code per request. `bench_api.py` measures the
whole server; this script says which part of a fetch costs what. The file holds
`--records` IP records (100,000 by default); before timing, the row cache is filled with
other rows, so a fetch that misses it also evicts one.

Scenarios, each `--requests` requests per round, all taking turns in every round (the
order reversed every other round):
- `/health`: the baseline;
- a ready reply: routing, credentials, the tenant's share and the response, with a
  handler that returns a reply made beforehand;
- render only: a handler that renders a row it already holds;
- service only: a handler that asks the service for the row (one cached row, or SIDs
  never asked for before: every one a miss) and returns the ready reply;
- the real fetch, cached and missing.

    python bench/bench_fetch_parts.py [--rounds 5] [--requests 8000] [--records 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import random
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from bench_api import ACCOUNT_SID, AUTH_TOKEN, seed_records
from sipmap.api import render, v1
from sipmap.api.app import App
from sipmap.api.call import Call, Handler, Reply
from sipmap.api.limits import TenantLimits
from sipmap.api.params import MAX_BODY_BYTES
from sipmap.server import GC_THRESHOLDS, SWITCH_INTERVAL
from sipmap.service import open_service
from sipmap.store.sqlite import MAX_CACHED_ROWS, SqliteStore

Scope = dict[str, Any]
AUTHORIZATION = b"Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode())
BASE_URL = "http://127.0.0.1:8080"
MAX_CONCURRENT = 1000


def scope(path: str, authenticated: bool = True) -> Scope:
    headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"bench")]
    if authenticated:
        headers.append((b"authorization", AUTHORIZATION))
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "scheme": "http",
    }


async def _send(message: Any) -> None:
    pass


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def per_request(app: App, scopes: list[Scope], count: int) -> float:
    """µs per request over `count` calls, cycling through `scopes`."""
    start = time.perf_counter()
    for i in range(count):
        await app(scopes[i % len(scopes)], _receive, _send)
        if i % 30 == 0:
            await asyncio.sleep(0)  # a turn of the loop: the read snapshot ends there
    return (time.perf_counter() - start) / count * 1e6


async def measure(db: Path, sids: list[str], rounds: int, requests: int) -> dict[str, list[float]]:
    store = SqliteStore(db)
    service = open_service(store)
    await service.accounts.ensure_bootstrap(ACCOUNT_SID, AUTH_TOKEN)
    # An App with create_app's limits but one route, whose handler each scenario sets
    # (routing costs the same: a template ending in its parameter is one dict lookup).
    route: dict[str, Handler] = {}
    tenants = TenantLimits(MAX_CONCURRENT, MAX_CONCURRENT * MAX_BODY_BYTES)
    app = App(service, {"/v1/IpRecords/{Sid}": route}, None, MAX_CONCURRENT, tenants)
    route["GET"] = v1.fetch_ip_record
    shuffled = list(sids)
    random.Random(1).shuffle(shuffled)
    one, others = shuffled[0], shuffled[1:]
    # The row cache full of rows that no miss below asks for, so each miss evicts one.
    for sid in others[-(MAX_CACHED_ROWS + 1000) :]:
        await app(scope(f"/v1/IpRecords/{sid}"), _receive, _send)
    fresh = iter([scope(f"/v1/IpRecords/{sid}") for sid in others[: 2 * rounds * requests]])
    record = await service.voice.get_ip_record(ACCOUNT_SID, one)
    ready = Reply(200, render.ip_record(record, BASE_URL))

    async def ready_reply(call: Call) -> Reply:
        return ready

    async def render_only(call: Call) -> Reply:
        return Reply(200, render.ip_record(record, call.base_url))

    async def service_only(call: Call) -> Reply:
        await call.service.voice.get_ip_record(call.account_sid, call.arg("Sid"))
        return ready

    cached = [scope(f"/v1/IpRecords/{one}")]
    # name -> (handler, scopes; None: SIDs never asked for before, new each round)
    scenarios: dict[str, tuple[Handler, list[Scope] | None]] = {
        "/health": (v1.fetch_ip_record, [scope("/health", authenticated=False)]),
        "a ready reply": (ready_reply, cached),
        "render only": (render_only, cached),
        "service only, cached": (service_only, cached),
        "fetch, cached": (v1.fetch_ip_record, cached),
        "service only, misses": (service_only, None),
        "fetch, misses": (v1.fetch_ip_record, None),
    }
    results: dict[str, list[float]] = {name: [] for name in scenarios}
    for round_ in range(rounds):
        names = list(scenarios) if round_ % 2 == 0 else list(reversed(scenarios))
        for name in names:
            handler, scopes = scenarios[name]
            route["GET"] = handler
            if scopes is None:
                scopes = list(islice(fresh, requests))
            results[name].append(await per_request(app, scopes, requests))
    await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=8_000, help="per scenario and round")
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    if 2 * args.rounds * args.requests > args.records - MAX_CACHED_ROWS - 1001:
        raise SystemExit(
            "too few --records for a new SID every miss: raise it, or lower --requests"
        )
    # As `sipmap serve` runs.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "parts.db"
        sids = seed_records(db, args.records)
        results = asyncio.run(measure(db, sids, args.rounds, args.requests))
    base = results["/health"]
    print(
        f"sipmap fetch, piece by piece, in-process: {args.rounds} rounds x {args.requests} "
        f"requests, {args.records} records; µs per request, median (range); "
        "ratio = /health's µs / the scenario's, per round"
    )
    print(f"{'scenario':<24}{'µs':>8}{'range':>14}{'ratio':>8}{'range':>12}")
    for name, values in results.items():
        ratios = [b / v for b, v in zip(base, values, strict=True)]
        print(
            f"{name:<24}{statistics.median(values):>8.2f}"
            f"{f'{min(values):.2f}-{max(values):.2f}':>14}"
            f"{statistics.median(ratios):>8.2f}{f'{min(ratios):.2f}-{max(ratios):.2f}':>12}"
        )


if __name__ == "__main__":
    main()
