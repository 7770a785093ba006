"""Several nodes on one PostgreSQL: propagation percentiles and API throughput.

Propagation: two `sipmap serve` nodes on one fresh schema; a write through node A (a
new IP record and its source IP mapping, or a mapping moved to another domain), then
node B's recognition endpoint asked in a tight loop until it answers with the change.
The figure is the time from A's HTTP response to the first B answer that shows it (it
includes up to one recognition round trip on B, whose own time is printed beside it).

Throughput: bench_api.py's scenarios and pairing (each scenario run beside a run of the
`GET /health` baseline of the same nodes) on SQLite (the reference), PostgreSQL with one
node, and PostgreSQL with two nodes loaded at once (one wrk each, rates summed).

Write latency: creates one after the other through node A (one client), with 1 and 2
nodes: p50/p99 of the HTTP round trip (with 2 nodes a write waits for the other node's
acknowledgement, store/leases.py).

`--against DIR` compares this tree with the sipmap source tree DIR on PostgreSQL (1 and
2 nodes): both trees' nodes run at once on schemas of their own, and every round
measures each tree in turn (the order alternating), throughput ratios against each
tree's own baseline, and write latency in alternating blocks.

    python bench/bench_multinode.py [--changes 300] [--seconds 1] [--rounds 3]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--against DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from bench_api import ACCOUNT_SID, AUTH_TOKEN, T0, write_cycle_script, write_post_script, wrk
from sipmap.testing import RunningServer, start_server

A = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
TARGET_P99_MS = 100.0

Run = tuple[str, Path | None, bool]  # url, wrk script, authenticated
# One measurement: every run of the list loaded at once (one wrk per node), rates summed.
Scenario = list[Run]


def wrk_all(runs: Scenario, connections: int, seconds: int) -> float:
    if len(runs) == 1:
        url, script, auth = runs[0]
        return wrk(url, connections, seconds, script, auth)
    from concurrent.futures import ThreadPoolExecutor

    share = max(1, connections // len(runs))
    with ThreadPoolExecutor(len(runs)) as pool:
        return sum(pool.map(lambda r: wrk(r[0], share, seconds, r[1], r[2]), runs))


def paired_rounds(
    baseline: Scenario, scenarios: dict[str, Scenario], connections: int, seconds: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """As bench_api.py: each scenario run beside a baseline run, alternating which goes
    first; the rates of every run, and each pair's ratio scenario / baseline."""
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


def report(rates: dict[str, list[float]], ratios: dict[str, list[float]]) -> None:
    print(f"{'scenario':<16}{'req/s':>10}{'ratio':>8}{'range':>12}")
    print(f"{'baseline':<16}{statistics.median(rates['baseline']):>10.0f}{1:>8.2f}")
    for name, values in ratios.items():
        ratio = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"{name:<16}{statistics.median(rates[name]):>10.0f}{ratio:>8.2f}{spread:>12}")


@contextmanager
def scratch_schema(base_url: str) -> Iterator[str]:
    schema = f"sipmap_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def nodes(db: str, count: int, src: Path | None = None) -> Iterator[list[RunningServer]]:
    """`count` nodes on `db`, of this tree or (PYTHONPATH) of the source tree `src`."""
    started: list[RunningServer] = []
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src / "src")
    try:
        for _ in range(count):  # one after the other: the first migrates
            started.append(start_server(db, "--sip-port", "0"))
        if src is not None:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
        yield started
    finally:
        if src is not None and os.environ.get("PYTHONPATH") != saved:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
        for server in started:
            server.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def propagation(db: str, changes: int) -> bool:
    with nodes(db, 2) as (one, two):
        auth = (ACCOUNT_SID, AUTH_TOKEN)
        with (
            httpx.Client(base_url=one.base_url, auth=auth) as a,
            httpx.Client(base_url=two.base_url, auth=auth) as b,
        ):
            domains = [
                a.post(
                    f"{A}/SIP/Domains.json",
                    data={"DomainName": f"b{i}-{uuid.uuid4().hex[:8]}.sip.twilio.com"},
                ).json()["sid"]
                for i in range(2)
            ]
            delays: list[float] = []
            polls: list[float] = []
            mappings: list[tuple[str, str, int]] = []  # (mapping sid, ip, domain index)
            for i in range(changes):
                if i % 2 == 0 or not mappings:
                    ip = f"10.{i // 250 % 250}.{i % 250}.0"
                    record = a.post("/v1/IpRecords", data={"IpAddress": ip, "CidrPrefixLength": 24})
                    sid = record.json()["sid"]
                    form = {"IpRecordSid": sid, "SipDomainSid": domains[0]}
                    response = a.post("/v1/SourceIpMappings", data=form)
                    done = time.perf_counter()
                    assert response.status_code == 201, response.text
                    mappings.append((response.json()["sid"], ip, 0))
                    probe, want = ip, domains[0]
                else:
                    sid, ip, current = mappings[i % len(mappings)]
                    target = 1 - current
                    response = a.post(
                        f"/v1/SourceIpMappings/{sid}", data={"SipDomainSid": domains[target]}
                    )
                    done = time.perf_counter()
                    assert response.status_code == 200, response.text
                    mappings[i % len(mappings)] = (sid, ip, target)
                    probe, want = ip, domains[target]
                deadline = done + 10
                while True:
                    asked = time.perf_counter()
                    got = b.get("/sipmap/v1/Recognition", params={"SourceIp": probe}).json()
                    answered = time.perf_counter()
                    polls.append(answered - asked)
                    if got["sip_domain_sid"] == want:
                        delays.append(answered - done)
                        break
                    if answered > deadline:
                        raise SystemExit(f"change {i} never reached node B")
    ms = [d * 1000 for d in delays]
    p50, p99, worst = percentile(ms, 0.5), percentile(ms, 0.99), max(ms)
    poll = statistics.median(polls) * 1000
    print(
        f"propagation, write response on node A -> visible to recognition on node B "
        f"({len(ms)} changes: new mappings and moved mappings)"
    )
    print(f"  p50 {p50:.1f} ms   p99 {p99:.1f} ms   max {worst:.1f} ms   target p99 < {TARGET_P99_MS:g} ms"
          f"{' ok' if p99 < TARGET_P99_MS else ' MISSED'}")  # fmt: skip
    print(f"  (one recognition request on node B, for scale: median {poll:.2f} ms)")
    return p99 < TARGET_P99_MS


