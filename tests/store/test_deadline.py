"""The watchdog of store/deadline.py on real PostgreSQL connections: a call that overruns
its deadline is cut (its connection broken, the wait ended), a call that ends in time is
left alone, a shorter deadline registered after a longer one still fires first, and a
paused deadline does not count the caller's own work.

The server here is alive (pg_sleep keeps it busy): tests/e2e/test_frozen_database.py
has one that hangs."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from sipmap.core.models import IpRecord
from sipmap.store.base import Tx
from sipmap.store.deadline import Overran, Watchdog
from sipmap.store.postgres import PostgresStore

from ..pg import base_url, scratch_database
from .factories import TOP, record
from .test_contract import insert_all

SLEEP = 10  # seconds the server would keep a call waiting; a test ends long before


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    dog = Watchdog()
    yield dog
    dog.close()


def connect() -> psycopg.Connection[Any]:
    return psycopg.connect(base_url(), autocommit=True)


def test_an_overrunning_call_is_cut_and_its_connection_broken(watchdog: Watchdog) -> None:
    with connect() as conn:
        started = time.monotonic()
        with (
            pytest.raises(Overran, match=r"did not answer within 0\.3 s"),
            watchdog.deadline(conn, 0.3) as deadline,
        ):
            conn.execute(f"SELECT pg_sleep({SLEEP})")
        assert time.monotonic() - started < SLEEP / 2
        assert deadline.cut
        assert conn.broken


def test_a_call_in_time_is_left_alone(watchdog: Watchdog) -> None:
    with connect() as conn:
        with watchdog.deadline(conn, 2.0) as deadline:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        time.sleep(2.5)  # past the deadline, outside its block: nothing happens
        assert not deadline.cut
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_a_shorter_deadline_fires_first(watchdog: Watchdog) -> None:
    """Registered while the watchdog sleeps until a later one, it wakes it."""
    with connect() as long_call, connect() as short_call:
        outcome: list[bool] = []

        def wait_long() -> None:
            with (
                watchdog.deadline(long_call, 60) as deadline,
                contextlib.suppress(psycopg.OperationalError),
            ):
                long_call.execute("SELECT pg_sleep(3)")
            outcome.append(deadline.cut)

        thread = threading.Thread(target=wait_long)
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError), watchdog.deadline(short_call, 0.3):
            short_call.execute(f"SELECT pg_sleep({SLEEP})")
        assert time.monotonic() - started < 2.5  # before the long call ends by itself
        thread.join()
        assert outcome == [False]


def test_a_paused_deadline_spares_the_callers_work_and_a_renewed_one_fires(
    watchdog: Watchdog,
) -> None:
    with connect() as conn:
        with pytest.raises(Overran), watchdog.deadline(conn, 0.3) as deadline:
            conn.execute("SELECT 1")
            deadline.pause()
            time.sleep(0.8)  # the caller's own work: not the server's
            assert not deadline.cut
            deadline.renew()
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.execute(f"SELECT pg_sleep({SLEEP})")
        assert deadline.cut


def test_a_closed_watchdog_still_cuts_the_calls_in_flight() -> None:
    """A store closes at shutdown while a cancelled request's thread may still wait."""
    dog = Watchdog()
    errors: list[BaseException] = []
    with connect() as conn:

        def call() -> None:
            try:
                with dog.deadline(conn, 0.5):
                    conn.execute(f"SELECT pg_sleep({SLEEP})")
            except psycopg.Error as error:
                errors.append(error)

        thread = threading.Thread(target=call)
        thread.start()
        pid = conn.info.backend_pid
        with connect() as other:  # the call is under way: its deadline is set
            while not other.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)
            ).fetchone():
                time.sleep(0.01)
        started = time.monotonic()
        dog.close()  # returns once the call in flight has ended
        assert time.monotonic() - started < SLEEP / 2
        thread.join()
    assert [type(error) for error in errors] == [Overran]


def test_a_long_scan_is_not_cut_while_each_of_its_fetches_is_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full load (the feed's, or read_blocking's) may take far longer than the deadline:
    each fetch gets it anew, and the consumer's work between fetches does not count."""
    monkeypatch.setattr("sipmap.store.postgres_tx.SCAN_BATCH", 2)
    records = [record(n) for n in range(1, 5)]
    timeout = 0.5  # each batch of 2 rows takes the consumer 0.7 s

    def slowly(tx: Tx) -> list[str]:
        sids = []
        for (sid,) in tx.scan(IpRecord, ["sid"]):
            time.sleep(0.35)
            sids.append(sid)
        return sids

    async def run(url: str) -> None:
        # The rows go in through a store with the default timeout: the scans are what
        # this test bounds, and a first write (its connection, its commit) once took
        # over 0.5 s on a busy machine.
        seeding = PostgresStore(url)
        try:
            await seeding.write(insert_all(TOP, *records))
        finally:
            await seeding.close()
        store = PostgresStore(url, timeout=timeout)
        try:
            loaded: list[str] = []

            def rebuild(tx: Tx) -> Callable[[], None]:
                loaded.extend(slowly(tx))
                return lambda: None

            await store.follow(lambda events: None, rebuild).start()
            assert loaded == [r.sid for r in records]
            assert await asyncio.to_thread(store.read_blocking, slowly) == loaded
        finally:
            await store.close()

    with scratch_database() as url:
        asyncio.run(run(url))
