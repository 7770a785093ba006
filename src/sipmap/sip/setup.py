"""From `sipmap serve` options to a running edge: the upstream, the sockets, the config.

The sockets are bound first, before the server touches its store or prints any
credential, so a taken port is a one-line error naming the flag (`StartupError`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from ipaddress import ip_address

from ..recognize.recognizer import Recognizer
from .counters import SipCounters
from .message import split_host_port
from .responder import EdgeConfig, Responder, Target
from .serializer import REASONS
from .transport import Edge


class StartupError(ValueError):
    """An operator's mistake in the SIP options: one line, then exit 2."""


def parse_upstream(text: str) -> Target:
    """'HOST:PORT[;transport=tcp]' → Target; a host name is resolved once, now."""
    address, _, params = text.partition(";")
    host, port = split_host_port(address.strip())
    if not host or port is None:
        raise StartupError(f"--sip-upstream {text!r}: expected HOST:PORT[;transport=tcp]")
    transport = "udp"
    if params:
        name, _, value = params.partition("=")
        if name.strip().lower() != "transport" or value.strip().lower() not in ("udp", "tcp"):
            raise StartupError(f"--sip-upstream {text!r}: the only parameter is transport=udp|tcp")
        transport = value.strip().lower()
    try:
        ip_address(host)
    except ValueError:
        try:
            host = str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
        except OSError as error:
            raise StartupError(f"--sip-upstream {text!r}: cannot resolve {host}: {error}") from None
    return Target(host, port, transport)


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """UDP and TCP sockets on `port` at every address `host` resolves to."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM,
                                   flags=socket.AI_PASSIVE)  # fmt: skip
    except OSError as error:
        raise StartupError(f"--sip-host {host!r}: {error}") from None
    addresses = list(dict.fromkeys((info[0], info[4][:2]) for info in infos))
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                sock = socket.socket(family, kind)
                sockets.append(sock)
                if kind == socket.SOCK_STREAM:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and len(addresses) > 1:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                if kind == socket.SOCK_STREAM:
                    sock.listen(1024)
                if kind == socket.SOCK_DGRAM:
                    _grow_receive_buffer(sock)
                sock.setblocking(False)
    except OSError as error:
        for sock in sockets:
            sock.close()
        kind_name = "TCP" if kind == socket.SOCK_STREAM else "UDP"
        raise StartupError(
            f"--sip-port {port}: cannot listen on {kind_name} {address[0]}:{port} "
            f"({error.strerror or error}); choose another port, or --sip-port 0 to disable the SIP edge"
        ) from None
    return sockets


# Bursts of datagrams arrive faster than one event loop drains them; what the socket's
# receive buffer cannot hold the kernel drops (the SIP bench's losses were all such
# drops, at the system default of 208 KiB). The kernel caps the request at
# net.core.rmem_max.
UDP_RECEIVE_BUFFER = 4 << 20


def _grow_receive_buffer(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not permitted here: the default still works
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)


def edge_config(args: argparse.Namespace, sockets: list[socket.socket]) -> EdgeConfig:
    """The responder's configuration from the serve options (checked: StartupError)."""
    if args.sip_final_response not in REASONS or args.sip_final_response < 300:
        codes = ", ".join(str(c) for c in sorted(REASONS) if c >= 300)
        raise StartupError(f"--sip-final-response {args.sip_final_response}: one of {codes}")
    if not 512 <= args.sip_max_message <= 1 << 20:
        raise StartupError("--sip-max-message: between 512 and 1048576 bytes")
    if args.sip_unrecognized_answers < 0:
        raise StartupError("--sip-unrecognized-answers: a number of answers a second, 0 or more")
    upstream = parse_upstream(args.sip_upstream) if args.sip_upstream else None
    bound = [sock.getsockname()[0] for sock in sockets]
    host = bound[0] if bound else args.sip_host
    if host in ("0.0.0.0", "::"):
        # A wildcard is no address to put in a Via: the machine's name stands in.
        host = socket.gethostname()
    return EdgeConfig(
        host=host,
        port=args.sip_port,
        upstream=upstream,
        final_response=args.sip_final_response,
        drop_unrecognized=args.sip_drop_unrecognized,
        own_hosts=frozenset({args.sip_host, *bound, socket.gethostname()}),
        secret=os.urandom(16),
    )


def build_edge(
    args: argparse.Namespace, config: EdgeConfig, recognizer: Recognizer, counters: SipCounters
) -> Edge:
    return Edge(
        Responder(config, counters.timed(recognizer.recognize)),
        counters,
        recognizer=recognizer,
        max_message=args.sip_max_message,
        idle_timeout=args.sip_tcp_idle_timeout,
        max_connections=args.sip_tcp_max_connections,
        unrecognized_answers=args.sip_unrecognized_answers,
    )
