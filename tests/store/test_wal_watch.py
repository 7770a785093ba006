"""The SQLite row cache's change detector: the WAL-index header (wal_watch.py).

The store contract suite already checks that `Store.get` sees other connections'
commits. These check the detector itself, with other *processes* committing, its
fallback, and that it never costs SQLite its locks.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipmap.core.models import IpRecord
from sipmap.store import wal_watch
from sipmap.store.sqlite import SqliteStore

from . import factories


def _record(n: int, name: str) -> IpRecord:
    return factories.record(n, friendly_name=name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "watch.db")
    asyncio.run(opened.write(lambda tx: tx.insert(factories.TOP)))
    try:
        yield opened
    finally:
        opened.close_blocking()


def _shm_locks(db: Path) -> list[str]:
    """The POSIX locks this process holds on db's -shm file, from /proc/locks (without
    each line's ordinal, which moves as other processes take and drop locks)."""
    inode = os.stat(f"{db}-shm").st_ino
    mine = f" {os.getpid()} "
    return [" ".join(line.split()[1:]) for line in Path("/proc/locks").read_text().splitlines()
            if line.split()[5].endswith(f":{inode}") and mine in line]  # fmt: skip


def test_stamp_changes_with_every_commit_and_only_then(tmp_path: Path) -> None:
    db = tmp_path / "raw.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    watch = wal_watch.open_watch(str(db))
    assert watch is not None and watch.usable
    try:
        seen = {watch.stamp()}
        for i in range(300):
            before = watch.stamp()
            conn.execute("SELECT count(*) FROM t").fetchall()  # a read changes nothing
            assert watch.stamp() == before
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            assert watch.stamp() not in seen
            seen.add(watch.stamp())
            if i % 50 == 0:
                # A checkpoint makes the next commit restart the log from frame 1.
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    finally:
        conn.close()
        watch.release()


def test_get_sees_each_commit_of_another_process(store: SqliteStore) -> None:
    # The writer is a separate Python process with its own SQLite: the case the
    # pragma fallback existed for (the CLI, a second node on the same file).
    record = _record(1, "v0")
    asyncio.run(store.write(lambda tx: tx.insert(record)))
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "for line in sys.stdin:\n"
        "    conn.execute('UPDATE ip_records SET friendly_name = ? WHERE sid = ?',"
        " (line.strip(), sys.argv[2]))\n"
        "    print('done', flush=True)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, store.path, record.sid],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert other.stdin is not None and other.stdout is not None
    try:
        for i in range(1, 40):
            assert asyncio.run(store.get(IpRecord, record.sid)) == _record(1, f"v{i - 1}")
            other.stdin.write(f"v{i}\n")
            other.stdin.flush()
            assert other.stdout.readline() == "done\n"  # committed, acknowledged
            assert asyncio.run(store.get(IpRecord, record.sid)) == _record(1, f"v{i}")
    finally:
        other.stdin.close()
        other.wait(timeout=10)
        other.stdout.close()


def test_unknown_header_falls_back_to_asking_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal_watch, "WAL_INDEX_VERSION", 1)
    first = SqliteStore(tmp_path / "fallback.db")
    second = SqliteStore(tmp_path / "fallback.db")
    try:
        assert first._watch is not None and not first._watch.usable
        record = _record(2, "before")
        asyncio.run(first.write(lambda tx: (tx.insert(factories.TOP), tx.insert(record))))
        assert asyncio.run(first.get(IpRecord, record.sid)) == record
        renamed = _record(2, "after")
        asyncio.run(second.write(lambda tx: tx.update(renamed)))
        assert asyncio.run(first.get(IpRecord, record.sid)) == renamed
    finally:
        second.close_blocking()
        first.close_blocking()


def test_closing_one_store_keeps_the_locks_of_another_on_the_same_file(
    store: SqliteStore,
) -> None:
    # POSIX locks are per process and file: closing any descriptor of the -shm file
    # would silently drop the shared lock by which SQLite tells other processes the
    # WAL index is in use (and may not be rebuilt under us).
    db = Path(store.path)
    held = _shm_locks(db)
    assert held
    for _ in range(3):
        SqliteStore(db).close_blocking()
        assert _shm_locks(db) == held
    # The watch is still shared by one user: the store under test.
    assert len(wal_watch._open) == 1
    assert next(iter(wal_watch._open.values())).users == 1
