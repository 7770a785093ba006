"""Benchmark Table4 (sipmap's C LPM table) against pytricia and py-radix, in one run.

For each size the same random IPv4 table is loaded into every contestant, then:
lookups/s from a Python loop over address strings (the contestants taking turns,
round by round; best and range, and per-round ratios), memory per entry, and the
latency of single inserts/removes at that size. Ratios matter more than the
absolute figures: the machine is shared and noisy.

    python bench/bench_lpm.py --sizes 1000,100000,1000000 --lookups 1000000
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytricia  # type: ignore[import-not-found]
import radix  # type: ignore[import-untyped]

from sipmap.recognize.lpm import Table4, pack_entries
from synthetic import (
    Prefix,
    best_rate,
    dotted,
    make_addresses,
    percentiles,
    random_prefix,
)


def cidr(prefix: Prefix) -> str:
    return f"{dotted(prefix[0])}/{prefix[1]}"


def make_table(size: int, seed: int) -> dict[Prefix, int]:
    rng = random.Random(seed)
    entries: dict[Prefix, int] = {}
    parents: list[Prefix] = []
    while len(entries) < size:
        prefix = random_prefix(rng, parents)
        entries[prefix] = rng.randrange(2**31)
        if prefix[1] < 32 and len(parents) < 5000:
            parents.append(prefix)
    return entries


# -- contestants -------------------------------------------------------------
# Inputs are prepared before anything is timed or measured, so packing bytes or
# formatting CIDR strings never counts against a contestant.

Loader = Callable[[Any], Any]


def prepare(name: str, entries: dict[Prefix, int]) -> Any:
    if name == "table4":
        return pack_entries((n, p, v) for (n, p), v in entries.items())
    return [(cidr(prefix), value) for prefix, value in entries.items()]


def load_table4(packed: bytes) -> Table4:
    return Table4.build(packed)


def load_pytricia(rows: list[tuple[str, int]]) -> Any:
    tree = pytricia.PyTricia(32)  # one IPv4 tree: a mixed v4/v6 tree gives wrong answers
    for prefix, value in rows:
        tree.insert(prefix, value)
    return tree


def load_radix(rows: list[tuple[str, int]]) -> Any:
    tree = radix.Radix()
    for prefix, value in rows:
        tree.add(prefix).data["v"] = value
    return tree


LOADERS: dict[str, Loader] = {
    "table4": load_table4,
    "pytricia": load_pytricia,
    "py-radix": load_radix,
}


def lookup_fn(name: str, tree: Any) -> Callable[[str], object]:
    if name == "table4":
        return tree.lookup  # type: ignore[no-any-return]
    if name == "py-radix":
        return tree.search_best  # type: ignore[no-any-return]
    return tree.get  # type: ignore[no-any-return]


WriteCalls = list[tuple[Callable[..., object], tuple[Any, ...]]]


def write_calls(name: str, tree: Any, prefixes: list[Prefix]) -> tuple[WriteCalls, WriteCalls]:
    """(insert calls, remove calls), each a bound method and its prepared arguments."""
    if name == "table4":
        return [(tree.insert, (n, p, 1)) for n, p in prefixes], [(tree.remove, p) for p in prefixes]
    add = tree.insert if name == "pytricia" else tree.add
    texts = [cidr(p) for p in prefixes]
    inserts = [(add, (t, 1) if name == "pytricia" else (t,)) for t in texts]
    return inserts, [(tree.delete, (t,)) for t in texts]


# -- measurements ------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(name: str, size: int, seed: int) -> None:
    """Run in a fresh interpreter: RSS growth caused by loading one contestant."""
    prepared = prepare(name, make_table(size, seed))
    gc.collect()
    before = rss_bytes()
    tree = LOADERS[name](prepared)
    gc.collect()
    print(rss_bytes() - before, tree.memory_bytes() if name == "table4" else 0)


def measure_memory(name: str, size: int, seed: int) -> tuple[int, int]:
    cmd = [sys.executable, __file__, "--memory-child", name, "--sizes", str(size)]
    out = subprocess.run([*cmd, "--seed", str(seed)], check=True, capture_output=True, text=True)
    rss, reported = out.stdout.split()
    return int(rss), int(reported)


def write_latencies(name: str, tree: Any, prefixes: list[Prefix]) -> tuple[list[int], list[int]]:
    inserts, removes = write_calls(name, tree, prefixes)
    clock = time.perf_counter_ns
    timings: tuple[list[int], list[int]] = ([], [])
    for calls, out in zip((inserts, removes), timings, strict=True):
        for fn, call_args in calls:
            start = clock()
            fn(*call_args)
            out.append(clock() - start)
    return timings


def growth_write(size: int, seed: int) -> tuple[int, float, float]:
    """Table4's costliest single /32 write: the insert that makes its hash grow.

    build() sizes the hash for its entries; with a power of two the hash is then
    exactly half full and the next insert starts an (incremental) migration.
    Returns (entries, that insert's µs, worst of the next 100 inserts' µs).
    """
    rng = random.Random(seed + 3)
    count = 1 << (size.bit_length() - 1)
    addresses: set[int] = set()
    while len(addresses) < count + 101:
        addresses.add(rng.getrandbits(32))
    extra = [addresses.pop() for _ in range(101)]
    table = Table4.build(pack_entries((a, 32, 1) for a in addresses))
    timings = write_latencies("table4", table, [(a, 32) for a in extra])[0]
    return count, timings[0] / 1000, max(timings[1:]) / 1000


@dataclass
class Result:
    lookups: dict[str, list[float]]  # calls/s, one per round
    memory: dict[str, float]
    writes: dict[str, tuple[float, ...]]  # insert p50/p99/max, remove p50/p99/max (µs)
    notes: list[str]


def run_size(size: int, args: argparse.Namespace) -> Result:
    entries = make_table(size, args.seed)
    addresses = make_addresses(list(entries), args.lookups, args.seed)
    rng = random.Random(args.seed + 2)
    parents = [p for p in list(entries)[:20_000] if p[1] < 32]
    fresh: dict[Prefix, None] = {}
    while len(fresh) < args.writes:
        prefix = random_prefix(rng, parents)
        if prefix not in entries:
            fresh[prefix] = None
    notes = []

    trees = {}
    for name, load in LOADERS.items():
        prepared = prepare(name, entries)
        start = time.perf_counter()
        trees[name] = load(prepared)
        notes.append(f"load {name}: {time.perf_counter() - start:.3f} s")
    start = time.perf_counter()
    by_insert = Table4()
    for (network, prefix_len), value in entries.items():
        by_insert.insert(network, prefix_len, value)
    notes.append(f"load table4 by {size} insert() calls: {time.perf_counter() - start:.3f} s")

    table4, tricia = trees["table4"], trees["pytricia"]
    agree = all(table4.lookup(a) == (-1 if (v := tricia.get(a)) is None else v) for a in addresses)
    notes.append(f"table4 and pytricia agree on all {len(addresses)} lookups: {agree}")
    assert agree

    ints = [struct.unpack("!I", socket.inet_aton(a))[0] for a in addresses]
    frozen = load_pytricia(prepare("pytricia", entries))
    frozen.freeze()
    contestants: dict[str, tuple[Callable[[Any], object], list[Any]]] = {
        name: (lookup_fn(name, t), addresses) for name, t in trees.items()
    }
    contestants["table4 lookup_int"] = (table4.lookup_int, ints)
    contestants["pytricia frozen (read-only)"] = (frozen.get, addresses)
    # Round by round, every contestant once per round, the order reversed every other
    # round: a drift in the machine's speed hits all of them alike.
    lookups: dict[str, list[float]] = {name: [] for name in contestants}
    for round_ in range(args.repeat):
        names = list(contestants) if round_ % 2 == 0 else list(reversed(contestants))
        for name in names:
            fn, inputs = contestants[name]
            lookups[name].append(best_rate(fn, inputs, 1))

    memory = {
        "table4 memory_bytes() after build()": table4.memory_bytes() / size,
        f"table4 memory_bytes() after {size} insert()": by_insert.memory_bytes() / size,
    }
    if not args.no_rss:
        for name in LOADERS:
            rss, _ = measure_memory(name, size, args.seed)
            memory[f"{name} RSS growth"] = rss / size

    writes: dict[str, tuple[float, ...]] = {}
    for name, tree in trees.items():
        inserts, removes = write_latencies(name, tree, list(fresh))
        writes[name] = (*percentiles(inserts), *percentiles(removes))
    assert len(table4) == size

    for label, prefix in (("/8", (10 << 24, 8)), ("/0", (0, 0))):
        if prefix not in entries:
            inserts, removes = write_latencies("table4", table4, [prefix])
            notes.append(
                f"table4 worst case, one {label} over everything below it: "
                f"insert {inserts[0] / 1000:.0f} µs, remove {removes[0] / 1000:.0f} µs"
            )
    count, first, rest = growth_write(size, args.seed)
    notes.append(
        f"table4 insert that grows the hash (into a {count:,}-entry table): {first:.0f} µs; "
        f"worst of the next 100 inserts, which migrate it: {rest:.0f} µs"
    )
    layout = table4._check()
    notes.append(
        f"table4 layout: {layout['intervals'] / size:.2f} intervals per entry "
        f"in {layout['chunks']:,} chunks"
    )
    return Result(lookups, memory, writes, notes)


def print_result(size: int, r: Result) -> None:
    ref = r.lookups
    print(f"\n### {size:,} entries\n")
    print("Per second: best round (range). vs: median of the rounds' ratios (range).\n")
    print("| lookups (str, Python loop) | per second | vs pytricia | vs py-radix |")
    print("|---|---:|---:|---:|")
    for name, rates in ref.items():
        cells = [f"{max(rates):,.0f} ({min(rates) / 1e6:.2f}-{max(rates) / 1e6:.2f}M)"]
        for other in ("pytricia", "py-radix"):
            ratios = [a / b for a, b in zip(rates, ref[other], strict=True)]
            cells.append(f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| memory | bytes/entry |\n|---|---:|")
    for name, per_entry in r.memory.items():
        print(f"| {name} | {per_entry:,.1f} |")
    print("\n| one write (µs) | insert p50 | p99 | max | remove p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, w in r.writes.items():
        print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in w) + " |")
    t4 = r.writes["table4"]
    for other in ("pytricia", "py-radix"):
        o = r.writes[other]
        print(
            f"\ntable4 write speed vs {other} (p50): insert {o[0] / t4[0]:.2f}x, remove {o[3] / t4[3]:.2f}x"
        )
    print()
    for note in r.notes:
        print(f"- {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="lookup rounds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-rss", action="store_true", help="skip the per-library RSS children")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.memory_child:
        memory_child(args.memory_child, sizes[0], args.seed)
        return
    print(f"# bench_lpm: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print("pytricia: one IPv4 tree, PyTricia(32) (a single mixed v4/v6 tree gives wrong answers).")
    print("py-radix: search_best() returns a node (value in node.data); pytricia get() the value.")
    print("Memory: Table4 counts its own C allocations; RSS growth = resident-set growth of a")
    print("fresh interpreter while loading the table (libraries' C mallocs are invisible to")
    print("tracemalloc), so it includes allocator overhead and page granularity, and it can")
    print("come out below what a table holds when it reuses memory freed before the baseline.")
    for size in sizes:
        print_result(size, run_size(size, args))


if __name__ == "__main__":
    main()
