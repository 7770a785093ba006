"""What the HTTP limits cost per request: uvicorn's stock httptools protocol against
sipmap's LimitedProtocol (api/connection.py), in one process, without sockets.

Each round feeds the same keep-alive requests to a connection of each protocol (in
alternating order) and measures the CPU time per request (time.process_time, so
other processes on a shared machine count less); the ratio quoted is the median over
rounds of limited / stock. Also measured: the application-side additions per request
(the per-account accounting, and the body deadline around a body read).

    python bench/bench_http_limits.py [--requests 20000] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from sipmap.api.connection import Limits, protocol_class
from sipmap.api.limits import TenantLimits

# What the official SDK sends (requests' headers), with a small form body for POST.
GET = (
    b"GET /v1/IpRecords/IL0123456789abcdef0123456789abcdef HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8080\r\nUser-Agent: twilio-python/9.0.0 (Linux x86_64) Python/3.11\r\n"
    b"Accept-Encoding: gzip, deflate\r\nAccept: application/json\r\nConnection: keep-alive\r\n"
    b"Accept-Charset: utf-8\r\nAuthorization: Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDE6"
    b"c2lwbWFwLXRlc3QtdG9rZW4tMDEyMzQ1Njc4OWFiY2RlZg==\r\n\r\n"
)
BODY = b"IpAddress=10.1.2.3&CidrPrefixLength=32&FriendlyName=bench"
POST = GET.replace(b"GET /v1/IpRecords/IL0123456789abcdef0123456789abcdef", b"POST /v1/IpRecords")
POST = POST[:-2] + (
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    + BODY
)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def write(self, data: Any) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["method"] == "POST":
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request(http: Any, request: bytes, count: int) -> float:
    """CPU microseconds per request on one keep-alive connection."""
    config = Config(app, http=http, ws="none", lifespan="off", access_log=False)
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}
    )
    transport = Transport()
    protocol.connection_made(transport)
    started = time.process_time()
    for _ in range(count):
        protocol.data_received(request)
        while not protocol.cycle.response_complete:  # the application task responds
            await asyncio.sleep(0)
    spent = time.process_time() - started
    assert not transport.closed
    protocol.connection_lost(None)
    return spent / count * 1e6


async def app_additions(count: int) -> tuple[float, float]:
    """CPU µs per request of the per-account accounting, and of the body deadline."""
    tenants = TenantLimits(100, 1 << 20)
    started = time.process_time()
    for _ in range(count):
        tenants.enter("AC1")
        tenants.reserve("AC1", 60)
        tenants.leave("AC1", 60)
    accounting = (time.process_time() - started) / count * 1e6
    started = time.process_time()
    for _ in range(count):
        async with asyncio.timeout(10):
            pass
    deadline = (time.process_time() - started) / count * 1e6
    return accounting, deadline


async def run(args: argparse.Namespace) -> None:
    limited = protocol_class(Limits())
    results: dict[str, dict[str, list[float]]] = {
        name: {"stock": [], "limited": []} for name in ("GET", "POST")
    }
    for round_ in range(args.rounds):
        for name, request in (("GET", GET), ("POST", POST)):
            order = [("stock", HttpToolsProtocol), ("limited", limited)]
            if round_ % 2:
                order.reverse()
            for label, http in order:
                results[name][label].append(await per_request(http, request, args.requests))
    accounting, deadline = await app_additions(args.requests * 5)
    print(
        f"HTTP limits, CPU per request without sockets: {args.rounds} rounds x "
        f"{args.requests} keep-alive requests per protocol, interleaved; "
        "ratio = median over rounds of limited / stock"
    )
    print(f"{'request':<8}{'stock µs':>10}{'limited µs':>12}{'ratio':>8}{'range':>12}")
    for name, by in results.items():
        ratios = [a / b for a, b in zip(by["limited"], by["stock"], strict=True)]
        print(
            f"{name:<8}{statistics.median(by['stock']):>10.1f}"
            f"{statistics.median(by['limited']):>12.1f}{statistics.median(ratios):>8.2f}"
            f"{min(ratios):>6.2f}-{max(ratios):.2f}"
        )
    print(
        f"application: per-account accounting {accounting:.2f} µs, body deadline {deadline:.2f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