def seed(base: str) -> list[str]:
    """200 IP records of the bootstrap account, made through the API."""
    with httpx.Client(base_url=base, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        return [
            http.post("/v1/IpRecords", data={"IpAddress": f"10.0.{i // 250}.{i % 250}"}).json()[
                "sid"
            ]
            for i in range(200)
        ]


def seed_many(db: str, count: int) -> list[str]:
    """`count` more IP records of the bootstrap account, straight into the database the
    nodes run on (PostgreSQL's triggers log them, so the nodes' caches hear of them)."""
    sids = [f"IL{uuid.uuid4().hex}" for _ in range(count)]
    rows = [(sid, ACCOUNT_SID, f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 32, T0, T0)
            for n, sid in enumerate(sids)]  # fmt: skip
    columns = "sid, account_sid, ip_address, cidr_prefix_length, date_created, date_updated"
    if db.startswith("postgres"):
        with (
            psycopg.connect(db) as conn,
            conn.cursor() as cursor,
            cursor.copy(f"COPY ip_records ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:
        import sqlite3

        with contextlib.closing(sqlite3.connect(db, timeout=30)) as lite, lite:
            lite.executemany(f"INSERT INTO ip_records ({columns}) VALUES (?, ?, ?, ?, ?, ?)", rows)
    return sids


def scenarios_of(
    servers: list[RunningServer], tmp: Path, db: str, records: int
) -> tuple[Scenario, dict[str, Scenario]]:
    sids = seed(servers[0].base_url)
    folder = Path(tempfile.mkdtemp(dir=tmp))
    cycle = write_cycle_script(folder, seed_many(db, records))
    post = write_post_script(tmp)
    urls = [s.base_url for s in servers]
    baseline: Scenario = [(f"{u}/health", None, False) for u in urls]
    return baseline, {
        "fetch": [(f"{u}/v1/IpRecords/{sids[100]}", None, True) for u in urls],
        f"fetch {records // 1000}k SIDs": [(u, cycle, True) for u in urls],
        "list page (50)": [(f"{u}/v1/IpRecords?PageSize=50", None, True) for u in urls],
        "create": [(f"{u}/v1/IpRecords", post, True) for u in urls],
    }


def throughput(
    label: str, servers: list[RunningServer], tmp: Path, db: str, args: argparse.Namespace
) -> None:
    baseline, scenarios = scenarios_of(servers, tmp, db, args.records)
    rates, ratios = paired_rounds(baseline, scenarios, args.connections, args.seconds, args.rounds)
    print(f"\n{label}")
    report(rates, ratios)


def create_latencies(server: RunningServer, count: int) -> list[float]:
    """Milliseconds of each of `count` creates made one after the other."""
    times: list[float] = []
    with httpx.Client(base_url=server.base_url, auth=(ACCOUNT_SID, AUTH_TOKEN)) as http:
        for i in range(count):
            started = time.perf_counter()
            response = http.post(
                "/v1/IpRecords", data={"IpAddress": f"10.9.{i // 250 % 250}.{i % 250}"}
            )
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text
    return times


def latency_line(label: str, ms: list[float]) -> str:
    return (
        f"{label:<28}p50 {percentile(ms, 0.5):6.2f} ms   p99 {percentile(ms, 0.99):6.2f} ms"
        f"   ({len(ms)} creates one after the other)"
    )


def write_latency(servers: list[RunningServer], count: int) -> None:
    print(
        latency_line(f"write latency, {len(servers)} node(s)", create_latencies(servers[0], count))
    )


def compare_trees(args: argparse.Namespace, other: Path) -> None:
    """This tree against the source tree `other` on PostgreSQL, 1 and 2 nodes."""
    print(
        f"this tree vs {other}, PostgreSQL: wrk, {args.connections} keep-alive connections in "
        f"all, {args.rounds} rounds x {args.seconds}s per run; ratio = median over rounds of "
        "scenario / the baseline (GET /health on the same nodes) run beside it"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, 2):
            with (
                scratch_schema(args.postgres) as db_this,
                scratch_schema(args.postgres) as db_other,
                nodes(db_this, count) as mine,
                nodes(db_other, count, other) as theirs,
            ):
                trees = {
                    "this": (mine, *scenarios_of(mine, Path(tmp), db_this, args.records)),
                    "other": (theirs, *scenarios_of(theirs, Path(tmp), db_other, args.records)),
                }
                rates: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
                ratios: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
                latency: dict[str, list[float]] = {t: [] for t in trees}
                for round_ in range(args.rounds):
                    order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                    for tree in order:
                        servers, baseline, scenarios = trees[tree]
                        r, q = paired_rounds(baseline, scenarios, args.connections, args.seconds, 1)
                        for name, values in r.items():
                            rates[tree].setdefault(name, []).extend(values)
                        for name, values in q.items():
                            ratios[tree].setdefault(name, []).extend(values)
                        latency[tree] += create_latencies(servers[0], args.creates // args.rounds)
                for tree in trees:
                    print(f"\nPostgreSQL, {count} node{'s' if count > 1 else ''}, {tree} tree")
                    report(rates[tree], ratios[tree])
                    print(latency_line("write latency", latency[tree]))


def lock_waits(db: str, tmp: Path, args: argparse.Namespace) -> None:
    """Creates through two nodes at once, while pg_stat_activity is sampled: how often a
    node's writer waits for the other's write lock, and how often one holds it."""
    import threading

    post = write_post_script(tmp)
    with nodes(db, 2) as servers:
        samples = {"waiting": 0, "writing": 0, "total": 0}
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(db, autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute(
                        "SELECT count(*) FILTER (WHERE wait_event = 'advisory'),"
                        " count(*) FILTER (WHERE state = 'active' AND wait_event IS DISTINCT"
                        " FROM 'advisory') FROM pg_stat_activity"
                        " WHERE application_name LIKE 'sipmap % writer' AND datname = current_database()"
                    ).fetchone()
                    assert row is not None
                    samples["waiting"] += row[0] > 0
                    samples["writing"] += row[1] > 0
                    samples["total"] += 1
                    time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            runs: Scenario = [(f"{s.base_url}/v1/IpRecords", post, True) for s in servers]
            rate = wrk_all(runs, args.connections, args.seconds * 3)
        finally:
            stop.set()
            sampler.join()
    total = max(1, samples["total"])
    print(
        f"\nwrite lock, creates through 2 nodes at once: {rate:.0f} creates/s; of "
        f"{samples['total']} samples of pg_stat_activity, a writer was waiting for the lock "
        f"in {100 * samples['waiting'] / total:.0f}%, one was running a statement in "
        f"{100 * samples['writing'] / total:.0f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SIPMAP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--creates", type=int, default=300, help="for the write latency")
    parser.add_argument(
        "--records", type=int, default=20_000, help="IP records fetched in random order"
    )
    parser.add_argument("--against", type=Path, default=None, metavar="DIR")
    parser.add_argument("--only-lock", action="store_true", help="only the write-lock sampling")
    args = parser.parse_args()

    if args.against is not None:
        compare_trees(args, args.against.resolve())
        return
    if args.only_lock:
        with tempfile.TemporaryDirectory() as tmp, scratch_schema(args.postgres) as db:
            lock_waits(db, Path(tmp), args)
        return
    with scratch_schema(args.postgres) as db:
        met = propagation(db, args.changes)
    if not args.skip_throughput:
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is needed: apt-get install wrk")
        print(
            f"\nAPI throughput: wrk, {args.connections} keep-alive connections in all, "
            f"{args.rounds} rounds x {args.seconds}s per run; ratio = median over rounds of "
            "scenario / the baseline (GET /health on the same nodes) run beside it"
        )
        with tempfile.TemporaryDirectory() as tmp:
            with nodes(str(Path(tmp) / "ref.db"), 1) as servers:
                ref = str(Path(tmp) / "ref.db")
                throughput("SQLite, one node (reference)", servers, Path(tmp), ref, args)
            for count in (1, 2):
                with scratch_schema(args.postgres) as db, nodes(db, count) as servers:
                    label = f"PostgreSQL, {count} node{'s' if count > 1 else ''}"
                    throughput(label, servers, Path(tmp), db, args)
                    write_latency(servers, args.creates)
            with scratch_schema(args.postgres) as db:
                lock_waits(db, Path(tmp), args)
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
