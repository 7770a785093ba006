"""API throughput: create, fetch and list-page requests per second over real HTTP.

Starts `sipmap serve` on a fresh SQLite file and drives it with wrk (keep-alive,
concurrent connections; Debian package `wrk`). Every figure is reported as a ratio
to a trivial JSON endpoint (`GET /health`) served by the same process and stack in
the same run, alternating rounds, because the machine is shared and noisy.

    python bench/bench_api.py [--connections 32] [--seconds 3] [--rounds 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "bench.db")
        base = server.base_url
        try:
            with httpx.Client(base_url=base, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
                sids = [
                    http.post(
                        "/v1/IpRecords", data={"IpAddress": f"10.0.{i // 250}.{i % 250}"}
                    ).json()["sid"]
                    for i in range(200)
                ]
            post = Path(tmp) / "post.lua"
            post.write_text(
                'wrk.method = "POST"\n'
                'wrk.body = "IpAddress=10.1.2.3&CidrPrefixLength=32&FriendlyName=bench"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            )
            scenarios = {
                "baseline": (f"{base}/health", None, False),
                "fetch": (f"{base}/v1/IpRecords/{sids[100]}", None, True),
                "list page (50)": (f"{base}/v1/IpRecords?PageSize=50", None, True),
                "create": (f"{base}/v1/IpRecords", post, True),
            }
            results: dict[str, list[float]] = {name: [] for name in scenarios}
            for _ in range(args.rounds):
                for name, (url, script, auth) in scenarios.items():
                    results[name].append(wrk(url, args.connections, args.seconds, script, auth))
        finally:
            server.stop()

    baseline = statistics.median(results["baseline"])
    print(
        f"sipmap API throughput: wrk, {args.connections} keep-alive connections, "
        f"{args.rounds} rounds x {args.seconds:g}s, median req/s; ratio = / baseline"
    )
    print(f"{'scenario':<16}{'req/s':>10}{'ratio':>8}{'target':>8}")
    failed = False
    for name, values in results.items():
        rate = statistics.median(values)
        ratio = rate / baseline
        target = TARGETS.get(name)
        mark = ""
        if target is not None:
            mark = f">={target}" + (" ok" if ratio >= target else " MISSED")
            failed |= ratio < target
        print(f"{name:<16}{rate:>10.0f}{ratio:>8.2f}  {mark}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
