"""Recognition beyond raw LPM speed: the whole recogniser, a rebuild's effect on the event
loop, and the cost of applying one committed change, at up to a million mappings.

1. `Recognizer.recognize(source_ip)` calls/s (and with a Request-URI), with the raw
   `Table4.lookup` over the same networks and addresses in the same run; with
   `--baseline DIR`, also another checkout's recognizer.py (e.g. main's: `git archive
   main | tar -x -C DIR`) on the same rows, the two taking turns round by round.
2. Event-loop stall: the largest gap between ticks of a 1 ms asyncio heartbeat while
   a full `from_rows` build, a start-up `load` (both in `asyncio.to_thread`) and a live
   `rebuild` run, against the same heartbeat with nothing else running.
3. `publish` latency of one MappingSaved / MappingDeleted at the largest size.

Models are built directly (no database), before anything is timed.
The machine is shared and noisy: read the ratios and ranges first.

    python bench/bench_recognize.py --sizes 1000,100000,1000000 --baseline /tmp/sipmap-main
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from sipmap.core.events import Event, MappingDeleted, MappingSaved
from sipmap.core.models import Account, AclMapping, IpAddress, SipDomain, SourceIpMapping
from sipmap.recognize.lpm import Table4, pack_entries
from sipmap.recognize.recognizer import Recognizer
from sipmap.server import GC_THRESHOLDS, SWITCH_INTERVAL
from synthetic import (
    Gaps,
    Prefix,
    dotted,
    heartbeat,
    make_addresses,
    percentiles,
    random_prefix,
)

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


def load_baseline(checkout: Path) -> type[Any]:
    """The Recognizer class of another checkout's recognizer.py (e.g. main's), loaded as a
    module of this sipmap package: it shares the C table and the core models."""
    path = checkout / "src" / "sipmap" / "recognize" / "recognizer.py"
    spec = importlib.util.spec_from_file_location("sipmap.recognize._baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cls: type[Any] = module.Recognizer
    return cls


def rate(fn: Callable[[str], object], inputs: list[str]) -> float:
    start = time.perf_counter()
    for item in inputs:
        fn(item)
    return len(inputs) / (time.perf_counter() - start)


def bench_lookups(
    rows: Rows, recognizers: dict[str, Any], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """calls/s per case and implementation, one figure per round; the implementations
    take turns within each round (the order alternating), so a drift of the machine's
    speed favours neither."""
    raw = Table4.build(pack_entries((n, p, i) for i, (n, p) in enumerate(rows.networks)))
    addresses = make_addresses(rows.networks, args.lookups, args.seed)
    mapped = ["::ffff:" + a for a in addresses]
    uri = f"sip:alice@{rows.domains[-1].domain_name}:5060;transport=tcp"
    unknown = "sip:alice@nobody.example.com"
    for recognizer in recognizers.values():
        # Sanity: each recogniser finds a mapping exactly where the raw table does.
        found = [recognizer.recognize(a).recognized for a in addresses[:20_000]]
        assert found == [raw.lookup(a) >= 0 for a in addresses[:20_000]]
    first = next(iter(recognizers.values()))
    for recognizer in recognizers.values():  # and they agree, field by field
        for a in addresses[:5000]:
            assert recognizer.recognize(a).as_dict() == first.recognize(a).as_dict(), a
    gc.collect()
    out: dict[str, dict[str, list[float]]] = {}
    for round_ in range(args.repeat):
        out.setdefault("Table4.lookup (raw)", {}).setdefault("", []).append(
            rate(raw.lookup, addresses)
        )
        names = list(recognizers) if round_ % 2 == 0 else list(reversed(recognizers))
        for name in names:
            recognize = recognizers[name].recognize
            cases: dict[str, tuple[Callable[[str], object], list[str]]] = {
                "recognize(ip)": (recognize, addresses),
                "recognize(ip, URI naming a domain)": (lambda a, r=recognize: r(a, uri), addresses),
                "recognize(ip, URI naming no domain)": (
                    lambda a, r=recognize: r(a, unknown),
                    addresses,
                ),
                "recognize('::ffff:' + ip)": (recognize, mapped),
            }
            for case, (fn, inputs) in cases.items():
                out.setdefault(case, {}).setdefault(name, []).append(rate(fn, inputs))
    return out


# -- 2. event-loop stall during a full build ------------------------------------------------


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

    def scan(self, model: type, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        if model is Account:
            return iter(())
        return map(attrgetter(*columns), self.tables[model])

    def find(self, model: type) -> list[Any]:
        return self.tables[model]


def stall_rows(rows: Rows, live: Recognizer) -> list[tuple[str, Gaps, float]]:
    """Heartbeat during: a from_rows build; `load` into a new recogniser (start-up,
    reading through a store); `rebuild` of the live one (while serving)."""
    out = []
    gaps, elapsed, built = asyncio.run(stall(rows.build, 0))
    out.append(("during from_rows", gaps, elapsed))
    del built
    store: Any = RowsStore(rows)
    fresh = Recognizer()
    gaps, elapsed, _ = asyncio.run(stall(lambda: fresh.load(store), 0))
    out.append(("during load() at start-up", gaps, elapsed))

    async def rebuilding() -> tuple[Gaps, float]:
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop, 0.001))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await live.rebuild(store)
        elapsed = time.perf_counter() - start
        stop.set()
        return await beat, elapsed

    gaps, elapsed = asyncio.run(rebuilding())
    out.append(("during rebuild() of the live one, old state freed at the swap", gaps, elapsed))
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


def _span(values: list[float]) -> str:
    return f"{min(values) / 1e6:.2f}-{max(values) / 1e6:.2f}M"


# -- report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="mapped networks")
    parser.add_argument("--lookups", type=int, default=200_000, help="addresses per timing run")
    parser.add_argument("--repeat", type=int, default=3, help="timing rounds")
    parser.add_argument("--writes", type=int, default=2000, help="publish calls per kind")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="heartbeat baseline")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline", type=Path, default=None, help="a checkout whose recognizer to compare with"
    )
    args = parser.parse_args()
    # As `sipmap serve` runs: its GIL switch interval decides how soon the event loop
    # takes the GIL back from a build thread (at Python's default 5 ms, a build of a
    # million mappings held the loop off for 30-80 ms at a time; at serve's, under 10),
    # and its GC thresholds how often the allocation in these loops is collected.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    implementations: dict[str, type[Any]] = {"this": Recognizer}
    if args.baseline is not None:
        implementations["baseline"] = load_baseline(args.baseline)
    sizes = [int(s) for s in args.sizes.split(",")]
    began = time.perf_counter()

    print(f"# bench_recognize: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"switch interval {sys.getswitchinterval() * 1000:g} ms (as sipmap serve), "
        f"GC thresholds {gc.get_threshold()}"
    )

    print("\n## 1. Recognition calls per second (Python loop over address strings)\n")
    print(
        "Addresses: half inside a mapped network, half uniformly random. Best of "
        f"{args.repeat} rounds (range); the implementations take turns in each round; "
        "'this / baseline' is the median (range) of the rounds' ratios.\n"
    )
    print("| calls/s | " + " | ".join(f"{s:,} networks" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    cells: dict[str, list[str]] = {}
    largest: tuple[Rows, Recognizer] | None = None
    builds = []
    for size in sizes:
        rows = make_rows(size, args.seed)
        recognizers: dict[str, Any] = {}
        for name, cls in implementations.items():
            start = time.perf_counter()
            recognizers[name] = cls.from_rows(
                rows.domains, rows.mappings, rows.links, rows.addresses
            )
            builds.append(f"{name} {size:,}: {time.perf_counter() - start:.2f} s")
        result = bench_lookups(rows, recognizers, args)
        for case, by_impl in result.items():
            for name, values in by_impl.items():
                label = f"{case}: {name}" if name else case
                cells.setdefault(label, []).append(f"{max(values):,.0f} ({_span(values)})")
            if "baseline" in by_impl:
                ratios = [a / b for a, b in zip(by_impl["this"], by_impl["baseline"], strict=True)]
                cells.setdefault(f"{case}: this / baseline", []).append(
                    f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                )
        largest = (rows, recognizers["this"])
        del recognizers
    for label, row in cells.items():
        print(f"| {label} | " + " | ".join(row) + " |")
    print(f"\nfrom_rows build time: {'; '.join(builds)}.")

    assert largest is not None
    rows, recognizer = largest
    size = len(rows.networks)
    print(f"\n## 2. Event-loop stall: 1 ms heartbeat, full build of {size:,} mappings\n")
    idle, _, _ = asyncio.run(stall(None, args.idle_seconds))
    runs = [
        (f"idle, {args.idle_seconds:.0f} s", idle, args.idle_seconds),
        *stall_rows(rows, recognizer),
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
