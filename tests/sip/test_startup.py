"""`sipmap serve` start-up with the SIP edge: a taken port or a bad option is one line
on stderr naming the flag, a non-zero exit, and no credentials printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sipmap.exits import Exit
from sipmap.sip.setup import UDP_RECEIVE_BUFFER, bind_sockets
from sipmap.testing import free_port, free_sip_port


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPMAP_")}
    command = [sys.executable, "-m", "sipmap.cli", "serve", "--port", str(free_port()),
               "--db", str(tmp_path / "db.sqlite"), *args]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_taken_sip_port_is_one_line_and_no_credentials(tmp_path: Path, kind: int) -> None:
    port = free_sip_port()
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        result = serve(tmp_path, "--sip-port", str(port))
    assert result.returncode == Exit.LISTEN
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: --sip-port {port}: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no account, no token
    assert not (tmp_path / "db.sqlite").exists()  # nothing was even created


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--sip-upstream", "127.0.0.1"], "--sip-upstream"),
        (["--sip-upstream", "127.0.0.1:5080;transport=sctp"], "--sip-upstream"),
        (["--sip-final-response", "200"], "--sip-final-response"),
        (["--sip-max-message", "10"], "--sip-max-message"),
    ],
)
def test_bad_sip_option_is_one_line(tmp_path: Path, args: list[str], flag: str) -> None:
    result = serve(tmp_path, "--sip-port", str(free_sip_port()), *args)
    assert result.returncode == Exit.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), result.stderr
    assert result.stdout == ""


def test_the_udp_socket_asks_for_a_large_receive_buffer() -> None:
    """Linux grants twice what is asked, capped by net.core.rmem_max."""
    sockets = bind_sockets("127.0.0.1", free_sip_port())
    try:
        udp = next(s for s in sockets if s.type == socket.SOCK_DGRAM)
        cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
        granted = udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert granted == 2 * min(UDP_RECEIVE_BUFFER, cap)
    finally:
        for sock in sockets:
            sock.close()
