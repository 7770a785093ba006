"""The SQLite writer gives a batch a budget of the event loop's time: past it, the
thread runs the rest of the batch in the same transaction (store/writer.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sipmap.core.models import IpRecord
from sipmap.store.base import Tx
from sipmap.store.sqlite import SqliteStore

from .factories import TOP, record


class Refused(Exception):
    pass


def test_slow_writes_leave_the_loop_after_its_budget_and_commit_together(
    tmp_path: Path,
) -> None:
    ran_on: dict[int, str] = {}

    def slow_insert(n: int) -> Callable[[Tx], int]:
        def write(tx: Tx) -> int:
            ran_on[n] = threading.current_thread().name
            time.sleep(0.005)  # a write function that takes longer than the budget
            if n == 7:
                tx.insert(record(99))
                raise Refused  # after writing: undone, the others kept
            tx.insert(record(n))
            return n

        return write

    async def scenario() -> None:
        store = SqliteStore(tmp_path / "writer.db")
        try:
            await store.write(lambda tx: tx.insert(TOP))
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            # Made in one turn: one batch.
            results = await asyncio.gather(
                *(store.write(slow_insert(n)) for n in range(1, 11)), return_exceptions=True
            )
            ticking.cancel()
            assert results[:6] == [1, 2, 3, 4, 5, 6] and results[7:] == [8, 9, 10]
            assert isinstance(results[6], Refused)
            loop_thread = threading.current_thread().name
            # The first write ran on the loop and took it past its budget; the thread
            # ran the rest, and the loop went on turning meanwhile.
            assert ran_on[1] == loop_thread
            assert all(ran_on[n] == "sipmap-writer" for n in range(2, 11))
            assert ticks > 10
            stored = await store.read(lambda tx: tx.find(IpRecord))
            assert sorted(int(r.sid[2:], 16) for r in stored) == [1, 2, 3, 4, 5, 6, 8, 9, 10]
        finally:
            await store.close()

    asyncio.run(scenario())
