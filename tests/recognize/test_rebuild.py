"""`Recognizer.rebuild`: a full rebuild from the store while the service keeps writing.

Writes land at every moment of a rebuild — before its read of the store, after it,
while the replay runs — and afterwards the recogniser must be exactly what a fresh
load of the store gives, having answered every write at once all along.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sipmap.core import sids
from sipmap.core.clock import ManualClock
from sipmap.core.models import Account
from sipmap.recognize import recognizer as rec
from sipmap.recognize.recognizer import REPLAY_BATCH, Recognizer
from sipmap.service import Service, open_service
from sipmap.service.accounts import Principal
from sipmap.store.base import Tx
from sipmap.store.sqlite import SqliteStore

R = TypeVar("R")
TOP = "AC" + "a" * 32
PARENT = Principal(TOP, is_subaccount=False)
SOURCES = [f"10.{a}.{b}.{c}" for a in range(4) for b in (0, 1, 7) for c in (1, 5, 200)]
URIS = [None, "sip:one.sip.twilio.com", "sip:uno.sip.twilio.com", "sip:two.sip.twilio.com"]


class PausingStore(SqliteStore):
    """A store whose bulk read stops twice: before it reads, and after."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gates = [threading.Event() for _ in range(4)]  # reached, go, read, go

    def read_blocking(self, fn: Callable[[Tx], R]) -> R:
        self.gates[0].set()
        self.gates[1].wait()
        result = super().read_blocking(fn)
        self.gates[2].set()
        self.gates[3].wait()
        return result


def answers(recognizer: Recognizer) -> list[Any]:
    return [recognizer.recognize(s, u) for s in SOURCES for u in URIS]


async def fresh_load(store: SqliteStore) -> Recognizer:
    loaded = Recognizer()
    await asyncio.to_thread(loaded.load, _Plain(store))
    return loaded


