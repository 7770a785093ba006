"""sipmap as a stand-in in your own tests: start a real server, point the Twilio SDK at it.

    from sipmap.testing import sipmap_server, twilio_client

    with sipmap_server(tmp_path / "sipmap.db") as server:
        client = twilio_client(server)
        client.voice.v1.ip_records.create(ip_address="10.0.0.1")

The server is a real `sipmap serve` process on a free loopback port (and its SIP
edge on another, `server.sip_port`), with fixed bootstrap credentials; the SDK is the official `twilio` package, unmodified, given
an HTTP client that sends `*.twilio.com` requests to the server instead.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import keyfile
from .exits import Exit

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "sipmap-test-token-0123456789abcdef"
# For servers on a PostgreSQL URL when SIPMAP_CREDENTIAL_KEY is not set: tests only.
TEST_CREDENTIAL_KEY = "5e" * 32


def _ephemeral_floor() -> int:
    """Where the kernel's ephemeral ports (its choices for bind(0) and connect()) begin."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _candidates(host: str) -> Iterator[int]:
    """Ports to try: random ones below the ephemeral range, where no client connection
    (of this suite or of one running beside it) takes a port between our check and the
    server's bind; else, where there is no such room, the kernel's choice."""
    floor = _ephemeral_floor()
    if floor > 20_000:
        chooser = random.SystemRandom()
        for _ in range(200):
            yield chooser.randrange(10_000, floor)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            yield int(udp.getsockname()[1])


def _free(host: str, port: int, kinds: Sequence[socket.SocketKind]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 (to be bound at once: another process may take it)."""
    for port in _candidates("127.0.0.1"):
        if _free("127.0.0.1", port, (socket.SOCK_STREAM,)):
            return port
    raise RuntimeError("no free TCP port")


def free_sip_port(host: str = "127.0.0.1") -> int:
    """A port free on both UDP and TCP at `host` (the SIP edge takes both)."""
    for port in _candidates(host):
        if _free(host, port, (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
            return port
    raise RuntimeError("no port free on both UDP and TCP")


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds; reaped."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class RunningServer:
    """A `sipmap serve` process and how to reach it."""

    base_url: str
    port: int
    db: Path
    account_sid: str
    auth_token: str
    process: subprocess.Popen[bytes]
    sip_port: int = 0  # UDP and TCP on 127.0.0.1; 0 when the SIP edge is off

    def stop(self) -> None:
        stop_process(self.process)


PORT_ATTEMPTS = 3


def _given_sip_port(args: Sequence[str]) -> int | None:
    """The SIP port `--sip-port N` or `--sip-port=N` in serve arguments, if any."""
    port = None
    for i, arg in enumerate(args):
        if arg == "--sip-port" and i + 1 < len(args):
            port = int(args[i + 1])
        elif arg.startswith("--sip-port="):
            port = int(arg.split("=", 1)[1])
    return port


def start_server(
    db: str | Path,
    *extra_args: str,
    port: int | None = None,
    sip_port: int | None = None,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    ready_timeout: float = 20.0,
    command_prefix: Sequence[str] = (),
) -> RunningServer:
    """Start `sipmap serve` on `db` and wait until it answers; stop it with `.stop()`.

    The SIP edge gets a free port (never 5060, so suites don't collide) unless
    `sip_port` says which; `sip_port=0` turns it off. `command_prefix` runs it under
    another command (say, `prlimit --nofile=1024 --`)."""
    # A port found free can be taken by another process before the server binds it;
    # then (exit status 5) try again with new ones, if every port it listens on was
    # chosen here (a SIP port of 0 listens on none).
    given = _given_sip_port(extra_args)
    fixed_sip = given if sip_port is None else sip_port  # None: chosen here; 0: no edge
    chosen = port is None and not fixed_sip
    attempts = PORT_ATTEMPTS if chosen else 1
    for attempt in range(attempts):
        listen_port = port or free_port()
        if given is not None:
            edge_port, args = given, extra_args
        else:
            edge_port = free_sip_port() if sip_port is None else sip_port
            args = (*extra_args, "--sip-port", str(edge_port))
        env = {**os.environ, "SIPMAP_ACCOUNT_SID": account_sid, "SIPMAP_AUTH_TOKEN": auth_token}
        if keyfile.is_postgres(str(db)):
            # A PostgreSQL database has no file to keep a key beside: a throwaway one.
            env.setdefault(keyfile.ENV_VAR, TEST_CREDENTIAL_KEY)
        command: Sequence[str] = (
            *command_prefix,
            sys.executable, "-m", "sipmap.cli", "serve", "--port", str(listen_port),
            "--db", str(db), "--log-level", "warning", *args,
        )  # fmt: skip
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        base_url = f"http://127.0.0.1:{listen_port}"
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{base_url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return RunningServer(
                            base_url, listen_port, Path(db), account_sid, auth_token, process,
                            edge_port,
                        )  # fmt: skip
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        else:
            process.kill()
            process.wait()
            raise RuntimeError("sipmap serve did not start")
        if process.returncode != Exit.LISTEN or attempt == attempts - 1:
            raise RuntimeError(f"sipmap serve exited with {process.returncode}")
    raise AssertionError("unreachable")


@contextmanager
def sipmap_server(db: str | Path, *extra_args: str, **options: Any) -> Iterator[RunningServer]:
    """`start_server` as a context manager."""
    server = start_server(db, *extra_args, **options)
    try:
        yield server
    finally:
        server.stop()


def redirect(url: str, base_url: str) -> str:
    """A `https://*.twilio.com` URL (any product, region or edge the SDK chose) as the
    same path on `base_url`; any other URL unchanged."""
    parts = urlsplit(url)
    if parts.scheme == "https" and (parts.hostname or "").endswith(".twilio.com"):
        return base_url + url[len(f"{parts.scheme}://{parts.netloc}") :]
    return url


def twilio_http_client(
    base_url: str, on_response: Callable[[str, str, Any], None] | None = None
) -> Any:
    """An HTTP client for the official SDK (`Client(..., http_client=...)`) that sends
    its requests to `base_url` — the pattern of Twilio's custom HTTP client example.
    `on_response(method, url, response)`, if given, sees every response first (to log
    or check it). Needs the `twilio` package."""
    from twilio.http.http_client import TwilioHttpClient

    class SipmapHttpClient(TwilioHttpClient):  # type: ignore[misc]
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            url = redirect(url, base_url)
            response = super().request(method, url, *args, **kwargs)
            if on_response is not None:
                on_response(method, url, response)
            return response

    return SipmapHttpClient()


def twilio_client(server: RunningServer, username: str | None = None,
                  password: str | None = None, *,
                  on_response: Callable[[str, str, Any], None] | None = None,
                  **options: Any) -> Any:  # fmt: skip
    """The official `twilio.rest.Client`, talking to `server` (its bootstrap account
    unless other credentials are given); `options` go to the Client."""
    from twilio.rest import Client

    return Client(
        username or server.account_sid,
        password or server.auth_token,
        http_client=twilio_http_client(server.base_url, on_response),
        **options,
    )
