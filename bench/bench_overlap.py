"""The cross-account overlap check of a new source IP mapping, at a million mappings.

Builds a SQLite database of N mappings (default 1,000,000) held by 10,000 top-level
accounts — disjoint networks, 90% /32, the rest /24../31 — then times
`Tx.overlaps_outside_family` for new networks of every length from /8 to /32 against
a baseline measured in the same run, interleaved: `Tx.get` of one IP record by SID
(the lookup every mapping create already makes). Printed: the median ratio per round
and the range over rounds. A worst case is timed too: a family checking a /8 that
holds 100,000 of its own mappings (the range scan steps over each).

    python bench/bench_overlap.py [--mappings 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import apsw

from sipmap.core.models import IpRecord
from sipmap.store.sqlite import SqliteStore, SqliteTx

ACCOUNTS = 10_000


def _sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


def build(path: Path, count: int, own_in_slash8: int) -> None:
    asyncio.run(SqliteStore(path).close())  # the schema
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO accounts (sid, owner_account_sid, friendly_name, status, auth_token_hash, "
        "date_created, date_updated) VALUES (?, ?, 'a', 'active', '', 0, 0)",
        ((_sid("AC", a), _sid("AC", a)) for a in range(ACCOUNTS + 1)),
    )
    conn.execute(
        "INSERT INTO ip_records (sid, account_sid, ip_address, cidr_prefix_length, "
        "date_created, date_updated) VALUES (?, ?, '10.0.0.1', 32, 0, 0)",
        (_sid("IL", 0), _sid("AC", 0)),
    )
    conn.execute(
        "INSERT INTO sip_domains (sid, account_sid, domain_name, voice_method, "
        "voice_fallback_method, voice_status_callback_method, sip_registration, "
        "emergency_calling_enabled, secure, date_created, date_updated) "
        "VALUES (?, ?, 'd.sip.twilio.com', 'POST', 'POST', 'POST', 0, 0, 0, 0, 0)",
        (_sid("SD", 0), _sid("AC", 0)),
    )
    conn.execute("PRAGMA foreign_keys=OFF")  # the mappings' records are not needed here

    def rows() -> object:
        # Disjoint: each mapping gets its own /24 slot (outside 10/8, kept for the worst case).
        slots = rng.sample(range(1 << 24), count + (1 << 16))
        slots = [s for s in slots if s >> 16 != 10][:count]
        for n, slot in enumerate(slots):
            length = 32 if rng.random() < 0.9 else rng.randint(24, 31)
            network = (slot << 8) | (rng.getrandbits(8) & ~((1 << (32 - length)) - 1) & 0xFF)
            account = _sid("AC", 1 + n % ACCOUNTS)
            yield (_sid("IB", n + 1), account, _sid("IL", n + 1), _sid("SD", 0), network, length)
        # The worst case: account 0's own mappings packed inside 10.0.0.0/8.
        for k in range(own_in_slash8):
            network = (10 << 24) | (k * 97 % (1 << 24))
            yield (_sid("IB", count + k + 1), _sid("AC", 0), _sid("IL", count + k + 1),
                   _sid("SD", 0), network, 32)  # fmt: skip

    conn.executemany(
        "INSERT INTO source_ip_mappings (sid, account_sid, ip_record_sid, sip_domain_sid, "
        "network, prefix_len, date_created, date_updated) VALUES (?, ?, ?, ?, ?, ?, 0, 0)",
        rows(),  # type: ignore[arg-type]
    )
    conn.execute("COMMIT")
    conn.close()


def per_call(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mappings", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overlap.db"
        started = time.perf_counter()
        build(path, args.mappings, 100_000)
        print(f"built {args.mappings:,} mappings in {time.perf_counter() - started:.0f} s")
        conn = apsw.Connection(str(path))  # the store's SQLite, as the server reads it
        tx = SqliteTx(conn)
        rng = random.Random(11)
        family = _sid("AC", ACCOUNTS + 1)  # a family with no mappings: every check is a full one
        probes = [
            (rng.getrandbits(32) & ~((1 << (32 - length)) - 1) & 0xFFFFFFFF, length)
            for length in [rng.randint(8, 32) for _ in range(2000)]
        ]
        record = _sid("IL", 0)
        ratios: list[float] = []
        absolute: list[float] = []
        for _ in range(args.rounds):
            pairs = []
            for network, length in probes:
                base = per_call(lambda: tx.get(IpRecord, record), 20)
                check = per_call(
                    lambda n=network, p=length: tx.overlaps_outside_family(n, p, family), 20
                )
                pairs.append((check / base, check))
            ratios.append(statistics.median(r for r, _ in pairs))
            absolute.append(statistics.median(c for _, c in pairs))
        print(
            f"overlap check / record get, random /8../32 among {args.mappings:,}: "
            f"median {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}); "
            f"{statistics.median(absolute) * 1e6:.0f} µs"
        )
        worst = [
            per_call(lambda: tx.overlaps_outside_family(10 << 24, 8, _sid("AC", 0)), 3)
            / per_call(lambda: tx.get(IpRecord, record), 200)
            for _ in range(args.rounds)
        ]
        print(
            "worst case, a /8 holding 100,000 of the family's own mappings / record get: "
            f"median {statistics.median(worst):.0f} (rounds {min(worst):.0f}-{max(worst):.0f})"
        )


if __name__ == "__main__":
    main()
