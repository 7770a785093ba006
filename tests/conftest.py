"""Shared fixtures: a real `sipmap serve` process on a real socket, and the official SDK."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from . import oai

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "e2e-bootstrap-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `sipmap serve` process."""

    base_url: str
    db: Path
    port: int
    process: subprocess.Popen[bytes]
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN

    def http(self, sid: str | None = None, token: str | None = None) -> httpx.Client:
        auth = (sid or self.account_sid, token or self.auth_token)
        return httpx.Client(base_url=self.base_url, auth=auth, timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(db: Path, *extra: str, port: int | None = None) -> Server:
    port = port or free_port()
    env = {**os.environ, "SIPMAP_ACCOUNT_SID": ACCOUNT_SID, "SIPMAP_AUTH_TOKEN": AUTH_TOKEN}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sipmap.cli",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            "--log-level",
            "warning",
            *extra,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sipmap serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return Server(base_url, db, port, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("sipmap serve did not start")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("e2e") / "sipmap.db")
    yield srv
    srv.stop()


class LocalHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to sipmap instead of *.twilio.com — the pattern of Twilio's
    advanced-examples/custom-http-client.md; the SDK itself is unmodified."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.last_response: Response | None = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        for host in ("https://api.twilio.com", "https://voice.twilio.com"):
            if url.startswith(host):
                url = self.base_url + url[len(host) :]
        response = super().request(method, url, *args, **kwargs)
        self.last_response = response
        # Every response the SDK sees is checked against Twilio's specs.
        body = json.loads(response.text) if response.text else None
        if response.status_code < 400:
            oai.validate(method.upper(), urlsplit(url).path, response.status_code, body)
        else:
            oai.validate_error(response.status_code, body)
        return response


def sdk_client(
    server: Server, sid: str | None = None, token: str | None = None, account_sid: str | None = None
) -> Client:
    return Client(
        sid or server.account_sid,
        token or server.auth_token,
        account_sid=account_sid,
        http_client=LocalHttpClient(server.base_url),
    )


@pytest.fixture
def client(server: Server) -> Client:
    return sdk_client(server)


@pytest.fixture
def subaccount(client: Client, server: Server) -> tuple[str, str]:
    """A fresh subaccount (sid, token), so tests don't see each other's resources."""
    account = client.api.v2010.accounts.create(friendly_name="test")
    assert account.auth_token
    return account.sid, account.auth_token


@pytest.fixture
def sub_client(server: Server, subaccount: tuple[str, str]) -> Client:
    return sdk_client(server, *subaccount)
