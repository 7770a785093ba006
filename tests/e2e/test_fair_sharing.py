"""One account's slow clients cannot lock the others out (issue 10, item 2): requests
and body bytes in flight are limited per account family, under the global limit."""

from __future__ import annotations

import base64
import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import oai
from ..conftest import Server, start_server

WAIT = 30.0  # bounds a failure only


def create_account(db: Path) -> tuple[str, str]:
    """A second top-level account, made with the CLI before the server starts."""
    out = subprocess.run(
        [sys.executable, "-m", "sipmap.cli", "accounts", "create", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    made = json.loads(out)
    return made["sid"], made["auth_token"]


def slow_post(server: Server, sid: str, token: str, length: int = 100) -> socket.socket:
    """A POST whose body starts but never finishes."""
    auth = base64.b64encode(f"{sid}:{token}".encode())
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    conn.sendall(
        b"POST /v1/IpRecords HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\nIpAddress=10." % length
    )
    return conn


def answered(conns: list[socket.socket], expected: int) -> list[bytes]:
    """The responses that arrive on `conns`, waiting until `expected` have come."""
    responses: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + WAIT
    while len(responses) < expected and time.monotonic() < deadline:
        ready, _, _ = select.select([c for c in conns if c not in responses], [], [], 0.2)
        for conn in ready:
            responses[conn] = read_all(conn)
    # Anything else that has arrived by now counts too (it must not have).
    ready, _, _ = select.select([c for c in conns if c not in responses], [], [], 0.5)
    for conn in ready:
        responses[conn] = read_all(conn)
    return list(responses.values())


def read_all(conn: socket.socket) -> bytes:
    """An early answer closes the connection (its body was not read): read to the end."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def assert_429(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 "), response[:200]
    assert b"\r\nretry-after: 1\r\n" in head.lower() + b"\r\n"
    error = json.loads(body)
    oai.validate_error(429, error)
    assert error["code"] == 20429


@pytest.fixture
def two_accounts(tmp_path: Path) -> Iterator[tuple[Server, tuple[str, str]]]:
    db = tmp_path / "db"
    other = create_account(db)
    server = start_server(
        db,
        "--max-concurrent-requests", "150", "--max-account-requests", "100",
        "--max-account-body-bytes", "100000", "--body-timeout", "120",
    )  # fmt: skip
    yield server, other
    server.stop()


def test_slow_bodies_from_one_account_do_not_lock_out_another(
    two_accounts: tuple[Server, tuple[str, str]],
) -> None:
    server, (b_sid, b_token) = two_accounts
    with server.http() as a_http:
        sub = a_http.post("/2010-04-01/Accounts.json", data={"FriendlyName": "a-sub"}).json()
    # 200 POSTs from account A that never finish their bodies: more than the global
    # limit (150), so without a per-account limit every other request would get 429.
    flood = [slow_post(server, server.account_sid, server.auth_token) for _ in range(200)]
    try:
        refused = answered(flood, 100)
        assert len(refused) == 100  # the other 100 are held, within A's share
        for response in refused:
            assert_429(response)
        with server.http(b_sid, b_token) as b_http:
            for i in range(20):
                created = b_http.post("/v1/IpRecords", data={"IpAddress": f"10.9.0.{i}"})
                assert created.status_code == 201, created.text
                assert b_http.get("/v1/IpRecords").status_code == 200
        # A's subaccount shares A's share.
        with server.http(sub["sid"], sub["auth_token"]) as sub_http:
            response = sub_http.get("/v1/IpRecords")
            assert response.status_code == 429
            assert response.json()["code"] == 20429
    finally:
        for conn in flood:
            conn.close()
    with server.http() as a_http:
        for _ in range(100):  # until the server has seen the flood's connections close
            if a_http.get("/v1/IpRecords").status_code == 200:
                break
        assert a_http.get("/v1/IpRecords").status_code == 200


def test_body_bytes_in_flight_are_limited_per_account(
    two_accounts: tuple[Server, tuple[str, str]],
) -> None:
    server, (b_sid, b_token) = two_accounts
    # Each declares 40,000 bytes: two fit in A's 100,000, the third does not.
    held = [slow_post(server, server.account_sid, server.auth_token, 40_000) for _ in range(3)]
    try:
        refused = answered(held, 1)
        assert len(refused) == 1
        assert_429(refused[0])
        assert b"bodies in flight exceed 100000 bytes" in refused[0]
        # B's bodies are B's own share.
        b_held = [slow_post(server, b_sid, b_token, 40_000) for _ in range(2)]
        assert answered(b_held, 0) == []
        for conn in b_held:
            conn.close()
        with server.http(b_sid, b_token) as b_http:
            created = b_http.post("/v1/IpRecords", data={"IpAddress": "10.9.1.1"})
            assert created.status_code == 201, created.text
    finally:
        for conn in held:
            conn.close()
