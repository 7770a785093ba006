"""What the deadline on every PostgreSQL call costs (src/sipmap/store/deadline.py).

Two measurements, each as a ratio to a baseline measured in the same run, in
interleaved rounds (the baseline first in even rounds, second in odd ones), median
and range over the rounds:

- `SELECT 1` on one connection, bare against under a deadline: the round trip alone,
  where the registration's cost shows most; and the registration with no statement.
- `PostgresStore.get` of one IP record (the API's fetch: a worker thread, a pooled
  connection, one statement), the store as it is against the same store given a
  watchdog that registers nothing.

    python bench/bench_deadline.py [--calls 3000] [--rounds 9] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench_multinode import scratch_schema
from sipmap.core.models import IpRecord
from sipmap.store.deadline import UNBOUNDED, Deadline, Watchdog
from sipmap.store.postgres import PostgresStore


class NoWatchdog:
    """The baseline: every call unbounded."""

    def deadline(self, conn: psycopg.Connection[Any], seconds: float) -> Deadline:
        return UNBOUNDED

    def close(self) -> None:
        pass


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def rounds(label: str, baseline: Callable[[], None], measured: Callable[[], None],
           count: int, calls: int) -> None:  # fmt: skip
    ratios: list[float] = []
    base_us: list[float] = []
    with_us: list[float] = []
    for i in range(count):
        if i % 2 == 0:
            b, m = timed(baseline), timed(measured)
        else:
            m, b = timed(measured), timed(baseline)
        ratios.append(m / b)
        base_us.append(b / calls * 1e6)
        with_us.append(m / calls * 1e6)
    print(
        f"{label}: {statistics.median(with_us):.1f} µs per call against "
        f"{statistics.median(base_us):.1f} µs; time ratio {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}, {count} rounds of {calls} calls)"
    )


def select_one(url: str, calls: int, count: int) -> None:
    watchdog = Watchdog()
    with psycopg.connect(url, autocommit=True) as conn:

        def bare() -> None:
            for _ in range(calls):
                conn.execute("SELECT 1").fetchone()

        def bounded() -> None:
            for _ in range(calls):
                with watchdog.deadline(conn, 5.0):
                    conn.execute("SELECT 1").fetchone()

        bare()  # warm up
        rounds("SELECT 1, under a deadline / bare", bare, bounded, count, calls)

        def register() -> None:
            for _ in range(calls * 10):
                with watchdog.deadline(conn, 5.0):
                    pass

        alone = min(timed(register) for _ in range(count)) / (calls * 10) * 1e6
        print(f"a deadline alone (set and cleared, no statement): {alone:.2f} µs, best of {count}")
    watchdog.close()


def store_get(url: str, calls: int, count: int) -> None:
    guarded = PostgresStore(url)
    unguarded = PostgresStore(url)
    unguarded._watchdog.close()
    unguarded._watchdog = NoWatchdog()  # type: ignore[assignment]
    loop = asyncio.new_event_loop()
    try:
        sid = "IL" + "0" * 32  # absent: the same one statement whether found or not

        def run(store: PostgresStore) -> Callable[[], None]:
            async def many() -> None:
                for _ in range(calls):
                    await store.get(IpRecord, sid)

            return lambda: loop.run_until_complete(many())

        run(guarded)()  # warm up (and fill both pools)
        run(unguarded)()
        rounds("PostgresStore.get, as built / with no deadlines", run(unguarded), run(guarded),
               count, calls)  # fmt: skip
    finally:
        loop.run_until_complete(guarded.close())
        loop.run_until_complete(unguarded.close())
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SIPMAP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    select_one(args.postgres, args.calls, args.rounds)
    with scratch_schema(args.postgres) as db:
        store_get(db, args.calls, args.rounds)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
