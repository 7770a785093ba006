"""The recogniser as users meet it: whole-process memory, start-up time and event-loop
gaps of `sipmap serve` at up to a million source IP mappings, against a baseline build.

For each size, a SQLite file with N mappings is made once with plain SQL (bench_recognize's
mix of networks; one SIP domain per 100 mappings; every other domain with an IP ACL of 5
addresses). Then, round by round, each implementation in turn (this checkout, and with
`--baseline DIR` another checkout, e.g. `git archive main | tar -x -C DIR`, with its
extension built in place: `python setup.py build_ext --inplace` there):

1. `sipmap serve` is started on the file and polled until a recognition request for a
   mapped address is answered: seconds from spawn to that first answer, and the
   process's RSS then, minus the RSS of the same serve on an empty file, per mapping.
2. In a child process (serve's GIL switch interval and GC thresholds), the worst gap of
   a 1 ms asyncio heartbeat: during the start-up load (in a thread), during a live
   `rebuild` (where the implementation has one), and during `--writes` sequential
   writes (an IP record and its mapping, through the service), against an idle second.

The machine is shared: every figure is printed for every round, then as ranges. A
scenario that exceeds `--timeout` is reported as such and the run goes on.

    python bench/bench_footprint.py --sizes 100000,1000000 --baseline /tmp/sipmap-main
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from synthetic import cpu_seconds, dotted, heartbeat, random_prefix  # noqa: E402

ACCOUNT = "AC" + "0" * 31 + "1"
TOKEN = "sipmap-bench-token-0123456789abcdef"
T0 = 1_767_225_600
# The live writes' addresses (100.x.y.z/32): no generated mapping may be in this /8, or
# a write could land on a network already mapped to another domain (a Conflict).
WRITES_OCTET = 100


# -- the database -------------------------------------------------------------------------


def make_db(path: Path, size: int, seed: int = 1) -> None:
    """N mappings and what they need."""
    from sipmap.store.sqlite import SqliteStore

    SqliteStore(path).close_blocking()  # the schema, by the migrations
    rng = random.Random(seed)
    seen: dict[tuple[int, int], None] = {}
    parents: list[tuple[int, int]] = []
    while len(seen) < size:
        prefix = random_prefix(rng, parents)
        if prefix[0] >> 24 == WRITES_OCTET:  # prefixes are /16 or longer: inside it
            continue
        if prefix not in seen:
            seen[prefix] = None
            if prefix[1] < 32 and len(parents) < 5000:
                parents.append(prefix)
    networks = list(seen)
    domains = [f"SD{n:032x}" for n in range(max(1, size // 100) if size else 0)]
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO accounts (sid, owner_account_sid, friendly_name, status, "
            "auth_token_hash, date_created, date_updated) VALUES (?, ?, 'bench', 'active', ?, ?, ?)",
            (ACCOUNT, ACCOUNT, "0" * 64, T0, T0),
        )
        conn.executemany(
            "INSERT INTO sip_domains (sid, account_sid, domain_name, voice_method, "
            "voice_fallback_method, voice_status_callback_method, sip_registration, "
            "emergency_calling_enabled, secure, date_created, date_updated) "
            "VALUES (?, ?, ?, 'POST', 'POST', 'POST', 0, 0, 0, ?, ?)",
            ((sid, ACCOUNT, f"d{n}.sip.twilio.com", T0, T0) for n, sid in enumerate(domains)),
        )
        conn.executemany(
            "INSERT INTO ip_records (sid, account_sid, ip_address, cidr_prefix_length, "
            "date_created, date_updated) VALUES (?, ?, ?, ?, ?, ?)",
            ((f"IL{i:032x}", ACCOUNT, dotted(net), plen, T0, T0) for i, (net, plen) in enumerate(networks)),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO source_ip_mappings (sid, account_sid, ip_record_sid, sip_domain_sid, "
            "network, prefix_len, date_created, date_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    f"IB{i:032x}",
                    ACCOUNT,
                    f"IL{i:032x}",
                    domains[i % len(domains)],
                    net,
                    plen,
                    T0,
                    T0,
                )
                for i, (net, plen) in enumerate(networks)
            ),
        )
        for n, domain in enumerate(domains[::2]):
            acl = f"AL{n:032x}"
            conn.execute(
                "INSERT INTO ip_access_control_lists (sid, account_sid, friendly_name, "
                "date_created, date_updated) VALUES (?, ?, 'a', ?, ?)",
                (acl, ACCOUNT, T0, T0),
            )
            conn.execute(
                "INSERT INTO acl_mappings (sid, account_sid, domain_sid, date_created, "
                "date_updated) VALUES (?, ?, ?, ?, ?)",
                (acl, ACCOUNT, domain, T0, T0),
            )
            for k in range(5):
                net, plen = rng.choice(networks)
                conn.execute(
                    "INSERT INTO ip_addresses (sid, account_sid, ip_access_control_list_sid, "
                    "friendly_name, ip_address, cidr_prefix_length, date_created, date_updated) "
                    "VALUES (?, ?, ?, 'a', ?, ?, ?, ?)",
                    (f"IP{n * 5 + k:032x}", ACCOUNT, acl, dotted(net), plen, T0, T0),
                )
    conn.close()


# -- 1. serve: start-up to the first answer, and RSS -----------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(src: Path | None) -> dict[str, str]:
    env = {**os.environ, "SIPMAP_ACCOUNT_SID": ACCOUNT, "SIPMAP_AUTH_TOKEN": TOKEN}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def serve_once(src: Path | None, db: Path, probe: str, timeout: float) -> dict[str, Any]:
    """Seconds from spawn to the first recognition answered, the CPU seconds the process
    used until then (what a quiet machine's wall time would be, near enough), and the
    RSS at that moment."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/sipmap/v1/Recognition?SourceIp={probe}"
    auth = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {auth}"})
    command = [sys.executable, "-m", "sipmap.cli", "serve", "--port", str(port), "--db", str(db)]
    start = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        env=env_for(src),
        stdout=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    try:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                return {"error": f"exited with {process.returncode}"}
            try:
                with urllib.request.urlopen(request, timeout=2) as answer:
                    body = json.loads(answer.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.02)
                continue
            elapsed = time.perf_counter() - start
            if body.get("recognized") is not (probe != "0.0.0.0"):
                return {"error": f"wrong answer {body}"}
            cpu = cpu_seconds(process.pid)
            return {"startup_s": elapsed, "startup_cpu_s": cpu, "rss": rss_bytes(process.pid)}
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- 2. event-loop gaps (in a child process, on either implementation) -------------------------


async def _gaps(db: str, writes: int) -> dict[str, Any]:
    from sipmap.server import GC_THRESHOLDS, SWITCH_INTERVAL
    from sipmap.service import open_service
    from sipmap.store.sqlite import SqliteStore

    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    store = SqliteStore(db)
    service = open_service(store)
    recognizer = service.recognizer
    out: dict[str, Any] = {}

    async def beat_during(work: Any) -> tuple[float, float, float]:
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop, 0.001))
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await work
        elapsed = time.perf_counter() - start
        stop.set()
        gaps = await beat
        return gaps.max_ms, gaps.p99_ms, elapsed

    out["idle"] = await beat_during(asyncio.sleep(1.0))
    out["load"] = await beat_during(asyncio.to_thread(recognizer.load, store))
    if hasattr(recognizer, "rebuild"):
        out["rebuild"] = await beat_during(recognizer.rebuild(store))

    domain = (await store.read(lambda tx: tx.find(_domain_model(), account_sid=ACCOUNT)))[0].sid
    made: list[str] = []

    async def write_many() -> None:
        for i in range(writes):
            ip = dotted((WRITES_OCTET << 24) + (os.getpid() % 256 << 16) + i)
            record = await service.voice.create_ip_record(ACCOUNT, ip, 32, None)
            await service.voice.create_mapping(ACCOUNT, record.sid, domain)
            made.append(record.sid)

    out["writes"] = await beat_during(write_many())
    for sid in made:  # the file stays as it was, for the next round
        await service.voice.delete_ip_record(ACCOUNT, sid)
    await store.close()
    return out


