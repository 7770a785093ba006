"""Shared fixtures: a real `sipmap serve` process on a real socket, and the official SDK."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from twilio.http.response import Response
from twilio.rest import Client

from sipmap import testing

from . import oai

ACCOUNT_SID = testing.DEFAULT_ACCOUNT_SID
AUTH_TOKEN = testing.DEFAULT_AUTH_TOKEN

# How many cases the fuzz test (tests/fuzz) ran: one user property of its reports per
# case, counted here because reports reach the main process when the suite runs in
# several (which loads no conftest below this one).
FUZZ_CASE = "schemathesis_case"
_FUZZ_CASES: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _FUZZ_CASES.update(value for name, value in report.user_properties if name == FUZZ_CASE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FUZZ_CASES:
        terminalreporter.write_line(
            f"schemathesis: {_FUZZ_CASES.total()} cases over {len(_FUZZ_CASES)} operations"
        )


class Server(testing.RunningServer):
    """A running `sipmap serve` process (sipmap.testing's), plus a raw HTTP client."""

    def http(self, sid: str | None = None, token: str | None = None) -> httpx.Client:
        auth = (sid or self.account_sid, token or self.auth_token)
        return httpx.Client(base_url=self.base_url, auth=auth, timeout=10)


def start_server(
    db: str | Path, *extra: str, port: int | None = None, command_prefix: tuple[str, ...] = ()
) -> Server:
    running = testing.start_server(db, *extra, port=port, command_prefix=command_prefix)
    return Server(**vars(running))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The suite's many deliberate bad logins all come from one address: not throttled
    # here (tests/e2e/test_login_throttle.py has its own servers).
    path = tmp_path_factory.mktemp("e2e") / "sipmap.db"
    srv = start_server(
        path, "--login-failures-per-source", "0", "--login-failures-per-account", "0"
    )
    yield srv
    srv.stop()


def check_against_specs(method: str, url: str, response: Response) -> None:
    """Every response the SDK sees is checked against Twilio's specs."""
    body = json.loads(response.text) if response.text else None
    if response.status_code < 400:
        oai.validate(method.upper(), urlsplit(url).path, response.status_code, body)
    else:
        oai.validate_error(response.status_code, body)


def sdk_client(
    server: Server, sid: str | None = None, token: str | None = None, account_sid: str | None = None
) -> Client:
    """The unmodified SDK against `server` (sipmap.testing's redirect), checking every response."""
    client: Client = testing.twilio_client(
        server, sid, token, account_sid=account_sid, on_response=check_against_specs
    )
    return client


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