class _Plain:
    """The same database, without the pauses."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def read_blocking(self, fn: Callable[[Tx], R]) -> R:
        return SqliteStore.read_blocking(self.store, fn)


async def mapped(service: Service, account: str, cidr: str, domain_sid: str) -> str:
    ip, length = cidr.split("/")
    record = await service.voice.create_ip_record(account, ip, int(length), None)
    return (await service.voice.create_mapping(account, record.sid, domain_sid)).sid


def test_rebuild_loses_no_change_made_while_it_runs(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Any], list[Any], list[str]]:
        store = PausingStore(tmp_path / "rebuild.db")
        service = open_service(store, clock=ManualClock(), new_sid=sids.counter_sids())
        recognizer, notes = service.recognizer, []
        try:
            now = ManualClock()()
            await store.write(
                lambda tx: tx.insert(Account(TOP, TOP, "a", "active", "0" * 64, now, now))
            )
            sub, _ = await service.accounts.create_account(PARENT, "sub")
            one = (await service.domains.create(TOP, {"domain_name": "one.sip.twilio.com"})).domain
            two = (
                await service.domains.create(sub.sid, {"domain_name": "two.sip.twilio.com"})
            ).domain
            wide = await mapped(service, TOP, "10.0.0.0/8", one.sid)
            await mapped(service, sub.sid, "10.1.0.0/16", two.sid)
            acl = await service.acls.create_list(TOP, "office")
            await service.acls.create_address(TOP, acl.sid, "pbx", "10.0.0.5", None)
            await service.acls.create_mapping(TOP, one.sid, acl.sid)

            rebuilding = asyncio.create_task(recognizer.rebuild(store))
            await asyncio.to_thread(store.gates[0].wait)
            # Before the snapshot: in it, and replayed on top of it too.
            gone = await mapped(service, TOP, "10.2.0.0/16", one.sid)
            await service.voice.delete_mapping(TOP, wide)
            store.gates[1].set()
            await asyncio.to_thread(store.gates[2].wait)
            # After the snapshot: only the replay brings these.
            await mapped(service, TOP, "10.3.0.0/16", one.sid)
            await service.voice.delete_mapping(TOP, gone)
            await service.domains.update(TOP, one.sid, {"domain_name": "uno.sip.twilio.com"})
            await service.acls.create_address(TOP, acl.sid, "more", "10.3.1.0/24", None)
            await service.accounts.update_account(PARENT, sub.sid, None, "suspended")
            # Answered at once by the state still serving.
            notes.append(recognizer.recognize("10.3.1.5").reason)
            notes.append(recognizer.recognize("10.1.0.1").reason)
            notes.append(recognizer.recognize("10.2.0.1").reason)
            # Enough changes that the replay takes several turns of the loop.
            for n in range(REPLAY_BATCH * 2 + 7):
                await mapped(service, TOP, f"11.{n // 256}.{n % 256}.0/24", one.sid)
            store.gates[3].set()
            await rebuilding
            return answers(recognizer), answers(await fresh_load(store)), notes
        finally:
            await store.close()

    rebuilt, loaded, notes = asyncio.run(scenario())
    assert notes == [rec.ALLOWED, rec.ACCOUNT_NOT_ACTIVE, rec.NO_SOURCE_MAPPING]
    assert rebuilt == loaded
    by_reason = {r.reason for r in rebuilt}
    assert {rec.ALLOWED, rec.ACCOUNT_NOT_ACTIVE, rec.NO_SOURCE_MAPPING} <= by_reason


def test_rebuild_of_an_unchanged_store_changes_nothing_and_a_failed_one_keeps_serving(
    tmp_path: Path,
) -> None:
    class Broken(SqliteStore):
        def read_blocking(self, fn: Callable[[Tx], R]) -> R:
            raise OSError("disk on fire")

    async def scenario() -> None:
        store = SqliteStore(tmp_path / "same.db")
        service = open_service(store, clock=ManualClock(), new_sid=sids.counter_sids())
        try:
            now = ManualClock()()
            await store.write(
                lambda tx: tx.insert(Account(TOP, TOP, "a", "active", "0" * 64, now, now))
            )
            one = (await service.domains.create(TOP, {"domain_name": "one.sip.twilio.com"})).domain
            await mapped(service, TOP, "10.0.0.0/8", one.sid)
            before = answers(service.recognizer)
            await service.recognizer.rebuild(store)
            assert answers(service.recognizer) == before
            broken = Broken.__new__(Broken)
            try:
                await service.recognizer.rebuild(broken)
            except OSError:
                pass
            else:
                raise AssertionError("the failure was swallowed")
            assert answers(service.recognizer) == before
            # Not left buffering: a later change is applied once, as usual.
            await mapped(service, TOP, "10.1.0.0/16", one.sid)
            assert service.recognizer._replay is None
            assert service.recognizer.recognize("10.1.0.1").network == "10.1.0.0/16"
        finally:
            await store.close()

    asyncio.run(scenario())


def test_every_change_bumps_the_generation(tmp_path: Path) -> None:
    """The SIP fast path caches decisions per `generation`: whatever changes what
    `recognize` answers must change it (a write, a rebuild, an adopted state, a load)."""

    async def scenario() -> list[int]:
        store = SqliteStore(tmp_path / "generation.db")
        service = open_service(store, clock=ManualClock(), new_sid=sids.counter_sids())
        recognizer = service.recognizer
        seen = [recognizer.generation]
        try:
            now = ManualClock()()
            await store.write(
                lambda tx: tx.insert(Account(TOP, TOP, "a", "active", "0" * 64, now, now))
            )
            one = (await service.domains.create(TOP, {"domain_name": "one.sip.twilio.com"})).domain
            seen.append(recognizer.generation)
            wide = await mapped(service, TOP, "10.0.0.0/8", one.sid)
            seen.append(recognizer.generation)
            await service.voice.delete_mapping(TOP, wide)
            seen.append(recognizer.generation)
            await recognizer.rebuild(store)
            seen.append(recognizer.generation)
            recognizer.adopt((await fresh_load(store))._state)
            seen.append(recognizer.generation)
            await asyncio.to_thread(recognizer.load, _Plain(store))
            seen.append(recognizer.generation)
        finally:
            await store.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen == sorted(set(seen)), seen  # strictly increasing
