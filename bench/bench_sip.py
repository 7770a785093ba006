"""SIP edge vs Kamailio: loss and server CPU time per request at fixed rates, measured
with SIPp, side by side in the same run.

Both servers answer the same traffic from the same source table: sipmap's SIP edge
(`sipmap serve --sip-port`, the table provisioned through its store) and Kamailio
(the permissions module over an address file holding the same networks, one group per
SIP domain; `allow_source_address_group()` and stateless replies, bench/sip/kamailio.cfg).
SIPp sends OPTIONS (answered 200) or INVITE (answered 100 + 480, then ACKed) from a
mapped and allowed loopback address, without retransmissions: an unanswered request is
a lost call. Server CPU is utime + stime from /proc/<pid>/stat over the run (every
Kamailio process summed) divided by the calls answered.

Cases: `small` (a 100-entry table), `large` (100,000 entries), `writes` (the large
table while 1,000 changes to mappings are applied: API writes for sipmap, whole-table
reloads for Kamailio, see sip_writes.py), `hosts` (the small table, each call's
Request-URI naming the next of 10,000 hosts, so that sipmap's decision cache never
answers: its cost without the cache; not part of the default run). Each scenario runs once per server per
round, in alternating order; the ratio sipmap/Kamailio is taken per round and its
median and range printed. The machine is shared and SIPp runs on it too: read ratios.

    python bench/bench_sip.py [--rates 2000,4000,8000] [--cases small,large,writes,hosts]
        [--methods options,invite] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from sip_kamailio import Kamailio
from sip_load import (
    SCENARIOS,
    SippResult,
    cpu_seconds,
    probe,
    run_sipp,
    sipp_command,
    udp_drops,
    udp_receive_buffer,
)
from sip_table import ALLOWED_SOURCE, UNKNOWN_SOURCE, Table, build_sqlite, make_table
from sip_writes import KamailioWrites, SipmapWrites, WriteReport
from sipmap.testing import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    RunningServer,
    free_sip_port,
    start_server,
)

HOST = "127.0.0.1"
CASES = ("small", "large", "writes", "hosts")
# The hosts case: each call's Request-URI names another of this many hosts in turn, so
# that no two calls in a row share a decision (the fast path caches 1,024 of them).
URI_HOSTS = 10_000
REQUEST_URI_HOST = re.compile(
    r"^(\s*[A-Z]+ sip:(?:\w+@)?)\[remote_ip\]:\[remote_port\]( SIP/2\.0)$", re.M
)
METHODS = ("options", "invite")
SERVERS = ("sipmap", "kamailio")
# What each method is answered with, as the probe sees it.
EXPECTED = {"options": ["SIP/2.0 200 OK"], "invite": ["SIP/2.0 100 Trying", "SIP/2.0 480"]}
TARGET_RATE = 8000  # zero loss expected at this many OPTIONS per second


def csv_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas: {text}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers: {text}")
    return values


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def csv_choices(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [part.strip().lower() for part in text.split(",") if part.strip()]
        unknown = [v for v in values if v not in choices]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f"choose among {', '.join(choices)}: {text}")
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add = parser.add_argument
    add("--rates", type=csv_ints, default=[2000, 4000, 8000], help="calls per second")
    add("--methods", type=csv_choices(METHODS), default=list(METHODS))
    add("--cases", type=csv_choices(CASES), default=["small", "large", "writes"])
    add("--transport", choices=("udp", "tcp"), default="udp")
    add("--seconds", type=positive(float), default=5.0, help="length of one run at its rate")
    add("--rounds", type=positive(int), default=3)
    add("--small-size", type=positive(int), default=100, help="mappings in the small table")
    add("--large-size", type=positive(int), default=100_000, help="mappings in the large table")
    add("--writes", type=positive(int), default=1000, help="changes to mappings in the writes case")
    add(
        "--kamailio-children", type=positive(int), default=2, help="Kamailio's UDP worker processes"
    )
    # T1: a real UA would have retransmitted by then; SIPp here never does (-nr).
    add(
        "--recv-timeout-ms",
        type=positive(int),
        default=500,
        help="a response later than this is lost",
    )
    add("--serve-arg", action="append", default=[], help="extra `sipmap serve` argument")
    return parser


@dataclass
class Run:
    result: SippResult | None = None
    cpu: float = 0.0  # server CPU seconds over the run
    drops: int = 0  # datagrams the kernel dropped at the server's UDP socket (buffer full)
    writes: WriteReport | None = None
    error: str = ""

    @property
    def us_per_request(self) -> float | None:
        if self.result is None or self.result.answered == 0:
            return None
        return self.cpu / self.result.answered * 1e6


@dataclass
class Target:
    """One server under test, or why it could not be started."""

    name: str
    port: int
    pids: list[int]
    error: str = ""
    sipmap: RunningServer | None = None
    kamailio: Kamailio | None = None
    http: httpx.Client | None = None
    records: list[str] | None = None

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.sipmap is not None:
            self.sipmap.stop()
        if self.kamailio is not None:
            self.kamailio.stop()


def start_sipmap(table: Table, workdir: Path, args: argparse.Namespace, cases: list[str]) -> Target:
    port = free_sip_port(HOST)
    target = Target("sipmap", port, [])
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / "sipmap.db"
        build_sqlite(table, db, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
        extra = ["--sip-host", HOST, *args.serve_arg]
        target.sipmap = start_server(db, *extra, sip_port=port, ready_timeout=120)
        target.pids = [target.sipmap.process.pid]
        target.http = httpx.Client(
            base_url=target.sipmap.base_url, auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
        )
        if "writes" in cases:
            target.records = SipmapWrites.create_records(target.http, args.writes // 2)
    except Exception as error:  # reported in the table; the other server still runs
        target.error = f"sipmap did not start: {error}"
    return target


def start_kamailio(table: Table, workdir: Path, args: argparse.Namespace) -> Target:
    port = free_sip_port(HOST)
    target = Target("kamailio", port, [])
    try:
        target.kamailio = Kamailio.start(
            workdir, table.kamailio_entries(), host=HOST, port=port,
            children=args.kamailio_children,
        )  # fmt: skip
        target.pids = target.kamailio.pids
    except Exception as error:  # reported in the table; the other server still runs
        target.error = str(error)
    return target


def check(target: Target) -> str:
    """One request of each kind, by hand: what the server answers, and whether it is right."""
    if target.error:
        return f"{target.name}: {target.error}"
    seen = {
        "allowed OPTIONS": (probe((HOST, target.port), ALLOWED_SOURCE), EXPECTED["options"]),
        "allowed INVITE": (
            probe((HOST, target.port), ALLOWED_SOURCE, "INVITE"),
            EXPECTED["invite"],
        ),
        "unknown OPTIONS": (probe((HOST, target.port), UNKNOWN_SOURCE), ["SIP/2.0 403"]),
    }
    parts = []
    for what, (got, wanted) in seen.items():
        ok = len(got) == len(wanted) and all(
            g.startswith(w) for g, w in zip(got, wanted, strict=False)
        )
        parts.append(f"{what} -> {' / '.join(got) or 'nothing'}{'' if ok else ' (WRONG)'}")
    buffer = udp_receive_buffer(HOST, target.port)
    if buffer is not None:
        parts.append(f"UDP receive buffer {buffer // 1024} KiB")
    return f"{target.name}: " + "; ".join(parts)


def server_drops(target: Target, args: argparse.Namespace) -> int:
    if args.transport != "udp":
        return 0
    try:
        return udp_drops(HOST, target.port)
    except OSError:  # the server is gone; run_once reports that
        return 0


def write_hosts_scenarios(workdir: Path) -> None:
    """The hosts case's SIPp files: URI_HOSTS addresses (none of them the server's) in
    an injection file read in turn, and each scenario with its Request-URI host taken
    from it. The source is mapped, so both servers answer as in the small case."""
    lines = ["SEQUENTIAL"] + [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255};"
                              for n in range(1, URI_HOSTS + 1)]  # fmt: skip
    (workdir / "uri-hosts.csv").write_text("\n".join(lines) + "\n")
    for method in METHODS:
        text = (SCENARIOS / f"{method}.xml").read_text(encoding="iso-8859-1")
        # Request lines only (an ACK's Request-URI is its INVITE's); headers unchanged.
        text, found = REQUEST_URI_HOST.subn(r"\1[field0]\2", text)
        assert found, method
        (workdir / f"{method}-hosts.xml").write_text(text, encoding="iso-8859-1")


def run_once(
    target: Target, table: Table, case: str, method: str, rate: int,
    args: argparse.Namespace, workdir: Path,
) -> Run:  # fmt: skip
    if target.error:
        return Run(error=target.error)
    calls = max(1, round(rate * args.seconds))
    stats = workdir / f"{target.name}-{case}-{method}-{rate}-{time.monotonic_ns()}.csv"
    scenario, hosts = method, None
    if case == "hosts":
        scenario, hosts = str(workdir / f"{method}-hosts.xml"), workdir / "uri-hosts.csv"
        if not hosts.exists():
            write_hosts_scenarios(workdir)
    command = sipp_command(
        scenario=scenario, target=(HOST, target.port), source=ALLOWED_SOURCE,
        local_port=free_sip_port(ALLOWED_SOURCE), control_port=free_sip_port(ALLOWED_SOURCE),
        transport=args.transport, rate=rate, calls=calls, stats_file=stats,
        recv_timeout_ms=args.recv_timeout_ms, uri_hosts=hosts,
    )  # fmt: skip
    writer: SipmapWrites | KamailioWrites | None = None
    if case == "writes":
        # Spread over most of the run, so that every change lands while traffic flows.
        span = 0.8 * args.seconds
        if target.http is not None and target.records is not None:
            writer = SipmapWrites(target.http, target.records, span)
        elif target.kamailio is not None:
            writer = KamailioWrites(target.kamailio, table, args.writes // 2, span)
    drops, cpu = server_drops(target, args), cpu_seconds(target.pids)
    run = Run()
    try:
        if writer is not None:
            writer.start()
        run.result = run_sipp(command, stats, timeout=3 * args.seconds + 60)
    except (RuntimeError, OSError) as error:
        run.error = str(error)
    finally:
        if writer is not None:
            writer.join()
            run.writes = writer.report
    try:
        run.cpu = cpu_seconds(target.pids) - cpu
    except OSError:
        run.error = run.error or f"{target.name} exited during the run"
    run.drops = server_drops(target, args) - drops
    time.sleep(0.5)  # let the last answers and timeouts drain before the next run
    return run


def spread(values: Sequence[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


Key = tuple[str, str, int, str]  # case, method, rate, server


OVERLOAD = 0.01  # a run losing more than this share of its calls was overloaded


def overloaded(run: Run) -> bool:
    return run.result is None or run.result.lost > OVERLOAD * max(1, run.result.sent)


def report(runs: dict[Key, list[Run]], args: argparse.Namespace) -> bool:
    """Print the table (Markdown); True when every target was met."""
    calls = round(args.rates[0] * args.seconds)
    print(
        f"\nSIP edge vs Kamailio over {args.transport.upper()}: {args.rounds} rounds, "
        f"{args.seconds:g} s of calls per run (e.g. {calls} at {args.rates[0]}/s), SIPp on the "
        f"same shared {os.cpu_count()}-core machine. lost = unanswered or answered later than "
        f"{args.recv_timeout_ms} ms; drops = datagrams dropped at the server's full socket; "
        "CPU = server utime+stime per answered call, median [range]; ratio = sipmap/Kamailio "
        f"CPU per call, per round; * = a round where a server lost over {OVERLOAD:.0%} of its "
        "calls (overloaded: its CPU per answered call says little)\n"
    )
    print(
        "| case | method | rate/s | server | sent/s | lost per run | drops | CPU µs/call | ratio |"
    )
    print("|---|---|---:|---|---:|---|---:|---|---|")
    met = True
    for case, method, rate in dict.fromkeys(key[:3] for key in runs):
        per_server = {s: runs.get((case, method, rate, s), []) for s in SERVERS}
        pairs = list(zip(per_server["sipmap"], per_server["kamailio"], strict=False))
        ratios = [a.us_per_request / b.us_per_request for a, b in pairs
                  if a.us_per_request and b.us_per_request]  # fmt: skip
        busy = any(overloaded(a) or overloaded(b) for a, b in pairs)
        for server, server_runs in per_server.items():
            results = [r.result for r in server_runs if r.result is not None]
            rates = [r.rate for r in results]
            cpu = [r.us_per_request for r in server_runs if r.us_per_request is not None]
            cells = [
                case, method.upper(), str(rate), server,
                f"{statistics.median(rates):.0f}" if rates else "-",
                ", ".join(str(r.lost) for r in results) or "-",
                str(sum(r.drops for r in server_runs)) if args.transport == "udp" else "-",
                spread(cpu),
                (spread(ratios, 2) + (" *" if busy else "")) if server == "sipmap" else "",
            ]  # fmt: skip
            print("| " + " | ".join(cells) + " |")
            for error in sorted({r.error for r in server_runs if r.error}):
                print(f"|  |  |  | {server} | error: {error} |  |  |  |  |")
                met = False
            if server == "sipmap" and method == "options" and rate >= TARGET_RATE:
                met &= bool(results) and all(r.lost == 0 for r in results)
        if ratios and not busy:
            met &= statistics.median(ratios) <= 1.0
    print_writes(runs)
    return met


def print_writes(runs: dict[Key, list[Run]]) -> None:
    lines = []
    for (case, method, rate, server), server_runs in runs.items():
        reports = [r.writes for r in server_runs if r.writes is not None]
        if case != "writes" or not reports:
            continue
        done = ", ".join(f"{w.done}" for w in reports)
        line = f"writes {method.upper()} {rate}/s {server}: changes applied per run {done}"
        line += f", in {spread([w.seconds for w in reports])} s"
        if server == "kamailio":
            line += f", whole-table reloads per run {', '.join(str(w.reloads) for w in reports)}"
        errors = sum(w.errors for w in reports)
        if errors:
            line += f", {errors} errors (first: {next(w.first_error for w in reports if w.errors)})"
        lines.append("- " + line)
    if lines:
        print("\n" + "\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = [tool for tool in ("sipp", "kamailio", "kamcmd") if shutil.which(tool) is None]
    if missing:
        print(f"error: needs {', '.join(missing)}: apt-get install sip-tester kamailio",
              file=sys.stderr)  # fmt: skip
        return 2
    groups: dict[int, list[str]] = {}  # table size -> the cases answered from it
    for case in args.cases:
        size = args.small_size if case in ("small", "hosts") else args.large_size
        groups.setdefault(size, []).append(case)
    runs: dict[Key, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp:
        for size, cases in groups.items():
            print(f"table of {size} mappings for {', '.join(cases)}: building...", flush=True)
            table = make_table(size)
            workdir = Path(tmp) / str(size)
            targets = [
                start_sipmap(table, workdir / "sipmap", args, cases),
                start_kamailio(table, workdir / "kamailio", args),
            ]
            try:
                for target in targets:
                    print("  check " + check(target), flush=True)
                for round_ in range(args.rounds):
                    order = targets if round_ % 2 == 0 else targets[::-1]
                    for case in cases:
                        for method in args.methods:
                            for rate in args.rates:
                                for target in order:
                                    run = run_once(target, table, case, method, rate, args, workdir)
                                    key = (case, method, rate, target.name)
                                    runs.setdefault(key, []).append(run)
                    print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
            finally:
                for target in targets:
                    target.stop()
    return 0 if report(runs, args) else 1


if __name__ == "__main__":
    sys.exit(main())
