"""What the recognition benchmarks share: synthetic networks and addresses, and timing."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

MAX32 = 2**32 - 1
T = TypeVar("T")
Prefix = tuple[int, int]


def mask(prefix_len: int) -> int:
    return (MAX32 << (32 - prefix_len)) & MAX32


def dotted(address: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", address))


def random_prefix(rng: random.Random, parents: Sequence[Prefix]) -> Prefix:
    """A realistic mix: 90% /32, 9% /24../31, 1% /16../23; a third nested in an earlier one."""
    roll = rng.random()
    prefix_len = 32 if roll < 0.90 else rng.randint(24, 31) if roll < 0.99 else rng.randint(16, 23)
    address = rng.getrandbits(32)
    if parents and rng.random() < 0.33:
        network, parent_len = rng.choice(parents)
        if parent_len < prefix_len:
            address = network | (address & ~mask(parent_len) & MAX32)
    return address & mask(prefix_len), prefix_len


def make_addresses(prefixes: Sequence[Prefix], count: int, seed: int) -> list[str]:
    """Half inside a random one of `prefixes`, half uniformly random."""
    rng = random.Random(seed + 1)
    out = []
    for i in range(count):
        if i % 2:
            out.append(rng.getrandbits(32))
        else:
            network, prefix_len = rng.choice(prefixes)
            out.append(network | (rng.getrandbits(32) & ~mask(prefix_len) & MAX32))
    rng.shuffle(out)
    return [dotted(a) for a in out]


def best_rate(fn: Callable[[T], object], inputs: list[T], repeat: int) -> float:
    """Calls per second of fn over inputs, the best of `repeat` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(inputs) / best


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    """p50, p99 and max, in µs."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) / 1000, p99 / 1000, ordered[-1] / 1000


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
    ordered = sorted(gaps) or [0.0]
    return Gaps(
        len(gaps),
        ordered[-1] * 1000,
        ordered[int(len(ordered) * 0.99)] * 1000,
        statistics.median(ordered) * 1000,
    )


def cpu_seconds(*pids: int) -> float:
    """User and system CPU time the processes have used (all their threads), from /proc."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")
