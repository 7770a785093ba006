"""The credential cache: what `recall` answers, and when it stops answering."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from sipmap.core.errors import AccountNotActive
from sipmap.core.throttle import LoginThrottle
from sipmap.service import accounts as accounts_module
from sipmap.service.accounts import (
    AccountService,
    AuthenticationFailed,
    Principal,
    TooManyFailedLogins,
)

from .harness import Harness, opened


class World(NamedTuple):
    h: Harness
    service: AccountService
    sid: str
    token: str
    clock: Clock


class Clock:
    """Stands in for time.monotonic in the accounts module."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    clock = Clock()
    # The module's own name only: asyncio's loop keeps the real clock.
    monkeypatch.setattr(accounts_module, "time", SimpleNamespace(monotonic=clock))
    with opened(Harness, tmp_path / "db") as harness:
        account, token = harness.run(harness.accounts.create_account(None, "top"))
        yield World(harness, harness.accounts, account.sid, token, clock)


def test_recall_answers_only_for_the_credentials_verified(
    world: World,
) -> None:
    h, service, sid, token, _ = world
    header = f"{sid}:{token}".encode()
    assert service.recall(header) is None
    principal = h.run(service.authenticate(sid, token, credentials=header))
    assert principal == Principal(sid, is_subaccount=False, owner_account_sid=sid)
    assert principal.tenant == sid
    assert service.recall(header) == principal
    assert service.recall(header + b"x") is None
    # A wrong password is never answered from the cache, whatever it is keyed by.
    with pytest.raises(AuthenticationFailed):
        wrong = token[:-1] + ("1" if token.endswith("0") else "0")
        h.run(service.authenticate(sid, wrong, credentials=header + b"x"))
    assert service.recall(header + b"x") is None


def test_recall_expires_and_is_forgotten(world: World) -> None:
    h, service, sid, token, clock = world
    header = b"any encoding of the pair"
    h.run(service.authenticate(sid, token, credentials=header))
    clock.now += accounts_module.CREDENTIAL_CACHE_SECONDS - 0.1
    assert service.recall(header) is not None
    clock.now += 0.2
    assert service.recall(header) is None
    h.run(service.authenticate(sid, token, credentials=header))
    service.forget_credentials()
    assert service.recall(header) is None


def test_authenticate_without_credentials_caches_by_the_pair(
    world: World,
) -> None:
    h, service, sid, token, _ = world
    first = h.run(service.authenticate(sid, token))
    assert h.run(service.authenticate(sid, token)) is first  # from the cache
    with pytest.raises(AuthenticationFailed):
        h.run(service.authenticate(sid, token + "0"))


def test_a_status_change_through_this_process_takes_effect_at_once(
    world: World,
) -> None:
    h, service, sid, token, _ = world
    parent = h.run(service.authenticate(sid, token))
    sub, sub_token = h.run(service.create_account(parent, "sub"))
    header = f"{sub.sid}:{sub_token}".encode()
    h.run(service.authenticate(sub.sid, sub_token, credentials=header))
    h.run(service.update_account(parent, sub.sid, None, "suspended"))
    assert service.recall(header) is None
    with pytest.raises(AccountNotActive):
        h.run(service.authenticate(sub.sid, sub_token, credentials=header))


# -- failed logins are throttled (issue 10, finding 6) ---------------------------------------


def test_failed_logins_are_throttled_per_source_and_logged_without_the_secret(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    h, service, sid, token, clock = world
    wrong = "not-the-token-" + "7" * 20
    with caplog.at_level("WARNING", logger="sipmap.auth"):
        for _ in range(10):
            with pytest.raises(AuthenticationFailed):
                h.run(service.authenticate(sid, wrong, source="192.0.2.1"))
        # Now even the right token is not tried from there, and the answer says when to retry.
        with pytest.raises(TooManyFailedLogins) as info:
            h.run(service.authenticate(sid, token, source="192.0.2.1"))
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, 20429, 6)
    assert h.run(service.authenticate(sid, token, source="192.0.2.2")).account_sid == sid
    failures = [r for r in caplog.records if r.getMessage().startswith("failed login")]
    assert len(failures) == 10 and all(r.levelname == "WARNING" for r in failures)
    assert sid in failures[0].getMessage() and "192.0.2.1" in failures[0].getMessage()
    assert not any(wrong in r.getMessage() or token in r.getMessage() for r in caplog.records)
    clock.now += 6
    assert h.run(service.authenticate(sid, token, source="192.0.2.1")).account_sid == sid


def test_an_account_under_attack_still_serves_its_known_clients(world: World) -> None:
    h, service, sid, token, _ = world
    h.run(service.authenticate(sid, token, source="198.51.100.1"))
    service.forget_credentials()
    for n in range(100):  # from many addresses, as a botnet would
        with pytest.raises(AuthenticationFailed):
            h.run(service.authenticate(sid, f"guess-{n}", source=f"203.0.113.{n}"))
    with pytest.raises(TooManyFailedLogins):
        h.run(service.authenticate(sid, token, source="203.0.113.250"))
    assert h.run(service.authenticate(sid, token, source="198.51.100.1")).account_sid == sid


def test_equal_work_whether_or_not_an_api_key_sid_exists(world: World) -> None:
    # Issue 10, finding 8: a missing key made one lookup, an existing one two.
    h, service, sid, _, _ = world
    account = h.run(service.get_account(sid))
    key, _ = h.run(service.create_key(account, None))
    with pytest.raises(AuthenticationFailed):  # the first one also picks a stand-in key
        h.run(service.authenticate(key.sid, "wrong", source="192.0.2.9"))
    statements: list[str] = []

    def trace(cursor: object, sql: str, bindings: object) -> bool:
        statements.append(sql)
        return True  # run it

    connection = h.store._read_conn  # where reads run
    connection.exec_trace = trace
    try:
        counts = []
        for username in (key.sid, "SK" + "e" * 32):
            statements.clear()
            with pytest.raises(AuthenticationFailed):
                h.run(service.authenticate(username, "wrong", source=f"192.0.2.{len(counts)}"))
            counts.append([s.split(" WHERE")[0] for s in statements])
    finally:
        connection.exec_trace = None
    assert counts[0] == counts[1] and len(counts[0]) >= 2


def test_timing_does_not_tell_whether_an_api_key_sid_exists(world: World) -> None:
    # Statistical, with a generous bound: the medians of interleaved rounds of wrong
    # secrets for an existing and a missing key SID differ by less than a third of
    # the time one takes (the issue measured +70 µs of ~200 µs over HTTP).
    h, service, sid, _, _ = world
    service.throttle = LoginThrottle(0, 0)  # thousands of failures on purpose
    key, _ = h.run(service.create_key(h.run(service.get_account(sid)), None))
    missing = "SK" + "e" * 32

    async def attempt(username: str) -> float:
        started = time.perf_counter()
        with contextlib.suppress(AuthenticationFailed):
            await service.authenticate(username, "wrong")
        return time.perf_counter() - started

    async def rounds() -> tuple[list[float], list[float]]:
        existing: list[float] = []
        absent: list[float] = []
        for _ in range(1500):
            existing.append(await attempt(key.sid))
            absent.append(await attempt(missing))
        return existing, absent

    existing, absent = h.run(rounds())
    a, b = statistics.median(existing), statistics.median(absent)
    assert abs(a - b) < max(a, b) / 3, (a, b)
