"""Recognition beyond raw LPM speed: the whole recogniser, a rebuild's effect on the event
loop, and the cost of applying one committed change, at up to a million mappings.

1. `Recognizer.recognize(source_ip)` calls/s (and with a Request-URI), as a ratio to
   the raw `Table4.lookup` over the same networks and addresses in the same run.
2. Event-loop stall: the largest gap between ticks of a 1 ms asyncio heartbeat while
   a full `from_rows` build (what `load` does after reading the store) runs in
   `asyncio.to_thread`, against the same heartbeat with nothing else running.
3. `publish` latency of one MappingSaved / MappingDeleted at the largest size.

Models are built directly as dataclasses (no database), before anything is timed.
The machine is shared and noisy: read the ratios first.

    python bench/bench_recognize.py --sizes 1000,100000,1000000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sipmap.core.events import Event, MappingDeleted, MappingSaved
from sipmap.core.models import AclMapping, IpAddress, SipDomain, SourceIpMapping
from sipmap.recognize.lpm import Table4, pack_entries
from sipmap.recognize.recognizer import Recognizer
from synthetic import Prefix, best_rate, dotted, make_addresses, percentiles, random_prefix

MAX32 = 2**32 - 1
ACCOUNT = "AC" + "a" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# -- synthetic rows ------------------------------------------------------------------------


def make_networks(size: int, rng: random.Random) -> list[Prefix]:
    """Distinct networks, a realistic mix: 90% /32, 9% /24../31, 1% /16../23, a third
    of them nested in an earlier shorter one."""
    seen: dict[Prefix, None] = {}
    parents: list[Prefix] = []
    while len(seen) < size:
        prefix = random_prefix(rng, parents)
        if prefix not in seen:
            seen[prefix] = None
            if prefix[1] < 32 and len(parents) < 5000:
                parents.append(prefix)
    return list(seen)


def make_domain(n: int) -> SipDomain:
    return SipDomain(
        f"SD{n:032x}", ACCOUNT, f"d{n}.sip.twilio.com", None, None, "POST", None, "POST",
        None, "POST", False, False, False, None, None, T0, T0,
    )  # fmt: skip


@dataclass
class Rows:
    domains: list[SipDomain]
    mappings: list[SourceIpMapping]
    links: list[AclMapping]
    addresses: list[IpAddress]
    networks: list[Prefix]

    def build(self) -> Recognizer:
        return Recognizer.from_rows(self.domains, self.mappings, self.links, self.addresses)


def make_rows(size: int, seed: int) -> Rows:
    """`size` mappings over one domain per 100 of them; every other domain has one IP
    access control list of 5 addresses (so the ACL check is part of what is timed)."""
    rng = random.Random(seed)
    networks = make_networks(size, rng)
    domains = [make_domain(n) for n in range(max(1, size // 100))]
    mappings = [
        SourceIpMapping(
            f"IB{i:032x}", ACCOUNT, f"IL{i:032x}", domains[i % len(domains)].sid, net, plen, T0, T0
        )
        for i, (net, plen) in enumerate(networks)
    ]
    links, addresses = [], []
    for n, domain in enumerate(domains[::2]):
        acl = f"AL{n:032x}"
        links.append(AclMapping(acl, ACCOUNT, domain.sid, T0, T0))
        for k in range(5):
            net, plen = rng.choice(networks)
            addresses.append(
                IpAddress(f"IP{n * 5 + k:032x}", ACCOUNT, acl, "a", dotted(net), plen, T0, T0)
            )
    return Rows(domains, mappings, links, addresses, networks)


# -- 1. end-to-end recognition vs the raw table ---------------------------------------------


def bench_lookups(rows: Rows, recognizer: Recognizer, args: argparse.Namespace) -> dict[str, float]:
    raw = Table4.build(pack_entries((n, p, i) for i, (n, p) in enumerate(rows.networks)))
    addresses = make_addresses(rows.networks, args.lookups, args.seed)
    uri = f"sip:alice@{rows.domains[-1].domain_name}:5060;transport=tcp"
    unknown = "sip:alice@nobody.example.com"
    recognize = recognizer.recognize
    # Sanity: the recogniser finds a mapping exactly where the raw table does.
    assert all((raw.lookup(a) >= 0) == recognize(a).recognized for a in addresses[:20_000])
    gc.collect()
    return {
        "Table4.lookup (raw)": best_rate(raw.lookup, addresses, args.repeat),
        "recognize(ip)": best_rate(recognize, addresses, args.repeat),
        "recognize(ip, URI naming a domain)": best_rate(
            lambda a: recognize(a, uri), addresses, args.repeat
        ),
        "recognize(ip, URI naming no domain)": best_rate(
            lambda a: recognize(a, unknown), addresses, args.repeat
        ),
        "recognize('::ffff:' + ip)": best_rate(
            recognize, ["::ffff:" + a for a in addresses], args.repeat
        ),
    }


# -- 2. event-loop stall during a full build ------------------------------------------------


@dataclass
class Gaps:
    ticks: int
    max_ms: float
    p99_ms: float
    median_ms: float


async def heartbeat(stop: asyncio.Event, period: float) -> Gaps:
    """Tick every `period` seconds until stopped; the gaps between consecutive ticks."""
    gaps: list[float] = []
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(period)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    ordered = sorted(gaps)
    return Gaps(
        len(gaps),
        ordered[-1] * 1000,
        ordered[int(len(ordered) * 0.99)] * 1000,
        statistics.median(ordered) * 1000,
    )


async def stall(work: Callable[[], object] | None, seconds: float) -> tuple[Gaps, float, object]:
    """Heartbeat gaps while `work` runs in a thread (or for `seconds` with no work).

    The work's result is handed back, not dropped: freeing a million-entry
    recogniser on the loop thread would itself stall the heartbeat.
    """
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(stop, 0.001))
    await asyncio.sleep(0.05)  # the heartbeat is ticking before the work starts
    start = time.perf_counter()
    result = None
    if work is None:
        await asyncio.sleep(seconds)
    else:
        result = await asyncio.to_thread(work)
    elapsed = time.perf_counter() - start
    stop.set()
    return await beat, elapsed, result


class RowsStore:
    """Just enough of a Store for `Recognizer.load`: its read hands over the rows."""

    def __init__(self, rows: Rows) -> None:
        self.tables: dict[type, list[Any]] = {
            SipDomain: rows.domains,
            SourceIpMapping: rows.mappings,
            AclMapping: rows.links,
            IpAddress: rows.addresses,
        }

    def read_blocking(self, fn: Callable[[Any], Any]) -> Any:
        return fn(self)

    def find(self, model: type) -> list[Any]:
        return self.tables[model]


def stall_rows(rows: Rows) -> list[tuple[str, Gaps, float]]:
    """Heartbeat during: a from_rows build; `load` into a new recogniser (start-up,
    reading through a store); the build with the cyclic GC off."""
    out = []
    gaps, elapsed, built = asyncio.run(stall(rows.build, 0))
    out.append(("during from_rows", gaps, elapsed))
    del built
    store = RowsStore(rows)
    fresh = Recognizer()
    gaps, elapsed, _ = asyncio.run(stall(lambda: fresh.load(store), 0))  # type: ignore[arg-type]
    out.append(("during load() at start-up", gaps, elapsed))
    gc.disable()
    try:
        gaps, elapsed, built = asyncio.run(stall(rows.build, 0))
        out.append(("during from_rows, gc disabled (diagnosis)", gaps, elapsed))
        del built
    finally:
        gc.enable()
    return out


# -- 3. one committed change applied via publish ----------------------------------------------


def publish_latencies(recognizer: Recognizer, events: Sequence[Event]) -> list[int]:
    clock = time.perf_counter_ns
    out = []
    for event in events:
        start = clock()
        recognizer.publish([event])
        out.append(clock() - start)
    return out


def bench_publish(
    rows: Rows, recognizer: Recognizer, args: argparse.Namespace
) -> dict[str, list[int]]:
    rng = random.Random(args.seed + 2)
    taken = set(rows.networks)
    fresh = [p for p in make_networks(args.writes * 2, rng) if p not in taken][: args.writes]
    domains = rows.domains
    new = [
        SourceIpMapping(
            f"IB{(1 << 100) + i:032x}",
            ACCOUNT,
            f"IL{(1 << 100) + i:032x}",
            domains[i % len(domains)].sid,
            net,
            plen,
            T0,
            T0,
        )
        for i, (net, plen) in enumerate(fresh)
    ]
    existing = rng.sample(rows.mappings, args.writes)
    moved = [
        replace(m, sip_domain_sid=domains[(i + 1) % len(domains)].sid)
        for i, m in enumerate(existing)
    ]
    gc.collect()
    results = {
        "MappingSaved (new network)": publish_latencies(recognizer, [MappingSaved(m) for m in new]),
        "MappingDeleted (that network)": publish_latencies(
            recognizer, [MappingDeleted(m) for m in new]
        ),
        "MappingSaved (update: moved to another domain)": publish_latencies(
            recognizer, [MappingSaved(m) for m in moved]
        ),
        "MappingDeleted (a loaded mapping)": publish_latencies(
            recognizer, [MappingDeleted(m) for m in moved]
        ),
        "MappingSaved (a loaded mapping again)": publish_latencies(
            recognizer, [MappingSaved(m) for m in existing]
        ),
    }
    # The worst case for the LPM table: one short prefix over many longer ones.
    worst = []
    for i, octet in enumerate(rng.sample(range(1, 224), 5)):
        m = SourceIpMapping(
            f"IB{(2 << 100) + i:032x}", ACCOUNT, f"IL{(2 << 100) + i:032x}",
            domains[0].sid, octet << 24, 8, T0, T0,
        )  # fmt: skip
        if (m.network, 8) in taken:
            continue
        worst += publish_latencies(recognizer, [MappingSaved(m)])
        worst += publish_latencies(recognizer, [MappingDeleted(m)])
    results["MappingSaved/Deleted of a /8 (worst case)"] = worst
    assert len(recognizer) == len(rows.networks)
    return results


# -- report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="mapped networks")
    parser.add_argument("--lookups", type=int, default=200_000, help="addresses per timing run")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs; the best is kept")
    parser.add_argument("--writes", type=int, default=2000, help="publish calls per kind")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="heartbeat baseline")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.perf_counter()

    print(f"# bench_recognize: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"switch interval {sys.getswitchinterval() * 1000:.0f} ms"
    )

    print("\n## 1. Recognition calls per second (Python loop over address strings)\n")
    print("Addresses: half inside a mapped network, half uniformly random.\n")
    header = "| calls/s | " + " | ".join(f"{s:,} networks" for s in sizes) + " |"
    print(header)
    print("|---|" + "---:|" * len(sizes))
    rates: dict[str, list[str]] = {}
    largest: tuple[Rows, Recognizer] | None = None
    builds = []
    for size in sizes:
        rows = make_rows(size, args.seed)
        start = time.perf_counter()
        recognizer = rows.build()
        builds.append(f"{size:,}: {time.perf_counter() - start:.2f} s")
        result = bench_lookups(rows, recognizer, args)
        raw = result["Table4.lookup (raw)"]
        for name, rate in result.items():
            ratio = "" if rate == raw else f" ({rate / raw:.2f}x raw)"
            rates.setdefault(name, []).append(f"{rate:,.0f}{ratio}")
        largest = (rows, recognizer)
    for name, cells in rates.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nfrom_rows build time: {'; '.join(builds)}.")

    assert largest is not None
    rows, recognizer = largest
    size = len(rows.networks)
    print(f"\n## 2. Event-loop stall: 1 ms heartbeat, full build of {size:,} mappings\n")
    idle, _, _ = asyncio.run(stall(None, args.idle_seconds))
    runs = [
        (f"idle, {args.idle_seconds:.0f} s", idle, args.idle_seconds),
        *stall_rows(rows),
    ]
    print("| heartbeat | seconds | ticks | median gap ms | p99 gap ms | max gap ms | max vs idle |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, g, elapsed in runs:
        print(
            f"| {label} | {elapsed:.2f} | {g.ticks} | {g.median_ms:.2f} | {g.p99_ms:.2f} "
            f"| {g.max_ms:.1f} | {g.max_ms / idle.max_ms:.1f}x |"
        )

    print(f"\n## 3. publish() of one change at {size:,} mappings (µs)\n")
    print("| event | n | median | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in bench_publish(rows, recognizer, args).items():
        p50, p99, worst = percentiles(samples)
        print(f"| {name} | {len(samples)} | {p50:.1f} | {p99:.1f} | {worst:.1f} |")
    print(f"\ntotal runtime {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
