"""An account's status reaches recognition: the accounts service publishes each change,
and a suspended or closed account's domains accept nothing (CONTRACT §6 rule 4)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sipmap.core import sids
from sipmap.core.clock import ManualClock
from sipmap.core.events import AccountStatusChanged
from sipmap.core.models import Account
from sipmap.recognize import recognizer as rec
from sipmap.recognize.recognizer import Recognizer
from sipmap.service import open_service
from sipmap.service.accounts import Principal
from sipmap.store.sqlite import SqliteStore

from .harness import A, Harness, opened

PARENT = Principal(A, is_subaccount=False)


def test_a_status_set_is_published_and_nothing_else_is(tmp_path: Path) -> None:
    with opened(Harness, tmp_path / "s.db") as h:
        sub, _ = h.run(h.accounts.create_account(PARENT, "sub"))
        assert h.published.take() == []
        h.run(h.accounts.update_account(PARENT, sub.sid, "renamed", None))
        assert h.published.take() == []
        h.run(h.accounts.update_account(PARENT, sub.sid, None, "active"))  # as it was: harmless
        assert h.published.take() == [AccountStatusChanged(sub.sid, "active")]
        h.run(h.accounts.update_account(PARENT, sub.sid, None, "suspended"))
        assert h.published.take() == [AccountStatusChanged(sub.sid, "suspended")]
        h.run(h.accounts.update_account(PARENT, sub.sid, "again", "active"))
        assert h.published.take() == [AccountStatusChanged(sub.sid, "active")]
        h.run(h.accounts.update_account(PARENT, sub.sid, None, "closed"))
        assert h.published.take() == [AccountStatusChanged(sub.sid, "closed")]


def test_suspension_reaches_the_live_recognizer_and_a_fresh_load(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, str, str]]:
        store = SqliteStore(tmp_path / "r.db")
        service = open_service(store, clock=ManualClock(), new_sid=sids.counter_sids())
        seen: list[tuple[str, str, str]] = []

        async def observe() -> None:
            loaded = Recognizer()
            await asyncio.to_thread(loaded.load, store)
            for r in (service.recognizer, loaded):
                result = r.recognize("10.0.0.5")
                seen.append((result.account_sid or "", str(result.allowed), result.reason))

        try:
            now = ManualClock()()
            await store.write(
                lambda tx: tx.insert(Account(A, A, "a", "active", "0" * 64, now, now))
            )
            sub, _ = await service.accounts.create_account(PARENT, "sub")
            domain = await service.domains.create(sub.sid, {"domain_name": "s.sip.twilio.com"})
            record = await service.voice.create_ip_record(sub.sid, "10.0.0.0", 8, None)
            await service.voice.create_mapping(sub.sid, record.sid, domain.domain.sid)
            acl = await service.acls.create_list(sub.sid, "office")
            await service.acls.create_address(sub.sid, acl.sid, "pbx", "10.0.0.5", None)
            await service.acls.create_mapping(sub.sid, domain.domain.sid, acl.sid)
            await observe()
            await service.accounts.update_account(PARENT, sub.sid, None, "suspended")
            await observe()
            await service.accounts.update_account(PARENT, sub.sid, None, "active")
            await observe()
            await service.accounts.update_account(PARENT, sub.sid, None, "closed")
            await observe()
            return seen
        finally:
            await store.close()

    seen = asyncio.run(scenario())
    reasons = [reason for _, _, reason in seen]
    # Each state twice: the recognizer fed by events, and one loaded from the store.
    assert (
        reasons
        == [rec.ALLOWED] * 2
        + [rec.ACCOUNT_NOT_ACTIVE] * 2
        + [rec.ALLOWED] * 2
        + [rec.ACCOUNT_NOT_ACTIVE] * 2
    )
    assert {allowed for _, allowed, reason in seen if reason == rec.ACCOUNT_NOT_ACTIVE} == {"False"}
