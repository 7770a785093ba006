"""Spec-driven fuzzing: schemathesis over Twilio's specs for every operation sipmap
serves, against a real server. No 5xx; every response's status, content type and
body conform to the spec (Twilio's quirks: quirks.py); every error is Twilio's body.

Bounded by MAX_EXAMPLES per operation (a couple of minutes in all); the number of
cases run is printed at the end of the session (conftest.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from sipmap import testing

from ..conftest import FUZZ_CASE, Server, start_server
from . import quirks
from .extract import DEFAULT_SPECS, OUTPUT, extract, served, shape

MAX_EXAMPLES = int(os.environ.get("SIPMAP_FUZZ_EXAMPLES", "30"))
PARAMETER_ERRORS = ("Invalid ", "Missing required parameter ")


def spec() -> dict[str, Any]:
    """Twilio's specs cut to the served operations: from ../shared when it is there,
    else the committed extract (test_the_extract_is_current keeps the two equal)."""
    if DEFAULT_SPECS.is_dir():
        return extract(DEFAULT_SPECS)
    loaded: dict[str, Any] = json.loads(OUTPUT.read_text())
    return loaded


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Schemathesis sends wrong credentials on purpose, many times a second: the login
    # throttle (tested in tests/e2e/test_login_throttle.py) would answer 429 to the rest.
    server = start_server(
        tmp_path_factory.mktemp("fuzz") / "db",
        "--login-failures-per-source",
        "0",
        "--login-failures-per-account",
        "0",
    )
    yield server
    server.stop()


# Loaded at import, not from a fixture: schemathesis's lazy fixture loader sets a
# node attribute pytest 9 no longer has. The server's URL is given per call.
schema = schemathesis.openapi.from_dict(quirks.apply(spec()))
# Given as the spec's own security scheme, so schemathesis can also leave it out
# (and expect 401) in the cases it makes for that.
schema.config.update(
    basic_auth=(testing.DEFAULT_ACCOUNT_SID, testing.DEFAULT_AUTH_TOKEN),
    # The caller's own account in 2010 paths, so the cases reach the handlers rather
    # than stopping at 404 for an account that is not the caller's.
    parameters={"AccountSid": testing.DEFAULT_ACCOUNT_SID},
)
schema.config.generation.allow_extra_parameters = False  # quirks.py, 4
_positive = schema.config.checks.positive_data_acceptance
_positive.expected_statuses = [*_positive.expected_statuses, *quirks.POSITIVE_EXTRA]


@schemathesis.check
def twilio_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error response is Twilio's JSON error body, its status the HTTP status."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    assert set(body) == {"code", "message", "more_info", "status"}, body
    assert body["status"] == response.status_code, body
    assert isinstance(body["code"], int) and body["more_info"].startswith("https://"), body
    if response.status_code == 400 and body["code"] == 20001:
        # quirks.py, 3: a refusal names the parameter and its rule, or what is wrong
        # with the request as a whole.
        assert body["message"].startswith(PARAMETER_ERRORS), body
    return None


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation(case: Any, fuzz_server: Server, record_property: Any) -> None:
    case.call_and_validate(base_url=fuzz_server.base_url, additional_checks=[twilio_error_body])
    # counted in ../conftest.py
    record_property(FUZZ_CASE, f"{case.operation.method.upper()} {case.operation.path}")


def test_the_extract_is_current() -> None:
    """The committed extract is what extract.py makes of the specs in ../shared (when
    they are here; without them the committed extract is what the fuzz test uses)."""
    committed = json.loads(OUTPUT.read_text())
    if DEFAULT_SPECS.is_dir():
        assert committed == extract(DEFAULT_SPECS), "run: python -m tests.fuzz.extract"
    assert "MIT License" in (OUTPUT.parent / "LICENSE").read_text()


def test_every_served_operation_is_fuzzed() -> None:
    """Each operation sipmap serves for Twilio's API is in the extract, and no other."""
    in_spec = {
        (shape(path), method)
        for path, item in spec()["paths"].items()
        for method in item
        if method in ("get", "post", "delete")
    }
    assert in_spec == {(path, m) for path, methods in served().items() for m in methods}
