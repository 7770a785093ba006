"""API throughput: create, fetch and list-page requests per second over real HTTP.

Starts `sipmap serve` on a SQLite file holding `--records` IP records (100,000 by
default, written with plain SQL before the server starts) and drives it with wrk (keep-alive,
concurrent connections; Debian package `wrk`). Every figure is reported as a ratio
to a trivial JSON endpoint (`GET /health`) served by the same process and stack,
because the machine is shared and noisy: each run of a scenario is paired with a
baseline run right next to it (before it in even rounds, after it in odd ones, so a
drift in the machine's speed favours neither), and the ratio quoted is the median
of the pairs' ratios. A run that fails or times out is reported, and the others go on.

Two fetch scenarios: one SID over and over (always from the store's row cache: the
best case), and every SID in a random order (what many clients fetching their own
resources look like: mostly cache misses). The realistic one carries the target.

    python bench/bench_api.py [--connections 64] [--seconds 3] [--rounds 5] [--records 100000]

With `--against DIR`, it instead compares this tree with another sipmap source tree
(say, an earlier commit: `git archive <commit> | tar -x -C DIR` and
`python setup.py build_ext --inplace` there): both servers run side by side, each
scenario is measured on both in alternating order, and the ratio quoted is this
tree's rate over the other's (median of the rounds' ratios).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sipmap.store.sqlite import SqliteStore
from sipmap.testing import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, start_server
from synthetic import cpu_seconds

ACCOUNT_SID = DEFAULT_ACCOUNT_SID
AUTH_TOKEN = DEFAULT_AUTH_TOKEN
TARGETS = {"fetch (all SIDs, random order)": 0.6, "create": 0.4}
T0 = 1_767_225_600
Scenario = tuple[str, Path | None, bool]  # URL, wrk script, authenticated
CYCLE = """\
local sids = {}
for line in io.lines("%s") do sids[#sids + 1] = line end
local i = 0
request = function()
  i = i %% #sids + 1
  return wrk.format(nil, "/v1/IpRecords/" .. sids[i])
end
"""


def seed_records(db: Path, count: int) -> list[str]:
    """The bootstrap account and `count` IP records of it, straight into a new file."""
    SqliteStore(db).close_blocking()  # the schema
    sids = [f"IL{n:032x}" for n in range(1, count + 1)]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO accounts (sid, owner_account_sid, friendly_name, status, "
            "auth_token_hash, date_created, date_updated) VALUES (?, ?, 'b', 'active', ?, ?, ?)",
            (ACCOUNT_SID, ACCOUNT_SID, "0" * 64, T0, T0),
        )
        conn.executemany(
            "INSERT INTO ip_records (sid, account_sid, ip_address, cidr_prefix_length, "
            "date_created, date_updated) VALUES (?, ?, ?, 32, ?, ?)",
            ((sid, ACCOUNT_SID, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", T0, T0)
             for n, sid in enumerate(sids)),
        )  # fmt: skip
    conn.close()
    return sids


def wrk(url: str, connections: int, seconds: int, script: Path | None, auth: bool) -> float | None:
    """Requests per second; None (reported, not fatal) if the run failed or timed out."""
    # A generous timeout: on the shared machine a request can wait seconds for a core.
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    if auth:
        token = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        cmd += ["-H", f"Authorization: Basic {token}"]
    if script is not None:
        cmd += ["-s", str(script)]
    try:
        done = subprocess.run(
            [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"timed out: {url}", file=sys.stderr)
        return None
    out = done.stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or "Non-2xx" in out or "Socket errors" in out or match is None:
        print(f"errors during the run of {url}:\n{out}{done.stderr}", file=sys.stderr)
        return None
    return float(match.group(1))


def scenarios_of(base: str, cycle: Path, post: Path, sid: str) -> dict[str, Scenario]:
    """The scenarios compared between two trees, `health` first (the baseline)."""
    return {
        "health": (f"{base}/health", None, False),
        "fetch (one SID)": (f"{base}/v1/IpRecords/{sid}", None, True),
        "fetch (all SIDs)": (base, cycle, True),
        "list page (50)": (f"{base}/v1/IpRecords?PageSize=50", None, True),
        "create": (f"{base}/v1/IpRecords", post, True),
    }


def write_cycle_script(folder: Path, sids: list[str]) -> Path:
    """A wrk script fetching every SID of `sids`, in a fixed random order."""
    shuffled = list(sids)
    random.Random(1).shuffle(shuffled)
    (folder / "sids.txt").write_text("\n".join(shuffled) + "\n")
    cycle = folder / "cycle.lua"
    cycle.write_text(CYCLE % (folder / "sids.txt"))
    return cycle


def compare(args: argparse.Namespace, other_src: Path) -> None:
    """This tree against the sipmap source tree `other_src`, scenario by scenario."""
    with tempfile.TemporaryDirectory() as tmp:
        post = write_post_script(Path(tmp))
        # Both files hold the same records, so both servers fetch the same SIDs.
        sids = seed_records(Path(tmp) / "this.db", args.records)
        shutil.copy(Path(tmp) / "this.db", Path(tmp) / "other.db")
        cycle = write_cycle_script(Path(tmp), sids)
        this = start_server(Path(tmp) / "this.db", ready_timeout=120)
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(other_src / "src")
        try:
            other = start_server(Path(tmp) / "other.db", ready_timeout=120)
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
        try:
            mine = scenarios_of(this.base_url, cycle, post, sids[100])
            theirs = scenarios_of(other.base_url, cycle, post, sids[100])
            rates: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in mine}
            cpu: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in mine}
            for round_ in range(args.rounds):
                for name in mine:
                    pair = [(mine[name], this), (theirs[name], other)]
                    if round_ % 2:
                        pair.reverse()
                    measured = []
                    for (url, script, auth), server in pair:
                        before = cpu_seconds(server.process.pid)
                        rate = wrk(url, args.connections, args.seconds, script, auth)
                        spent = cpu_seconds(server.process.pid) - before
                        if rate is not None:
                            measured.append((rate, spent / (rate * args.seconds) * 1e6))
                    if len(measured) < 2:
                        continue  # reported by wrk(); this round has no pair for it
                    if round_ % 2:
                        measured.reverse()
                    for side in (0, 1):
                        rates[name][side].append(measured[side][0])
                        cpu[name][side].append(measured[side][1])
        finally:
            this.stop()
            other.stop()
    print(
        f"sipmap API throughput, this tree vs {other_src}: wrk, {args.connections} keep-alive "
        f"connections, {args.rounds} rounds x {args.seconds:g}s per run; "
        "ratio = median over rounds of this / other, measured side by side"
    )
    print_pairs(rates, "req/s", 0)
    # CPU per request is steadier than req/s when other processes take the cores.
    print("server CPU per request (user+system from /proc over the run / requests)")
    print_pairs(cpu, "µs", 1)


def print_pairs(pairs: dict[str, tuple[list[float], list[float]]], unit: str, digits: int) -> None:
    """One row per scenario: the medians of this tree and the other, and the median and
    range of their per-round ratios."""
    print(f"{'scenario':<16}{'this ' + unit:>12}{'other ' + unit:>13}{'ratio':>8}{'range':>12}")
    for name, (new, old) in pairs.items():
        ratios = [a / b for a, b in zip(new, old, strict=True)]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(
            f"{name:<16}{statistics.median(new):>12.{digits}f}{statistics.median(old):>13.{digits}f}"
            f"{statistics.median(ratios):>8.2f}{spread:>12}"
        )


def write_post_script(folder: Path) -> Path:
    post = folder / "post.lua"
    post.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = "IpAddress=10.1.2.3&CidrPrefixLength=32&FriendlyName=bench"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
    )
    return post


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=100_000, help="IP records to fetch from")
    parser.add_argument("--against", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    if args.against is not None:
        compare(args, args.against.resolve())
        return

    with tempfile.TemporaryDirectory() as tmp:
        sids = seed_records(Path(tmp) / "bench.db", args.records)
        cycle = write_cycle_script(Path(tmp), sids)
        server = start_server(Path(tmp) / "bench.db", ready_timeout=120)
        base = server.base_url
        try:
            post = write_post_script(Path(tmp))
            baseline = (f"{base}/health", None, False)
            scenarios = {
                "fetch (one SID, cached)": (f"{base}/v1/IpRecords/{sids[100]}", None, True),
                "fetch (all SIDs, random order)": (base, cycle, True),
                "list page (50)": (f"{base}/v1/IpRecords?PageSize=50", None, True),
                "create": (f"{base}/v1/IpRecords", post, True),
            }
            rates: dict[str, list[float]] = {name: [] for name in ["baseline", *scenarios]}
            ratios: dict[str, list[float]] = {name: [] for name in scenarios}
            # Server CPU per request, and the baseline's over the scenario's: steadier
            # than requests per second when other processes take the cores.
            cpu: dict[str, list[float]] = {name: [] for name in ["baseline", *scenarios]}
            cpu_ratios: dict[str, list[float]] = {name: [] for name in scenarios}
            failures: dict[str, int] = {}
            pid = server.process.pid
            for round_ in range(args.rounds):
                for name, scenario in scenarios.items():
                    pair = [baseline, scenario] if round_ % 2 == 0 else [scenario, baseline]
                    measured: list[tuple[float, float] | None] = []
                    for url, script, auth in pair:
                        before = cpu_seconds(pid)
                        rate = wrk(url, args.connections, args.seconds, script, auth)
                        spent = cpu_seconds(pid) - before
                        measured.append(
                            None if rate is None else (rate, spent / (rate * args.seconds) * 1e6)
                        )
                    if round_ % 2:
                        measured.reverse()
                    base, this = measured
                    if base is None or this is None:
                        failures[name] = failures.get(name, 0) + 1
                        continue
                    rates["baseline"].append(base[0])
                    rates[name].append(this[0])
                    ratios[name].append(this[0] / base[0])
                    cpu["baseline"].append(base[1])
                    cpu[name].append(this[1])
                    cpu_ratios[name].append(base[1] / this[1])
        finally:
            server.stop()

    print(
        f"sipmap API throughput: wrk, {args.connections} keep-alive connections, "
        f"{args.rounds} rounds x {args.seconds:g}s per run; "
        "ratio = median over rounds of scenario / the baseline run beside it; "
        "CPU ratio = the baseline's server CPU per request / the scenario's"
    )
    print(
        f"{'scenario':<32}{'req/s':>10}{'ratio':>8}{'range':>12}  {'target':<14}"
        f"{'CPU µs/req':>11}{'CPU ratio':>10}{'range':>12}"
    )
    print(
        f"{'baseline':<32}{statistics.median(rates['baseline']):>10.0f}{1:>8.2f}{'':>12}  "
        f"{'':<14}{statistics.median(cpu['baseline']):>11.1f}{1:>10.2f}"
    )
    failed = False
    for name, values in ratios.items():
        if not values:
            print(f"{name:<32}{'failed':>10}")
            failed = True
            continue
        ratio = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        target = TARGETS.get(name)
        mark = ""
        if target is not None:
            mark = f">={target}" + (" ok" if ratio >= target else " MISSED")
            failed |= ratio < target
        by_cpu = cpu_ratios[name]
        print(
            f"{name:<32}{statistics.median(rates[name]):>10.0f}{ratio:>8.2f}{spread:>12}  "
            f"{mark:<14}{statistics.median(cpu[name]):>11.1f}{statistics.median(by_cpu):>10.2f}"
            f"{f'{min(by_cpu):.2f}-{max(by_cpu):.2f}':>12}"
        )
    for name, count in failures.items():
        print(f"{name}: {count} of {args.rounds} rounds failed or timed out (details above)")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
