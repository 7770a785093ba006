"""The store contract: what every backend's `Store` and `Tx` must do.

Every test takes the `store` fixture, parametrized over backends: SQLite, and
PostgreSQL in a scratch schema of the local test server (which must be running: a
missing server fails these tests, it does not skip them).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from msgspec.structs import replace

from sipmap.core.errors import InvalidPageToken, NotFound
from sipmap.core.models import (
    Account,
    AclMapping,
    ApiKey,
    IpAddress,
    IpRecord,
    Model,
    SipDomain,
    SourceIpMapping,
    network_of,
)
from sipmap.core.paging import PageRequest
from sipmap.store.base import Store, Tx
from sipmap.store.postgres import PostgresStore
from sipmap.store.sqlite import SqliteStore

from ..pg import scratch_database
from .factories import SUB, T0, TOP, acl, domain, mapping, record, sid

R = TypeVar("R")

# -- backends ------------------------------------------------------------------------------


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Callable[[], Store]]:
    path = tmp_path / "contract.db"
    yield lambda: SqliteStore(path)


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Callable[[], Store]]:
    with scratch_database() as url:
        yield lambda: PostgresStore(url)


# name -> a function of a scratch directory giving, while in use, an opener: each call
# opens a store on the same (initially empty) database.
BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Callable[[], Store]]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


class Harness:
    """A store driven from synchronous tests through one event loop."""

    def __init__(self, opener: Callable[[], Store], runner: asyncio.Runner) -> None:
        self.opener = opener
        self.runner = runner
        self.store = opener()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return self.runner.run(coro)

    def read(self, fn: Callable[[Tx], R]) -> R:
        return self.run(self.store.read(fn))

    def write(self, fn: Callable[[Tx], R]) -> R:
        return self.run(self.store.write(fn))

    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = self.opener()


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with BACKENDS[request.param](tmp_path) as opener, asyncio.Runner() as runner:
        harness = Harness(opener, runner)
        try:
            yield harness
        finally:
            runner.run(harness.store.close())


# -- seeding --------------------------------------------------------------------------------


def with_accounts(tx: Tx) -> None:
    tx.insert(TOP)
    tx.insert(SUB)


@pytest.fixture
def seeded(store: Harness) -> Harness:
    store.write(with_accounts)
    return store


def insert_all(*objs: Model) -> Callable[[Tx], None]:
    def run(tx: Tx) -> None:
        for obj in objs:
            tx.insert(obj)

    return run


# -- every model round-trips ------------------------------------------------------------------


def every_model() -> list[Model]:
    rec, dom, lst = record(1), domain(1), acl(1)
    return [
        ApiKey(sid("SK", 1), TOP.sid, None, "c" * 64, T0, T0 + timedelta(seconds=1)),
        rec,
        dom,
        mapping(1, rec, dom),
        lst,
        IpAddress(sid("IP", 1), TOP.sid, lst.sid, "office", "192.0.2.7", 30, T0, T0),
        AclMapping(lst.sid, TOP.sid, dom.sid, T0, T0),
    ]


def test_every_model_round_trips(seeded: Harness) -> None:
    objs = every_model()
    seeded.write(insert_all(*objs))

    def read_back(tx: Tx) -> list[Model]:
        out: list[Model] = [tx.get(Account, TOP.sid), tx.get(Account, SUB.sid)]  # type: ignore[list-item]
        for obj in objs:
            out.append(tx.get(type(obj), obj.sid))  # type: ignore[arg-type]
        return out

    got = seeded.read(read_back)
    assert got == [TOP, SUB, *objs]
    # Types survive, not just equality: booleans stay booleans, dates stay aware UTC.
    dom = got[4]
    assert isinstance(dom, SipDomain)
    assert dom.emergency_calling_enabled is True and dom.secure is False
    assert dom.date_created.tzinfo is not None and dom.date_created.utcoffset() == timedelta(0)


def test_get(seeded: Harness) -> None:
    seeded.write(insert_all(record(1), record(2, SUB)))
    assert seeded.read(lambda tx: tx.get(IpRecord, sid("IL", 1))) == record(1)
    assert seeded.read(lambda tx: tx.get(IpRecord, sid("IL", 3))) is None
    # `where` narrows the lookup: another account's SID is simply not there.
    assert seeded.read(lambda tx: tx.get(IpRecord, sid("IL", 2), account_sid=TOP.sid)) is None
    assert seeded.read(lambda tx: tx.get(IpRecord, sid("IL", 2), account_sid=SUB.sid)) == record(
        2, SUB
    )
    # A SID of another resource type is not found in this one's table.
    assert seeded.read(lambda tx: tx.get(SipDomain, sid("IL", 1))) is None


def test_store_get_sees_every_acknowledged_write(seeded: Harness) -> None:
    # Store.get (no explicit snapshot) answers like Tx.get, right after each write.
    get = seeded.store.get
    assert seeded.run(get(IpRecord, sid("IL", 1))) is None
    seeded.write(insert_all(record(1), record(2, SUB)))
    assert seeded.run(get(IpRecord, sid("IL", 1))) == record(1)
    assert seeded.run(get(IpRecord, sid("IL", 2), account_sid=TOP.sid)) is None
    assert seeded.run(get(IpRecord, sid("IL", 2), account_sid=SUB.sid)) == record(2, SUB)
    seeded.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 1)))
    assert seeded.run(get(IpRecord, sid("IL", 1))) is None


def test_store_get_sees_commits_of_other_connections(seeded: Harness) -> None:
    # A second store on the same database stands for another process (the CLI, a
    # second node): whatever it commits, the next Store.get here answers with.
    get = seeded.store.get
    seeded.write(insert_all(record(1)))
    assert seeded.run(get(IpRecord, sid("IL", 1))) == record(1)
    assert seeded.run(get(IpRecord, sid("IL", 2))) is None
    other = seeded.opener()
    try:
        renamed = replace(record(1), friendly_name="renamed")
        seeded.run(other.write(lambda tx: tx.update(renamed)))
        assert seeded.run(get(IpRecord, sid("IL", 1))) == renamed
        seeded.run(other.write(insert_all(record(2))))
        assert seeded.run(get(IpRecord, sid("IL", 2), account_sid=TOP.sid)) == record(2)
        seeded.run(other.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 1))))
        assert seeded.run(get(IpRecord, sid("IL", 1))) is None
    finally:
        seeded.run(other.close())


def test_store_get_of_a_list_mapped_to_several_domains(seeded: Harness) -> None:
    # An ACL mapping's SID is the list's, so the SID alone does not name one row.
    lst, one, two = acl(1), domain(1), domain(2)
    seeded.write(insert_all(lst, one, two))
    seeded.write(insert_all(AclMapping(lst.sid, TOP.sid, one.sid, T0, T0)))
    seeded.write(insert_all(AclMapping(lst.sid, TOP.sid, two.sid, T0, T0)))
    for dom in (one, two, one):
        got = seeded.run(seeded.store.get(AclMapping, lst.sid, domain_sid=dom.sid))
        assert got == AclMapping(lst.sid, TOP.sid, dom.sid, T0, T0)


def test_find_and_count(seeded: Harness) -> None:
    # SIDs descend while creation ascends: order must be creation order, not SID order.
    recs = [
        record(9, friendly_name=None),
        record(8),
        record(7, SUB),
        record(6, cidr_prefix_length=32),
    ]
    seeded.write(insert_all(*recs))

    def sids_of(**where: Any) -> list[str]:
        return [r.sid for r in seeded.read(lambda tx: tx.find(IpRecord, **where))]

    assert sids_of() == [r.sid for r in recs]
    assert sids_of(account_sid=TOP.sid) == [sid("IL", 9), sid("IL", 8), sid("IL", 6)]
    assert sids_of(account_sid=TOP.sid, cidr_prefix_length=24) == [sid("IL", 9), sid("IL", 8)]
    assert sids_of(sid=[sid("IL", 6), sid("IL", 9), sid("IL", 5)]) == [sid("IL", 9), sid("IL", 6)]
    assert sids_of(sid=("IL" + "f" * 32,)) == []
    assert sids_of(sid=[]) == []
    assert sids_of(friendly_name=None) == [sid("IL", 9)]
    assert seeded.read(lambda tx: tx.count(IpRecord)) == 4
    assert seeded.read(lambda tx: tx.count(IpRecord, account_sid=SUB.sid)) == 1
    assert seeded.read(lambda tx: tx.count(IpRecord, sid=[])) == 0
    assert seeded.read(lambda tx: tx.count(ApiKey)) == 0


def test_scan_streams_plain_tuples_in_creation_order(
    seeded: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several round trips of PostgreSQL's server-side cursor, not one.
    monkeypatch.setattr("sipmap.store.postgres_tx.SCAN_BATCH", 2)
    recs = [record(9), record(8, SUB), record(7, cidr_prefix_length=32), record(6)]
    seeded.write(insert_all(*recs))
    columns = ("sid", "cidr_prefix_length", "date_created")
    expected = [(r.sid, r.cidr_prefix_length, int(T0.timestamp())) for r in recs]
    # As the recogniser's bulk load reads: on a private connection, in a worker thread.
    assert seeded.store.read_blocking(lambda tx: list(tx.scan(IpRecord, columns))) == expected
    assert seeded.read(lambda tx: [tuple(row) for row in tx.scan(IpRecord, ["sid"])]) == [
        (r.sid,) for r in recs
    ]
    assert seeded.read(lambda tx: list(tx.scan(ApiKey, ["sid"]))) == []
    for bad in (("sid", "nope"), ("sid; DROP TABLE accounts",), ()):
        with pytest.raises(ValueError):
            seeded.read(lambda tx, bad=bad: list(tx.scan(IpRecord, bad)))
    assert seeded.read(lambda tx: tx.count(IpRecord)) == 4


def test_find_converts_values(seeded: Harness) -> None:
    seeded.write(insert_all(domain(1, secure=True), domain(2)))
    secure = seeded.read(lambda tx: tx.find(SipDomain, secure=True))
    assert [d.sid for d in secure] == [sid("SD", 1)]
    assert seeded.read(lambda tx: tx.count(SipDomain, date_created=T0)) == 2
    assert seeded.read(lambda tx: tx.count(SipDomain, date_created=T0 + timedelta(1))) == 0


def test_update_replaces_the_row(seeded: Harness) -> None:
    seeded.write(insert_all(record(1), record(2)))
    changed = record(1, friendly_name=None, date_updated=T0 + timedelta(hours=1))
    seeded.write(lambda tx: tx.update(changed))
    assert seeded.read(lambda tx: tx.find(IpRecord)) == [changed, record(2)]


def test_update_acl_mapping_is_keyed_by_domain_and_list(seeded: Harness) -> None:
    lst, d1, d2 = acl(1), domain(1), domain(2)
    m1 = AclMapping(lst.sid, TOP.sid, d1.sid, T0, T0)
    m2 = AclMapping(lst.sid, TOP.sid, d2.sid, T0, T0)
    seeded.write(insert_all(lst, d1, d2, m1, m2))
    later = replace(m2, date_updated=T0 + timedelta(days=1))
    seeded.write(lambda tx: tx.update(later))
    assert seeded.read(lambda tx: tx.find(AclMapping)) == [m1, later]
    assert seeded.read(lambda tx: tx.get(AclMapping, lst.sid, domain_sid=d2.sid)) == later


def test_delete(seeded: Harness) -> None:
    seeded.write(insert_all(record(1), record(2), record(3, SUB)))
    assert seeded.write(lambda tx: tx.delete(IpRecord, account_sid=TOP.sid, sid=sid("IL", 3))) == 0
    assert seeded.write(lambda tx: tx.delete(IpRecord, account_sid=TOP.sid)) == 2
    assert seeded.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 1))) == 0
    assert seeded.read(lambda tx: tx.find(IpRecord)) == [record(3, SUB)]


# -- integrity the schema guarantees, whatever the service checks ---------------------------------


@pytest.mark.parametrize(
    "duplicate",
    [
        pytest.param(lambda: record(1, friendly_name="again"), id="same-sid"),
        pytest.param(lambda: domain(2, domain_name="d1.sip.twilio.com"), id="same-domain-name"),
        pytest.param(lambda: mapping(2, record(1), domain(1)), id="second-mapping-of-a-record"),
        pytest.param(lambda: AclMapping(sid("AL", 1), TOP.sid, sid("SD", 1), T0, T0), id="acl"),
    ],
)
def test_unique_constraints(seeded: Harness, duplicate: Callable[[], Model]) -> None:
    seeded.write(
        insert_all(
            record(1),
            domain(1),
            acl(1),
            mapping(1, record(1), domain(1)),
            AclMapping(sid("AL", 1), TOP.sid, sid("SD", 1), T0, T0),
        )
    )
    before = seeded.read(lambda tx: [tx.count(m) for m in (IpRecord, SipDomain, SourceIpMapping)])
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its driver's error
        seeded.write(lambda tx: tx.insert(duplicate()))
    after = seeded.read(lambda tx: [tx.count(m) for m in (IpRecord, SipDomain, SourceIpMapping)])
    assert before == after


def test_no_dangling_references(seeded: Harness) -> None:
    rec, dom = record(1), domain(1)
    with pytest.raises(Exception):  # noqa: B017
        seeded.write(lambda tx: tx.insert(mapping(1, rec, dom)))
    seeded.write(insert_all(rec, dom, mapping(1, rec, dom)))
    with pytest.raises(Exception):  # noqa: B017
        seeded.write(lambda tx: tx.delete(IpRecord, sid=rec.sid))
    with pytest.raises(Exception):  # noqa: B017
        seeded.write(lambda tx: tx.delete(SipDomain, sid=dom.sid))
    with pytest.raises(Exception):  # noqa: B017
        seeded.write(lambda tx: tx.insert(record(2, account=replace(TOP, sid=sid("AC", 99)))))
    assert seeded.read(lambda tx: (tx.count(IpRecord), tx.count(SourceIpMapping))) == (1, 1)


# -- settings ----------------------------------------------------------------------------------


def test_settings(store: Harness) -> None:
    assert store.read(lambda tx: tx.get_setting("k")) is None
    store.write(lambda tx: tx.set_setting("k", "v1"))
    assert store.read(lambda tx: tx.get_setting("k")) == "v1"
    store.write(lambda tx: tx.set_setting("k", "v2"))
    store.write(lambda tx: tx.set_setting("other", ""))
    assert store.read(lambda tx: (tx.get_setting("k"), tx.get_setting("other"))) == ("v2", "")


# -- paging ------------------------------------------------------------------------------------


def page_of(
    store: Harness,
    size: int,
    page: int = 0,
    after: str | None = None,
    before: str | None = None,
    **where: Any,
) -> tuple[list[int], bool]:
    """(numbers of the records on the page, has_next)."""
    request = PageRequest(size, page, after_sid=after, before_sid=before)
    result = store.read(lambda tx: tx.page(IpRecord, request, **where))
    assert result.request == request
    return [int(r.sid[2:], 16) for r in result.items], result.has_next


@pytest.fixture
def seven(seeded: Harness) -> Harness:
    # Created in this order; SIDs deliberately not in creation order.
    seeded.write(insert_all(*(record(n) for n in (50, 40, 30, 20, 10, 60, 70))))
    seeded.write(insert_all(record(99, SUB)))
    return seeded


def test_page_forward_by_token(seven: Harness) -> None:
    assert page_of(seven, 3, account_sid=TOP.sid) == ([50, 40, 30], True)
    assert page_of(seven, 3, 1, after=sid("IL", 30), account_sid=TOP.sid) == ([20, 10, 60], True)
    assert page_of(seven, 3, 2, after=sid("IL", 60), account_sid=TOP.sid) == ([70], False)
    assert page_of(seven, 3, 3, after=sid("IL", 70), account_sid=TOP.sid) == ([], False)


def test_page_by_offset(seven: Harness) -> None:
    assert page_of(seven, 3, 1, account_sid=TOP.sid) == ([20, 10, 60], True)
    assert page_of(seven, 3, 2, account_sid=TOP.sid) == ([70], False)
    assert page_of(seven, 3, 5, account_sid=TOP.sid) == ([], False)
    assert page_of(seven, 7, 0, account_sid=TOP.sid) == ([50, 40, 30, 20, 10, 60, 70], False)
    assert page_of(seven, 1000, 0) == ([50, 40, 30, 20, 10, 60, 70, 99], False)


def test_page_exact_multiple_has_no_next(seven: Harness) -> None:
    seven.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 70)))
    assert page_of(seven, 3, 1, after=sid("IL", 30), account_sid=TOP.sid) == ([20, 10, 60], False)


def test_page_empty(seeded: Harness) -> None:
    assert page_of(seeded, 50) == ([], False)


def test_page_backward(seven: Harness) -> None:
    assert page_of(seven, 3, 1, before=sid("IL", 70), account_sid=TOP.sid) == (
        [20, 10, 60],
        True,
    )
    assert page_of(seven, 3, 0, before=sid("IL", 20), account_sid=TOP.sid) == (
        [50, 40, 30],
        True,
    )
    assert page_of(seven, 3, 0, before=sid("IL", 40), account_sid=TOP.sid) == ([50], True)


def test_page_where_isolates_accounts(seven: Harness) -> None:
    assert page_of(seven, 3, account_sid=SUB.sid) == ([99], False)
    # A token naming another account's item is not a place in this list.
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, after=sid("IL", 99), account_sid=TOP.sid)
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, before=sid("IL", 50), account_sid=SUB.sid)


def test_page_token_and_a_sid_filter(seven: Harness) -> None:
    # A list filtered by SID (a subaccount listing accounts sees only itself): a token
    # must name an item of that list, and its own place, not the filter's.
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, after=sid("IL", 50), sid=sid("IL", 40))
    assert page_of(seven, 1, 1, after=sid("IL", 40), sid=[sid("IL", 50), sid("IL", 40)]) == (
        [],
        False,
    )
    assert page_of(seven, 1, 1, after=sid("IL", 50), sid=[sid("IL", 50), sid("IL", 40)]) == (
        [40],
        False,
    )


def test_tombstones_belong_to_their_list(seven: Harness) -> None:
    seven.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 99)))  # SUB's only record
    assert page_of(seven, 3, 1, after=sid("IL", 99), account_sid=SUB.sid) == ([], False)
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, after=sid("IL", 99), account_sid=TOP.sid)


@pytest.mark.parametrize(
    "token_sid",
    ["IL" + "f" * 32, sid("SD", 1), sid("AC", 1), "", "x' OR '1'='1", "IL" + "0" * 31 + "%"],
)
def test_page_invalid_token(seven: Harness, token_sid: str) -> None:
    seven.write(insert_all(domain(1)))
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, after=token_sid)
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, before=token_sid)


def test_tombstoned_tokens_keep_their_place(seven: Harness) -> None:
    # The item a token names is deleted between pages: the walk resumes where it was.
    seven.write(lambda tx: tx.delete(IpRecord, sid=[sid("IL", 30), sid("IL", 20)]))
    assert page_of(seven, 3, 1, after=sid("IL", 30), account_sid=TOP.sid) == ([10, 60, 70], False)
    assert page_of(seven, 2, 1, before=sid("IL", 20), account_sid=TOP.sid) == ([50, 40], True)
    assert page_of(seven, 3, 1, after=sid("IL", 20), account_sid=TOP.sid) == ([10, 60, 70], False)


def test_tombstones_are_pruned_by_age(seven: Harness) -> None:
    # Issue 10, finding 10: every delete left a row forever.
    seven.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 30)))
    now = int(time.time())

    # Deleted just now: younger than any lifetime, so kept, and its token still works.
    assert seven.write(lambda tx: tx.prune_tombstones(now - 60)) == 0
    assert page_of(seven, 3, 1, after=sid("IL", 30), account_sid=TOP.sid) == ([20, 10, 60], True)
    # Once older than the cut-off it is gone, and a token naming it is refused.
    assert seven.write(lambda tx: tx.prune_tombstones(now + 2)) == 1
    assert seven.write(lambda tx: tx.prune_tombstones(now + 2)) == 0
    with pytest.raises(InvalidPageToken):
        page_of(seven, 3, 1, after=sid("IL", 30), account_sid=TOP.sid)
    # Pruning forgets only deleted items: the living keep their places.
    assert page_of(seven, 3, 1, after=sid("IL", 40), account_sid=TOP.sid) == ([20, 10, 60], True)


def test_positions_are_never_reused(seeded: Harness) -> None:
    seeded.write(insert_all(record(1), record(2)))
    seeded.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 2)))  # the newest
    seeded.write(insert_all(record(3)))
    assert page_of(seeded, 10, 1, after=sid("IL", 2)) == ([3], False)
    assert page_of(seeded, 10, 1, after=sid("IL", 1)) == ([3], False)
    assert page_of(seeded, 10, 0, before=sid("IL", 2)) == ([1], True)


def test_walk_is_stable_under_concurrent_changes(seeded: Harness) -> None:
    seeded.write(insert_all(*(record(n) for n in range(1, 21))))
    seen: list[int] = []
    after: str | None = None
    page, next_new = 0, 100
    while True:
        numbers, has_next = page_of(seeded, 4, page, after=after)
        seen.extend(numbers)
        if not has_next:
            break
        after = sid("IL", numbers[-1])
        page += 1
        # Between pages: delete the item just returned last and one not reached yet,
        # and create a new one.
        doomed = [numbers[-1], numbers[-1] + 2]
        seeded.write(lambda tx, d=doomed: tx.delete(IpRecord, sid=[sid("IL", n) for n in d]))
        seeded.write(insert_all(record(next_new)))
        next_new += 1
    survivors = seeded.read(lambda tx: {int(r.sid[2:], 16) for r in tx.find(IpRecord)})
    assert len(seen) == len(set(seen)), "an item was returned twice"
    # Everything that existed for the whole walk was returned.
    assert {n for n in survivors if n < 100} <= set(seen)
    # Nothing that was already deleted when its page was read came back.
    assert set(seen) <= set(range(1, 21)) | set(range(100, next_new))


# -- transactions ---------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_write_returns_the_functions_result(seeded: Harness) -> None:
    assert seeded.write(lambda tx: (tx.insert(record(1)), tx.count(IpRecord))[1]) == 1


def test_failed_write_changes_nothing(seeded: Harness) -> None:
    seeded.write(insert_all(record(1)))

    def half_done(tx: Tx) -> None:
        tx.insert(record(2))
        tx.update(record(1, friendly_name="changed"))
        tx.delete(IpRecord, sid=sid("IL", 1))
        tx.set_setting("k", "v")
        raise Boom

    with pytest.raises(Boom):
        seeded.write(half_done)
    assert seeded.read(lambda tx: (tx.find(IpRecord), tx.get_setting("k"))) == ([record(1)], None)


def test_service_errors_pass_through(seeded: Harness) -> None:
    def missing(tx: Tx) -> None:
        raise NotFound()

    with pytest.raises(NotFound):
        seeded.write(missing)
    with pytest.raises(NotFound):
        seeded.read(missing)


def test_writes_are_serialised(seeded: Harness) -> None:
    # Each write reads the count and inserts a row named after it: if two writes ever
    # saw the same state, two rows would get the same name.
    def next_record(tx: Tx) -> int:
        n = tx.count(IpRecord) + 1
        tx.insert(record(n))
        return n

    async def race() -> list[int]:
        return await asyncio.gather(*(seeded.store.write(next_record) for _ in range(100)))

    assert sorted(seeded.run(race())) == list(range(1, 101))
    assert seeded.read(lambda tx: tx.count(IpRecord)) == 100


def test_one_failing_job_does_not_affect_the_others(seeded: Harness) -> None:
    # Writes made together share a transaction (group commit): one that fails must
    # take none of the others down and leave nothing of its own behind.
    def insert(n: int) -> Callable[[Tx], int]:
        def run(tx: Tx) -> int:
            tx.insert(record(n))
            return n

        return run

    def fails(tx: Tx) -> None:
        tx.insert(record(3))
        tx.set_setting("failed", "yes")
        raise Boom

    def violates(tx: Tx) -> None:
        tx.insert(record(5))
        tx.insert(record(1))  # duplicate SID: the driver's integrity error

    async def scenario() -> list[Any]:
        jobs = [insert(1), insert(2), fails, insert(4), violates, insert(6)]
        return await asyncio.gather(
            *(seeded.store.write(job) for job in jobs), return_exceptions=True
        )

    results = seeded.run(scenario())
    assert results[0] == 1 and results[1] == 2 and results[3] == 4 and results[5] == 6
    assert isinstance(results[2], Boom)
    assert isinstance(results[4], Exception) and not isinstance(results[4], Boom)
    stored = seeded.read(lambda tx: [int(r.sid[2:], 16) for r in tx.find(IpRecord)])
    assert stored == [1, 2, 4, 6]
    assert seeded.read(lambda tx: tx.get_setting("failed")) is None


def test_a_write_waits_for_another_writer_without_stalling_reads(seeded: Harness) -> None:
    # Another process (here: a second store, on its own thread and loop) holds a write
    # transaction open. Our write waits for it; meanwhile our reads still answer.
    inside, release = threading.Event(), threading.Event()

    def hold(tx: Tx) -> None:
        tx.insert(record(1))
        inside.set()
        assert release.wait(10), "never released"

    def other_process() -> None:
        async def main() -> None:
            other = seeded.opener()
            try:
                await other.write(hold)
            finally:
                await other.close()

        asyncio.run(main())

    holder = threading.Thread(target=other_process)
    holder.start()
    try:
        assert inside.wait(10)

        async def scenario() -> int:
            ours = asyncio.ensure_future(seeded.store.write(lambda tx: tx.count(IpRecord)))
            for _ in range(3):  # the loop keeps turning while our write waits
                await asyncio.sleep(0)
            assert not ours.done()
            assert await seeded.store.get(IpRecord, sid("IL", 1)) is None
            release.set()
            return await ours

        assert seeded.run(scenario()) == 1  # it ran after the other commit, and saw it
    finally:
        release.set()
        holder.join(10)


def test_read_blocking_sees_committed_writes(seeded: Harness) -> None:
    seeded.write(insert_all(record(1)))
    assert seeded.store.read_blocking(lambda tx: tx.find(IpRecord)) == [record(1)]


def test_reads_see_a_snapshot_after_each_write(seeded: Harness) -> None:
    for n in range(1, 6):
        seeded.write(insert_all(record(n)))
        assert seeded.read(lambda tx: tx.count(IpRecord)) == n


def test_durable_across_reopen(seeded: Harness) -> None:
    rec, dom = record(1), domain(1)
    seeded.write(insert_all(rec, dom, mapping(1, rec, dom)))
    seeded.write(lambda tx: tx.set_setting("salt", "00ff"))
    seeded.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 404)))
    seeded.reopen()
    assert seeded.read(lambda tx: tx.find(SourceIpMapping)) == [mapping(1, rec, dom)]
    assert seeded.read(lambda tx: tx.get_setting("salt")) == "00ff"
    assert seeded.read(lambda tx: tx.get(Account, SUB.sid)) == SUB
    # Positions survive too: a token issued before the restart still works.
    seeded.write(insert_all(record(2)))
    seeded.write(lambda tx: tx.delete(SourceIpMapping, ip_record_sid=sid("IL", 1)))
    seeded.write(lambda tx: tx.delete(IpRecord, sid=sid("IL", 1)))
    seeded.reopen()
    assert page_of(seeded, 5, 1, after=sid("IL", 1)) == ([2], False)


# -- overlap of mapped networks across account families -------------------------------------


def test_overlaps_outside_family(seeded: Harness) -> None:
    other = replace(TOP, sid=sid("AC", 3), owner_account_sid=sid("AC", 3), friendly_name="other")
    # A subaccount's mapping belongs to its parent's family.
    rec = record(1, SUB, ip_address="203.0.113.0", cidr_prefix_length=24)
    dom = domain(1, SUB)
    seeded.write(insert_all(other, rec, dom, mapping(1, rec, dom)))

    def overlaps(address: str, length: int, family: str) -> bool:
        network = network_of(address, length)
        return seeded.read(lambda tx: tx.overlaps_outside_family(network, length, family))

    for address, length in [
        ("203.0.113.0", 24),  # the same network
        ("203.0.113.9", 32),  # inside it
        ("203.0.113.128", 25),
        ("203.0.112.0", 23),  # containing it
        ("203.0.0.0", 16),
        ("128.0.0.0", 1),
        ("0.0.0.0", 0),
    ]:
        assert overlaps(address, length, other.sid), (address, length)
        assert not overlaps(address, length, TOP.sid), (address, length)
    for address, length in [
        ("203.0.114.0", 24),  # beside it
        ("203.0.112.0", 24),
        ("203.0.114.0", 23),
        ("203.0.112.255", 32),
        ("203.0.114.0", 32),
        ("0.0.0.0", 1),
    ]:
        assert not overlaps(address, length, other.sid), (address, length)


def test_racing_overlapping_mappings_of_two_families_have_one_winner(seeded: Harness) -> None:
    # Two stores on one database: two writers (on PostgreSQL, as two nodes would be),
    # each checking the rule inside its write transaction before inserting.
    other = replace(TOP, sid=sid("AC", 3), owner_account_sid=sid("AC", 3), friendly_name="other")
    mine, theirs = domain(1), domain(2, other)
    seeded.write(insert_all(other, mine, theirs))
    second = seeded.opener()
    rounds = 12

    def claim(n: int, dom: SipDomain, address: str, length: int) -> Callable[[Tx], bool]:
        rec = record(n, ip_address=address, cidr_prefix_length=length, account_sid=dom.account_sid)
        family = dom.account_sid

        def run(tx: Tx) -> bool:
            tx.insert(rec)
            if tx.overlaps_outside_family(rec.network, length, family):
                raise NotFound()  # stands in for the service's Conflict: nothing is kept
            tx.insert(replace(mapping(n, rec, dom), prefix_len=length))
            return True

        return run

    async def race() -> list[Any]:
        jobs = []
        for i in range(rounds):
            jobs.append(seeded.store.write(claim(2 * i + 1, mine, f"10.{i}.0.0", 16)))
            jobs.append(second.write(claim(2 * i + 2, theirs, f"10.{i}.7.9", 32)))
        return await asyncio.gather(*jobs, return_exceptions=True)

    try:
        results = seeded.run(race())
    finally:
        seeded.run(second.close())
    assert all(r is True or isinstance(r, NotFound) for r in results), results
    for i in range(rounds):
        assert [r is True for r in results[2 * i : 2 * i + 2]].count(True) == 1, (i, results)
    kept = seeded.read(lambda tx: tx.find(SourceIpMapping))
    assert len(kept) == rounds
