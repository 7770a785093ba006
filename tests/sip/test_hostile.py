"""Hostile input against a real edge over real sockets: it is answered or dropped as the
rules say, connections that misbehave are closed, and the edge keeps serving others."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipmap.sip.message import Response
from sipmap.sip.parser import parse_datagram
from sipmap.sip.responder import NOT_IN_ACL_ERROR
from sipmap.testing import RunningServer, free_sip_port, sipmap_server

from .samples import invite
from .test_sipp import ALLOWED, provision, scrape

MAX_MESSAGE = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    db = tmp_path_factory.mktemp("hostile") / "db.sqlite"
    options = ("--sip-max-message", str(MAX_MESSAGE), "--sip-tcp-idle-timeout", "2",
               "--sip-tcp-max-connections", "300")  # fmt: skip
    with sipmap_server(db, *options) as running:
        provision(running)
        yield running


def options(port: int, transport: str = "UDP", branch: str = "ok") -> bytes:
    via = f"SIP/2.0/{transport} {ALLOWED}:{port};branch=z9hG4bK-{branch};rport"
    return invite(method="OPTIONS", body=b"", via=via, uri="sip:127.0.0.1")


def udp_client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ALLOWED, 0))
    sock.settimeout(10)
    return sock


def tcp_client(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.sip_port), 10, (ALLOWED, 0))
    sock.settimeout(10)
    return sock


def status_of(data: bytes) -> int:
    assert data.startswith(b"SIP/2.0 "), data[:80]
    return int(data[8:11])


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_udp_garbage_is_dropped_and_the_next_request_answered(server: RunningServer) -> None:
    with udp_client() as sock:
        port = sock.getsockname()[1]
        target = ("127.0.0.1", server.sip_port)
        for garbage in (b"\x00\xff" * 100, b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
                        b"\r\n\r\n", options(port).replace(b"Via:", b"Vxa:")):  # fmt: skip
            sock.sendto(garbage, target)
        sock.sendto(options(port), target)
        # Datagrams over loopback keep their order: had the garbage been answered,
        # that answer would come first.
        assert status_of(sock.recv(65536)) == 200


def test_udp_malformed_with_via_is_400(server: RunningServer) -> None:
    with udp_client() as sock:
        port = sock.getsockname()[1]
        bad = options(port).replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
        sock.sendto(bad, ("127.0.0.1", server.sip_port))
        assert status_of(sock.recv(65536)) == 400
        lying = options(port).replace(b"Content-Length: 0", b"Content-Length: 500")
        sock.sendto(lying, ("127.0.0.1", server.sip_port))
        assert status_of(sock.recv(65536)) == 400


def test_udp_oversized_is_513(server: RunningServer) -> None:
    with udp_client() as sock:
        port = sock.getsockname()[1]
        big = options(port).replace(
            b"Max-Forwards", b"X-Pad: " + b"a" * MAX_MESSAGE + b"\r\nMax-Forwards"
        )
        sock.sendto(big, ("127.0.0.1", server.sip_port))
        assert status_of(sock.recv(65536)) == 513


def test_tcp_oversized_is_513_then_closed(server: RunningServer) -> None:
    with tcp_client(server) as sock:
        port = sock.getsockname()[1]
        head = options(port, "TCP").split(b"\r\n\r\n")[0]
        sock.sendall(head + b"\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n" * 0)
        sock.sendall(b"\r\nX-More: " + b"b" * (2 * MAX_MESSAGE))
        answer = read_until_closed(sock)
        assert status_of(answer) == 513


def test_tcp_malformed_is_400_then_closed(server: RunningServer) -> None:
    with tcp_client(server) as sock:
        port = sock.getsockname()[1]
        sock.sendall(options(port, "TCP").replace(b"Max-Forwards: 70", b"NoColonHere"))
        assert status_of(read_until_closed(sock)) == 400


def test_tcp_binary_garbage_is_closed_without_answer(server: RunningServer) -> None:
    with tcp_client(server) as sock:
        sock.sendall(bytes(range(256)) * 40)
        assert read_until_closed(sock) == b""


def test_tcp_pipelined_and_keepalives(server: RunningServer) -> None:
    with tcp_client(server) as sock:
        port = sock.getsockname()[1]
        one, two = options(port, "TCP", "a"), options(port, "TCP", "b")
        sock.sendall(b"\r\n\r\n" + one + b"\r\n\r\n" + two)
        received = b""
        while received.count(b"SIP/2.0 200 OK") < 2:
            received += sock.recv(65536)
        assert b"z9hG4bK-a" in received and b"z9hG4bK-b" in received


def test_slowloris_is_cut_off_while_others_are_served(server: RunningServer) -> None:
    with tcp_client(server) as slow:
        head = options(slow.getsockname()[1], "TCP")
        closed = False
        for byte in head[:-4]:  # never completes the message
            try:
                slow.sendall(bytes([byte]))
                if slow.recv(1, socket.MSG_DONTWAIT) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            # the edge answers others meanwhile
            with udp_client() as sock:
                sock.sendto(options(sock.getsockname()[1]), ("127.0.0.1", server.sip_port))
                assert status_of(sock.recv(65536)) == 200
            time.sleep(0.1)
        assert closed, "a message trickling in forever was never cut off"


def open_idle(server: RunningServer, sources: list[str], each: int) -> list[socket.socket]:
    idle = []
    for source in sources:
        for _ in range(each):
            sock = socket.create_connection(("127.0.0.1", server.sip_port), 10, (source, 0))
            sock.settimeout(10)
            idle.append(sock)
    return idle


def dropped(before: dict[Any, float], after: dict[Any, float], reason: str) -> float:
    key = ("sipmap_sip_dropped_total", (("reason", reason),))
    return after.get(key, 0) - before.get(key, 0)


def test_thousands_of_idle_connections(server: RunningServer) -> None:
    before = scrape(server)
    # 1,000 connections from 50 sources, 20 each: under the share one source may hold
    # (30, a tenth of the cap of 300), over the cap in all.
    idle = open_idle(server, [f"127.0.1.{n}" for n in range(1, 51)], 20)
    try:
        # Meanwhile a UDP request, and the HTTP API, are answered.
        with udp_client() as sock:
            sock.sendto(options(sock.getsockname()[1]), ("127.0.0.1", server.sip_port))
            assert status_of(sock.recv(65536)) == 200
        with urllib.request.urlopen(f"{server.base_url}/health", timeout=10) as answer:
            assert answer.status == 200
        closed = sum(1 for sock in idle if sock.recv(1) == b"")  # all close: cap or idle
        assert closed == len(idle)
    finally:
        for sock in idle:
            sock.close()
    after = scrape(server)
    # Each was closed either at once (over the cap) or after the idle timeout.
    assert dropped(before, after, "connection_limit") > 0
    closed_by_edge = dropped(before, after, "connection_limit") + dropped(
        before, after, "tcp_idle_timeout"
    )
    assert closed_by_edge >= len(idle)


def test_one_source_gets_a_share_of_the_connections(server: RunningServer) -> None:
    before = scrape(server)
    idle = open_idle(server, ["127.0.2.1"], 100)
    try:
        assert sum(1 for sock in idle if sock.recv(1) == b"") == len(idle)
    finally:
        for sock in idle:
            sock.close()
    after = scrape(server)
    assert dropped(before, after, "connection_limit_per_source") > 0
    assert dropped(before, after, "connection_limit") == 0


def test_free_sip_port_is_free_on_both() -> None:
    port = free_sip_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", port))
        tcp.bind(("127.0.0.1", port))


def free_v6_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.bind(("::1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET6) as tcp:
                try:
                    tcp.bind(("::1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free IPv6 port")


def test_ipv6_udp_and_tcp(tmp_path: Path) -> None:
    port = free_v6_port()
    with sipmap_server(tmp_path / "db.sqlite", "--sip-host", "::1", "--sip-port", str(port)) as v6:
        setup = provision(v6)
        by_name = f"sip:bob@{setup.domain.domain_name}"
        for uri, expected in (("sip:bob@[::1]", None), (by_name, NOT_IN_ACL_ERROR)):
            data = invite(method="OPTIONS", body=b"", uri=uri,
                          via="SIP/2.0/UDP [::1]:5999;branch=z9hG4bK-v6;rport")  # fmt: skip
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                sock.settimeout(10)
                sock.sendto(data, ("::1", port))
                answer = parse_datagram(sock.recv(65536))
                stamped = f";rport={sock.getsockname()[1]};received=::1"
            assert isinstance(answer, Response) and answer.status == 403
            assert answer.get("X-Twilio-Error") == expected
            assert (answer.get("Via") or "").endswith(stamped)
            with socket.create_connection(("::1", port), 10) as sock:
                sock.sendall(data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
                answer = parse_datagram(sock.recv(65536))
            assert isinstance(answer, Response) and answer.status == 403
            assert answer.get("X-Twilio-Error") == expected


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ("--sip-drop-unrecognized", "unrecognized"),
        ("--sip-unrecognized-answers=0", "shed_unrecognized"),
    ],
)
def test_unrecognised_udp_dropped_unanswered(tmp_path: Path, option: str, reason: str) -> None:
    with sipmap_server(tmp_path / "db.sqlite", option) as quiet:
        domain = provision(quiet).domain.domain_name
        before = scrape(quiet)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.3", 0))
            sock.settimeout(10)
            port = sock.getsockname()[1]
            unrecognised = options(port).replace(ALLOWED.encode(), b"127.0.0.3")
            for _ in range(5):
                sock.sendto(unrecognised, ("127.0.0.1", quiet.sip_port))
            # Then a request naming the domain: recognised (outside its ACL, so 403 with
            # 32201), and the first thing this socket gets back.
            by_name = unrecognised.replace(b"sip:127.0.0.1", f"sip:bob@{domain}".encode())
            sock.sendto(by_name, ("127.0.0.1", quiet.sip_port))
            answer = parse_datagram(sock.recv(65536))
        assert isinstance(answer, Response) and answer.status == 403
        assert answer.get("X-Twilio-Error") == NOT_IN_ACL_ERROR
        after = scrape(quiet)
        assert dropped(before, after, reason) == 5
