"""The SIP edge under load: uvloop against asyncio, and recognised traffic under a flood.

1. Loops: `sipmap serve` once with uvloop (the default) and once with plain asyncio
   (uvloop hidden from the process), each answering the same OPTIONS from a mapped and
   allowed source, a window of requests in flight; server CPU time per answered request
   from /proc/<pid>/stat. Ratio asyncio/uvloop per round.
2. Flood: a second process sends unrecognised OPTIONS from another source at a fixed rate while recognised OPTIONS are measured as in 1, and an HTTP client times `GET
   /health` one after another. Against a baseline without the flood, in the same run:
   the share of recognised requests answered, their throughput, and /health latency.
   Run with the default (a 403 per flood request) and with --sip-drop-unrecognized.

Rounds alternate the order of the variants. The machine is shared: read the ratios.

    python bench/bench_sip_edge.py [--rounds 3] [--requests 5000] [--window 32]
        [--flood-rate 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from sipmap.testing import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    free_port,
    free_sip_port,
)
from synthetic import cpu_seconds

ALLOWED, FLOODER = "127.0.0.2", "127.0.0.3"
AUTH = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)


class Server:
    def __init__(self, db: Path, loop: str, *extra: str) -> None:
        self.port, self.sip_port = free_port(), free_sip_port()
        env = {**os.environ, "SIPMAP_ACCOUNT_SID": AUTH[0], "SIPMAP_AUTH_TOKEN": AUTH[1]}
        hide = "import sys; sys.modules['uvloop'] = None; " if loop == "asyncio" else ""
        code = f"{hide}from sipmap.cli import main; raise SystemExit(main())"
        args = ["serve", "--port", str(self.port), "--sip-port", str(self.sip_port),
                "--db", str(db), "--log-level", "warning", *extra]  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(400):
            try:
                if httpx.get(f"{self.base}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def provision(base: str) -> None:
    with httpx.Client(base_url=f"{base}/2010-04-01/Accounts/{AUTH[0]}", auth=AUTH) as api:
        domain = api.post("/SIP/Domains.json", data={"DomainName": "bench.sip.twilio.com"})
        acl = api.post("/SIP/IpAccessControlLists.json", data={"FriendlyName": "pbx"})
        acl_sid, domain_sid = acl.json()["sid"], domain.json()["sid"]
        api.post(f"/SIP/IpAccessControlLists/{acl_sid}/IpAddresses.json",
                 data={"FriendlyName": "pbx", "IpAddress": ALLOWED})  # fmt: skip
        api.post(f"/SIP/Domains/{domain_sid}/Auth/Calls/IpAccessControlListMappings.json",
                 data={"IpAccessControlListSid": acl_sid})  # fmt: skip
    with httpx.Client(base_url=f"{base}/v1", auth=AUTH) as voice:
        record = voice.post("/IpRecords", data={"IpAddress": ALLOWED}).json()["sid"]
        voice.post("/SourceIpMappings", data={"IpRecordSid": record, "SipDomainSid": domain_sid})


def options(source: str, port: int, n: int) -> bytes:
    return (
        f"OPTIONS sip:bench@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK-{n};rport\r\n"
        f"From: <sip:bench@{source}>;tag={n}\r\nTo: <sip:bench@127.0.0.1>\r\n"
        f"Call-ID: {n}@{source}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def blast(sip_port: int, count: int, window: int) -> tuple[int, float]:
    """`count` recognised OPTIONS, at most `window` unanswered at a time: (answered, seconds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ALLOWED, 0))
        sock.settimeout(0.2)
        port = sock.getsockname()[1]
        sent = answered = outstanding = 0
        started = time.perf_counter()
        while sent < count or outstanding:
            while outstanding < window and sent < count:
                sock.sendto(options(ALLOWED, port, sent), ("127.0.0.1", sip_port))
                sent += 1
                outstanding += 1
            try:
                sock.recv(4096)
                answered += 1
                outstanding -= 1
            except TimeoutError:
                outstanding = 0  # lost; the next window goes out
        return answered, time.perf_counter() - started


