"""The credential cache: what `recall` answers, and when it stops answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from sipmap.core.errors import AccountNotActive
from sipmap.service import accounts as accounts_module
from sipmap.service.accounts import AccountService, AuthenticationFailed, Principal

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
