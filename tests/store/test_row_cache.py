"""The SQLite store's row cache for `Store.get`: bounded whatever the tables' sizes,
what is used stays (least recently used dropped first), and a sweep through one kind of
row does not push out another."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sipmap.core.models import Account, IpRecord
from sipmap.store.base import Tx
from sipmap.store.sqlite import SqliteStore

from .factories import SUB, TOP, record, sid


def test_the_row_cache_is_bounded_and_keeps_rows_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sipmap.store.sqlite.MAX_CACHED_ROWS", 5)

    async def scenario() -> None:
        store = SqliteStore(tmp_path / "cache.db")
        try:

            def seed(tx: Tx) -> None:
                for account in (TOP, SUB):
                    tx.insert(account)
                for n in range(1, 41):
                    tx.insert(record(n))

            await store.write(seed)
            account = await store.get(Account, TOP.sid)
            hot = await store.get(IpRecord, sid("IL", 1))
            cold = await store.get(IpRecord, sid("IL", 2))
            for n in range(3, 41):
                assert await store.get(IpRecord, sid("IL", n)) == record(n)
                assert len(store._cache) <= 6  # five records and the account
                # Used all along: still the very object first read.
                assert await store.get(IpRecord, sid("IL", 1)) is hot
            again = await store.get(IpRecord, sid("IL", 2))
            assert again == cold and again is not cold  # dropped, then read anew
            assert await store.get(IpRecord, sid("IL", 1), account_sid=SUB.sid) is None
            # Forty records later, the account was never dropped.
            assert await store.get(Account, TOP.sid) is account
        finally:
            await store.close()

    asyncio.run(scenario())
