"""The SQLite store's reads share one read transaction per turn of the event loop, and
never one older than the file: a commit by any connection starts a new one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw
import msgspec

from sipmap.core.models import AclMapping, IpRecord
from sipmap.store.base import Tx
from sipmap.store.sqlite import SqliteStore

from .factories import SUB, TOP, record, sid


async def _seeded(path: Path) -> SqliteStore:
    store = SqliteStore(path)

    def seed(tx: Tx) -> None:
        for account in (TOP, SUB):
            tx.insert(account)
        for n in range(1, 4):
            tx.insert(record(n))

    await store.write(seed)
    return store


def _rename(path: Path, record_sid: str, name: str) -> None:
    """A commit by another connection (as the `sipmap` CLI would make), in this turn."""
    other = apsw.Connection(str(path))
    try:
        other.execute("UPDATE ip_records SET friendly_name = ? WHERE sid = ?", (name, record_sid))
    finally:
        other.close()


def test_a_read_in_the_same_turn_after_another_commit_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.db"

    async def scenario() -> None:
        store = await _seeded(path)
        try:
            # No await between these lines yields to the loop: one turn throughout.
            assert await store.get(IpRecord, sid("IL", 1)) == record(1)
            assert store._read_conn.in_transaction  # the turn's snapshot is open
            _rename(path, sid("IL", 2), "renamed")
            fetched = await store.get(IpRecord, sid("IL", 2))
            assert fetched == msgspec.structs.replace(record(2), friendly_name="renamed")
            _rename(path, sid("IL", 3), "also renamed")
            found = await store.read(lambda tx: tx.find(IpRecord, sid=sid("IL", 3)))
            assert [r.friendly_name for r in found] == ["also renamed"]
            # A read the row cache cannot answer (AclMapping) takes the same path.
            assert await store.get(AclMapping, sid("AL", 9)) is None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_snapshot_ends_with_the_turn(tmp_path: Path) -> None:
    """An open read transaction would keep the WAL from being checkpointed: none
    outlives the loop's turn, even when no read follows."""
    path = tmp_path / "snapshot.db"

    async def scenario() -> None:
        store = await _seeded(path)
        try:
            await store.get(IpRecord, sid("IL", 1))
            await store.read(lambda tx: tx.find(IpRecord))
            assert store._read_conn.in_transaction
            await asyncio.sleep(0)
            assert not store._read_conn.in_transaction
            # Everything the WAL holds can be checkpointed: no reader pins a frame.
            _rename(path, sid("IL", 2), "x")
            busy, _, _ = (
                apsw.Connection(str(path)).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            )
            assert busy == 0
        finally:
            await store.close()

    asyncio.run(scenario())


def test_reads_map_the_file_and_follow_it_as_it_grows_and_shrinks(tmp_path: Path) -> None:
    """The reading connection maps the database file. Another connection grows it
    (rows checkpointed into the file, past its size when the store opened), then
    empties and VACUUMs it (the file shrinks under the mapping): reads follow both."""
    path = tmp_path / "mapped.db"

    def other(*statements: str) -> None:
        conn = apsw.Connection(str(path))
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()

    async def scenario() -> None:
        store = await _seeded(path)
        try:
            assert store._read_conn.execute("PRAGMA mmap_size").fetchone()[0] >= 1 << 30
            before = path.stat().st_size
            assert await store.get(IpRecord, sid("IL", 3)) == record(3)
            await asyncio.sleep(0)
            values = ",".join(
                f"('{sid('IL', n)}', '{TOP.sid}', 'r{n}', '10.0.0.1', 24, 0, 0)"
                for n in range(100, 3100)
            )
            other(
                "INSERT INTO ip_records (sid, account_sid, friendly_name, ip_address,"
                f" cidr_prefix_length, date_created, date_updated) VALUES {values}",
                "PRAGMA wal_checkpoint(TRUNCATE)",
            )
            assert path.stat().st_size > 4 * before
            for n in range(100, 3100, 97):
                found = await store.get(IpRecord, sid("IL", n))
                assert found is not None and found.friendly_name == f"r{n}"
            await asyncio.sleep(0)  # ends the turn's snapshot, which VACUUM would wait on
            grown = path.stat().st_size
            other(
                "DELETE FROM ip_records WHERE seq > 3", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"
            )
            assert path.stat().st_size < grown / 4
            assert await store.get(IpRecord, sid("IL", 200)) is None
            assert await store.get(IpRecord, sid("IL", 2)) == record(2)
        finally:
            await store.close()

    asyncio.run(scenario())