def flood(sip_port: int, stop_at: float, rate: int) -> None:
    """Unrecognised OPTIONS at `rate` a second (in bursts of 64), answers discarded."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((FLOODER, 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        datagrams = [options(FLOODER, port, n) for n in range(64)]
        n = 0
        started = time.monotonic()
        while (now := time.monotonic()) < stop_at:
            if n > (now - started) * rate:
                time.sleep(64 / rate)
                continue
            for data in datagrams:
                with contextlib.suppress(BlockingIOError):
                    sock.sendto(data, ("127.0.0.1", sip_port))
                n += 1
            with contextlib.suppress(BlockingIOError):
                while sock.recv(4096):  # the 403s, so our buffer never fills
                    pass


def health_latencies(base: str, stop: Any, out: Any) -> None:
    """In its own process, so that it does not take the load generator's GIL."""
    latencies = []
    with httpx.Client() as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(f"{base}/health")
            latencies.append(time.perf_counter() - started)
    out.send(latencies)


def measure(server: Server, requests: int, window: int, flood_rate: int = 0) -> dict[str, float]:
    stop = multiprocessing.Event()
    receive, send = multiprocessing.Pipe(duplex=False)
    checker = multiprocessing.Process(target=health_latencies, args=(server.base, stop, send))
    flooder = None
    if flood_rate:
        flooder = multiprocessing.Process(
            target=flood, args=(server.sip_port, time.monotonic() + 600, flood_rate)
        )
        flooder.start()
        time.sleep(0.5)
    checker.start()
    cpu = server.cpu()
    answered, seconds = blast(server.sip_port, requests, window)
    cpu = server.cpu() - cpu
    stop.set()
    latencies: list[float] = receive.recv()
    checker.join()
    if flooder is not None:
        flooder.terminate()
        flooder.join()
    latencies.sort()
    return {
        "answered": answered / requests,
        "per_second": answered / seconds,
        "cpu_us": cpu / max(answered, 1) * 1e6,
        "health_p50_ms": latencies[len(latencies) // 2] * 1e3 if latencies else float("nan"),
        "health_p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3 if latencies else float("nan"),
    }


def summary(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--flood-rate", type=int, default=20000, help="datagrams a second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        for name, loop, extra in (("uvloop", "uvloop", ()), ("asyncio", "asyncio", ()),
                                  ("drop", "uvloop", ("--sip-drop-unrecognized",))):  # fmt: skip
            servers[name] = Server(Path(tmp) / f"{name}.db", loop, *extra)
            provision(servers[name].base)
        try:
            print(
                f"{args.requests} recognised OPTIONS per run, window {args.window}, shared machine"
            )
            loops: dict[str, list[float]] = {"uvloop": [], "asyncio": []}
            for r in range(args.rounds):
                for name in ("uvloop", "asyncio") if r % 2 == 0 else ("asyncio", "uvloop"):
                    result = measure(servers[name], args.requests, args.window)
                    loops[name].append(result["cpu_us"])
                    print(f"  round {r} {name}: {result}")
            ratios = [a / u for a, u in zip(loops["asyncio"], loops["uvloop"], strict=True)]
            print(f"server CPU per request, asyncio/uvloop: {summary(ratios)}; "
                  f"uvloop {summary(loops['uvloop'])} us")  # fmt: skip
            for name in ("uvloop", "drop"):
                rows: dict[str, list[dict[str, float]]] = {"base": [], "flood": []}
                for r in range(args.rounds):
                    for kind in ("base", "flood") if r % 2 == 0 else ("flood", "base"):
                        rate = args.flood_rate if kind == "flood" else 0
                        result = measure(servers[name], args.requests, args.window, rate)
                        rows[kind].append(result)
                        print(f"  round {r} {name} {kind}: {result}")
                label = "403 to the flood" if name == "uvloop" else "--sip-drop-unrecognized"
                for key in ("answered", "per_second", "health_p50_ms", "health_p99_ms"):
                    ratio = [
                        f[key] / b[key] for f, b in zip(rows["flood"], rows["base"], strict=True)
                    ]
                    print(f"{label}: {key} flood/baseline {summary(ratio)}")
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
