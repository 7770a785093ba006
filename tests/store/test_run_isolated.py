"""run_isolated on SQLite: jobs run without a savepoint each, and what happens when one fails.

The store contract suite checks the outcome through Store.write on every backend;
these drive run_isolated directly, to see how many times each job ran.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from sipmap.core.models import IpRecord
from sipmap.store.sqlite import SqliteStore, SqliteTx
from sipmap.store.sqltx import run_isolated

from .factories import TOP, record


class Boom(Exception):
    pass


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[apsw.Connection]:
    SqliteStore(tmp_path / "db").close_blocking()  # the schema
    connection = apsw.Connection(str(tmp_path / "db"))
    SqliteTx(connection).insert(TOP)
    yield connection
    connection.close()


class Jobs:
    """Write functions that count their runs."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()

    def insert(self, n: int) -> Callable[[SqliteTx], int]:
        def run(tx: SqliteTx) -> int:
            self.runs[f"insert {n}"] += 1
            tx.insert(record(n))
            return n

        return run

    def refuse(self, tx: SqliteTx) -> None:
        self.runs["refuse"] += 1
        tx.count(IpRecord)
        raise Boom  # a rule checked before writing

    def half_done(self, tx: SqliteTx) -> None:
        self.runs["half_done"] += 1
        tx.insert(record(99))
        raise Boom


def _run(conn: apsw.Connection, *fns: Callable[[SqliteTx], Any]) -> list[Any]:
    conn.execute("BEGIN IMMEDIATE")
    outcomes = run_isolated(conn, SqliteTx(conn), [(fn, i) for i, fn in enumerate(fns)], conn)
    conn.execute("COMMIT")
    return [error if error is not None else result for _, result, error in outcomes]


def _stored(conn: apsw.Connection) -> list[int]:
    return [int(sid[2:], 16) for (sid,) in conn.execute("SELECT sid FROM ip_records ORDER BY sid")]


def test_a_job_refusing_before_writing_costs_no_rerun(conn: apsw.Connection) -> None:
    jobs = Jobs()
    results = _run(conn, jobs.insert(1), jobs.refuse, jobs.insert(2))
    assert results[0] == 1 and isinstance(results[1], Boom) and results[2] == 2
    assert _stored(conn) == [1, 2]
    assert jobs.runs == {"insert 1": 1, "refuse": 1, "insert 2": 1}


def test_a_failed_statement_undoes_itself_and_costs_no_rerun(conn: apsw.Connection) -> None:
    jobs = Jobs()
    results = _run(conn, jobs.insert(1), jobs.insert(1), jobs.insert(2))
    assert results[0] == 1 and isinstance(results[1], apsw.ConstraintError) and results[2] == 2
    assert _stored(conn) == [1, 2]
    assert jobs.runs == {"insert 1": 2, "insert 2": 1}  # once each


def test_a_job_failing_after_writing_reruns_the_batch_with_savepoints(
    conn: apsw.Connection,
) -> None:
    jobs = Jobs()
    results = _run(conn, jobs.insert(1), jobs.half_done, jobs.insert(2))
    assert results[0] == 1 and isinstance(results[1], Boom) and results[2] == 2
    assert _stored(conn) == [1, 2]  # nothing of half_done's
    # insert 1 and half_done ran, were rolled back, and ran again; insert 2 once.
    assert jobs.runs == {"insert 1": 2, "half_done": 2, "insert 2": 1}


def test_an_error_that_ends_the_transaction_fails_the_batch(conn: apsw.Connection) -> None:
    # SQLite rolls the whole transaction back on some errors (a full disk, say): the
    # jobs after it must not go on writing in autocommit mode.
    jobs = Jobs()

    def ends_it(tx: SqliteTx) -> None:
        conn.execute("ROLLBACK")
        raise apsw.FullError("database or disk is full")

    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(apsw.FullError):
        batch = [(jobs.insert(1), 0), (ends_it, 1), (jobs.insert(2), 2)]
        run_isolated(conn, SqliteTx(conn), batch, conn)
    assert not conn.in_transaction
    assert _stored(conn) == []
    assert jobs.runs == {"insert 1": 1}


def test_a_deadline_stops_after_the_job_that_passes_it(conn: apsw.Connection) -> None:
    jobs = Jobs()

    def slow(tx: SqliteTx) -> int:
        time.sleep(0.003)
        return jobs.insert(3)(tx)

    conn.execute("BEGIN IMMEDIATE")
    batch = [(jobs.insert(1), 0), (slow, 1), (jobs.insert(2), 2)]
    outcomes = run_isolated(conn, SqliteTx(conn), batch, conn, until=time.perf_counter() + 0.002)
    assert [result for _, result, _ in outcomes] == [1, 3]  # the rest is the caller's
    # The rest can run in the same transaction, as the writer's thread does.
    outcomes += run_isolated(conn, SqliteTx(conn), batch[len(outcomes) :], conn)
    conn.execute("COMMIT")
    assert [result for _, result, _ in outcomes] == [1, 3, 2]
    assert _stored(conn) == [1, 2, 3]


def test_a_job_failing_after_writing_before_the_deadline_reruns_only_the_jobs_so_far(
    conn: apsw.Connection,
) -> None:
    jobs = Jobs()

    def half_done_slowly(tx: SqliteTx) -> None:
        time.sleep(0.003)
        jobs.half_done(tx)

    conn.execute("BEGIN IMMEDIATE")
    batch = [(jobs.insert(1), 0), (half_done_slowly, 1), (jobs.insert(2), 2)]
    outcomes = run_isolated(conn, SqliteTx(conn), batch, conn, until=time.perf_counter() + 0.002)
    assert len(outcomes) == 2 and isinstance(outcomes[1][2], Boom)
    conn.execute("COMMIT")
    assert _stored(conn) == [1]
    assert jobs.runs == {"insert 1": 2, "half_done": 2}  # insert 2 is left for the caller
