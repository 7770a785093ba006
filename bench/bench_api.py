"""API throughput: create, fetch and list-page requests per second over real HTTP.

Starts `sipmap serve` on a fresh SQLite file and drives it with wrk (keep-alive,
concurrent connections; Debian package `wrk`). Every figure is reported as a ratio
to a trivial JSON endpoint (`GET /health`) served by the same process and stack,
because the machine is shared and noisy: each run of a scenario is paired with a
baseline run right next to it (before it in even rounds, after it in odd ones, so a
drift in the machine's speed favours neither), and the ratio quoted is the median
of the pairs' ratios.

    python bench/bench_api.py [--connections 64] [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from sipmap.testing import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, start_server

ACCOUNT_SID = DEFAULT_ACCOUNT_SID
AUTH_TOKEN = DEFAULT_AUTH_TOKEN
TARGETS = {"fetch": 0.6, "create": 0.4}


def wrk(url: str, connections: int, seconds: int, script: Path | None, auth: bool) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if auth:
        token = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        cmd += ["-H", f"Authorization: Basic {token}"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors during the run of {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


Run = tuple[str, Path | None, bool]  # url, wrk script, authenticated
# One measurement: every (url, script, auth) of the list loaded at once, rates summed
# (one wrk per node when several nodes serve the same scenario).
Scenario = list[Run]


def wrk_all(runs: Scenario, connections: int, seconds: int) -> float:
    if len(runs) == 1:
        url, script, auth = runs[0]
        return wrk(url, connections, seconds, script, auth)
    from concurrent.futures import ThreadPoolExecutor

    share = max(1, connections // len(runs))
    with ThreadPoolExecutor(len(runs)) as pool:
        rates = pool.map(lambda r: wrk(r[0], share, seconds, r[1], r[2]), runs)
        return sum(rates)


def paired_rounds(
    baseline: Scenario, scenarios: dict[str, Scenario], connections: int, seconds: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each scenario run beside a baseline run, alternating which goes first: the rates
    of every run, and each pair's ratio scenario / baseline."""
    rates: dict[str, list[float]] = {name: [] for name in ["baseline", *scenarios]}
    ratios: dict[str, list[float]] = {name: [] for name in scenarios}
    for round_ in range(rounds):
        for name, scenario in scenarios.items():
            pair = [baseline, scenario] if round_ % 2 == 0 else [scenario, baseline]
            measured = [wrk_all(runs, connections, seconds) for runs in pair]
            if round_ % 2:
                measured.reverse()
            base_rate, rate = measured
            rates["baseline"].append(base_rate)
            rates[name].append(rate)
            ratios[name].append(rate / base_rate)
    return rates, ratios


def report(
    rates: dict[str, list[float]], ratios: dict[str, list[float]], targets: dict[str, float]
) -> bool:
    """Print the table; whether every target was met."""
    print(f"{'scenario':<16}{'req/s':>10}{'ratio':>8}{'range':>12}  target")
    print(f"{'baseline':<16}{statistics.median(rates['baseline']):>10.0f}{1:>8.2f}")
    met = True
    for name, values in ratios.items():
        ratio = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        target = targets.get(name)
        mark = ""
        if target is not None:
            mark = f">={target}" + (" ok" if ratio >= target else " MISSED")
            met &= ratio >= target
        print(f"{name:<16}{statistics.median(rates[name]):>10.0f}{ratio:>8.2f}{spread:>12}  {mark}")
    return met


POST_SCRIPT = (
    'wrk.method = "POST"\n'
    'wrk.body = "IpAddress=10.1.2.3&CidrPrefixLength=32&FriendlyName=bench"\n'
    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
)


def seed_records(base_url: str, count: int = 200) -> list[str]:
    with httpx.Client(base_url=base_url, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        return [
            http.post("/v1/IpRecords", data={"IpAddress": f"10.0.{i // 250}.{i % 250}"}).json()[
                "sid"
            ]
            for i in range(count)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "bench.db")
        base = server.base_url
        try:
            sids = seed_records(base)
            post = Path(tmp) / "post.lua"
            post.write_text(POST_SCRIPT)
            scenarios = {
                "fetch": [(f"{base}/v1/IpRecords/{sids[100]}", None, True)],
                "list page (50)": [(f"{base}/v1/IpRecords?PageSize=50", None, True)],
                "create": [(f"{base}/v1/IpRecords", post, True)],
            }
            baseline: Scenario = [(f"{base}/health", None, False)]
            rates, ratios = paired_rounds(
                baseline, scenarios, args.connections, args.seconds, args.rounds
            )
        finally:
            server.stop()

    print(
        f"sipmap API throughput: wrk, {args.connections} keep-alive connections, "
        f"{args.rounds} rounds x {args.seconds:g}s per run; "
        "ratio = median over rounds of scenario / the baseline run beside it"
    )
    if not report(rates, ratios, TARGETS):
        sys.exit(1)


if __name__ == "__main__":
    main()