def _domain_model() -> Any:
    from sipmap.core.models import SipDomain

    return SipDomain


def gaps_once(src: Path | None, db: Path, writes: int, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child-gaps", str(db)]
    try:
        done = subprocess.run(
            [*command, "--writes", str(writes)],
            env=env_for(src),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tempfile.gettempdir(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- report ----------------------------------------------------------------------------------


def span(values: list[float], fmt: str) -> str:
    if not values:
        return "—"
    low, high = min(values), max(values)
    return format(low, fmt) if low == high else f"{format(low, fmt)}-{format(high, fmt)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout to compare with")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per scenario")
    parser.add_argument("--dir", type=Path, default=None, help="keep the databases here")
    parser.add_argument("--child-gaps", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_gaps:
        print(json.dumps(asyncio.run(_gaps(args.child_gaps, args.writes))))
        return

    impls: dict[str, Path | None] = {"this": None}
    if args.baseline is not None:
        impls["baseline"] = args.baseline.resolve() / "src"
    folder = args.dir or Path(tempfile.mkdtemp(prefix="sipmap-footprint-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"# bench_footprint: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    empty = folder / "empty.db"
    if not empty.exists():
        make_db(empty, 0)
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    notes: list[str] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        # v2: none in WRITES_OCTET's /8 (a file made before that is not reused)
        db = folder / f"mappings-{size}-v2.db"
        if not db.exists():
            start = time.perf_counter()
            make_db(db, size)
            print(f"made {db.name} in {time.perf_counter() - start:.0f} s")
        probe = _probe(db)
        for round_ in range(args.rounds):
            order = list(impls) if round_ % 2 == 0 else list(reversed(impls))
            for name in order:
                src = impls[name]
                row = results.setdefault((name, size), {})
                base = serve_once(src, empty, "0.0.0.0", args.timeout)
                full = serve_once(src, db, probe, args.timeout)
                gaps = gaps_once(src, db, args.writes, args.timeout)
                line = f"round {round_ + 1} {name} {size:,}: "
                if "error" in base or "error" in full:
                    notes.append(line + f"serve: {base.get('error') or full.get('error')}")
                else:
                    row.setdefault("startup_s", []).append(full["startup_s"])
                    row.setdefault("startup_cpu_s", []).append(full["startup_cpu_s"])
                    row.setdefault("per_mapping", []).append((full["rss"] - base["rss"]) / size)
                    row.setdefault("rss_mib", []).append(full["rss"] / 2**20)
                if "error" in gaps:
                    notes.append(line + f"gaps: {gaps['error']}")
                else:
                    for key, (gap, p99, seconds) in gaps.items():
                        row.setdefault(f"{key}_gap", []).append(gap)
                        row.setdefault(f"{key}_p99", []).append(p99)
                        row.setdefault(f"{key}_s", []).append(seconds)
                print(line + json.dumps({k: round(v[-1], 2) for k, v in row.items()}), flush=True)

    print(
        "\n| implementation | mappings | RSS B/mapping | RSS MiB | start-up to first answer s "
        "| its CPU s | worst gap ms (p99): idle | load | rebuild | writes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, size), row in results.items():

        def cell(key: str, fmt: str, row: dict[str, list[float]] = row) -> str:
            return span(row.get(key, []), fmt)

        gaps = [
            f"{cell(f'{k}_gap', '.0f')} ({cell(f'{k}_p99', '.0f')})"
            for k in ("idle", "load", "rebuild", "writes")
        ]
        print(
            f"| {name} | {size:,} | {cell('per_mapping', '.0f')} | {cell('rss_mib', '.0f')} "
            f"| {cell('startup_s', '.2f')} | {cell('startup_cpu_s', '.2f')} | "
            + " | ".join(gaps)
            + " |"
        )
    for note in notes:
        print(f"- {note}")


def _probe(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        network = conn.execute("SELECT network FROM source_ip_mappings ORDER BY seq").fetchone()[0]
    finally:
        conn.close()
    return dotted(int(network))


if __name__ == "__main__":
    main()
