"""What the in-process service tests share: a recording publisher and a seeded world."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sipmap.core import sids
from sipmap.core.clock import ManualClock
from sipmap.core.events import Event
from sipmap.core.models import Account
from sipmap.service.accounts import AccountService
from sipmap.service.context import Context
from sipmap.service.domains import DomainService
from sipmap.service.voice import VoiceService
from sipmap.store.sqlite import SqliteStore

R = TypeVar("R")
H = TypeVar("H", bound="Harness")
A = "AC" + "a" * 32
B = "AC" + "b" * 32


class Recorder:
    """A publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def take(self) -> list[Event]:
        events, self.events = self.events, []
        return events


class Harness:
    """The domain and voice services over a scratch SQLite file, with accounts A and B,
    a manual clock, counting SIDs and a recording publisher; driven synchronously."""

    def __init__(self, db: Path, runner: asyncio.Runner, suffix: str = "sip.twilio.com") -> None:
        self.runner = runner
        self.clock = ManualClock()
        self.published = Recorder()
        self.store = SqliteStore(db)
        self.ctx = Context(
            self.store,
            clock=self.clock,
            new_sid=sids.counter_sids(),
            sip_domain_suffix=suffix,
            publisher=self.published,
        )
        self.voice = VoiceService(self.ctx)
        self.domains = DomainService(self.ctx)
        self.accounts = AccountService(self.ctx)
        for sid in (A, B):
            now = self.clock()
            account = Account(sid, sid, sid, "active", "0" * 64, now, now)
            self.run(self.store.write(lambda tx, a=account: tx.insert(a)))

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return self.runner.run(coro)


@contextmanager
def opened(kind: type[H], db: Path) -> Iterator[H]:
    """A harness of `kind` on a scratch file, with its own event loop; closed after."""
    with asyncio.Runner() as runner:
        harness = kind(db, runner)
        try:
            yield harness
        finally:
            runner.run(harness.store.close())
