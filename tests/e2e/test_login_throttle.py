"""Failed logins over real HTTP: throttled per client address with 429/20429 and
Retry-After, while clients at other addresses keep logging in (issue 10, finding 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..conftest import Server, start_server


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "throttle.db", "--login-failures-per-source", "3")
    yield server
    server.stop()


def client_at(server: Server, address: str, password: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127/8 address is ours)."""
    transport = httpx.HTTPTransport(local_address=address)
    auth = (server.account_sid, password)
    return httpx.Client(base_url=server.base_url, auth=auth, transport=transport, timeout=10)


def test_failed_logins_from_one_address_get_429_and_others_are_served(strict: Server) -> None:
    with client_at(strict, "127.0.0.1", "wrong-token") as attacker:
        statuses = [attacker.get("/v1/IpRecords").status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        held = attacker.get("/v1/IpRecords")
    assert held.status_code == 429
    assert 1 <= int(held.headers["retry-after"]) <= 20
    body = held.json()
    assert (body["code"], body["status"]) == (20429, 429)
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20429"
    assert "wrong-token" not in held.text
    # Even the right token is refused from there for now...
    with client_at(strict, "127.0.0.1", strict.auth_token) as same_address:
        assert same_address.get("/v1/IpRecords").status_code == 429
    # ...but another client, elsewhere, logs in as usual.
    with client_at(strict, "127.0.0.2", strict.auth_token) as elsewhere:
        assert elsewhere.get("/v1/IpRecords").status_code == 200
