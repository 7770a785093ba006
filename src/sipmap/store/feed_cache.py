"""Rows by SID on PostgreSQL, kept exact by the change feed.

The feed hands every committed change to a cached table here, in log order, with the
row as it stood after the change (or None when deleted); the entry for that SID is
replaced by it. A miss reads the database and files the row — unless the feed may
have changed that row while the read was in flight. So at every log position the
node has applied, every entry is the row as of that position (or newer: a read can
see a commit the feed has not reached yet, which the feed then brings again).

The race. A read begins when the node has applied position `a` (`position`), so it
sees every change up to `a`, maybe more. If the feed changed the row after `a` while
the read was in flight, the entry the feed made is newer than the read, and the fill
leaves it be (it only fills an absent SID). If that entry was evicted before the read
returned, nothing would show it, so every eviction raises `_floor` to the position
of what it threw away, and a fill begun below the floor is dropped. A full reload
(the log trimmed past this node) forgets everything in the same way.

Whether the cache may be *served* from is not decided here: a node serves it only
while its lease holds and it has caught up (leases.py), which is what makes a write
acknowledged by another node visible here at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..core.models import IpAccessControlList, IpAddress, IpRecord, SipDomain, SourceIpMapping
from .schema import COLUMNS, TABLES, TEXT_COLUMNS, from_row

MAX_CACHED_ROWS = 10_000

# The tables whose every change the feed carries, in full (migrations 0004, 0006), and
# whose rows have one SID each. Accounts (only their status is logged), API keys (not
# logged) and ACL mappings (keyed by domain and list) are always read from the database.
CACHED: dict[str, type[Any]] = {
    TABLES[model]: model
    for model in (IpRecord, SourceIpMapping, SipDomain, IpAccessControlList, IpAddress)
}
_CACHED_MODELS = frozenset(CACHED.values())

# (model, SID, the row after the change or None if deleted)
Change = tuple[type[Any], str, Any]
MISSING: Any = object()


def decode_change(table: str, deleted: bool, row: dict[str, Any]) -> Change | None:
    """A log entry as a cache change; None for a table that is not cached."""
    model = CACHED.get(table)
    if model is None:
        return None
    if deleted:
        return (model, row["sid"], None)
    return (model, row["sid"], from_row(model, tuple(row[column] for column in COLUMNS[model])))


def cacheable(model: type[Any], where: dict[str, Any]) -> bool:
    """Whether `get(model, sid, **where)` can be answered from a row cached by SID: the
    model is cached and every filter is a text column compared for equality, which
    Python's == does exactly as SQL's = (see `matches`)."""
    if model not in _CACHED_MODELS:
        return False
    text = TEXT_COLUMNS[model]
    return all(name in text and type(value) is str for name, value in where.items())


def matches(row: Any, where: dict[str, Any]) -> Any:
    """`row` if it passes every filter of `where`, else None."""
    if row is None:
        return None
    for name, value in where.items():
        if getattr(row, name) != value:
            return None
    return row


class FeedCache:
    """Used on the event loop only: the feed's changes arrive there (`apply`), and so
    do reads' fills."""

    def __init__(self, max_rows: int = MAX_CACHED_ROWS) -> None:
        self._max = max_rows
        # (model, SID) -> (the position it is known as of, the row or None: no such row)
        self._rows: OrderedDict[tuple[type[Any], str], tuple[int, Any]] = OrderedDict()
        self._floor = 0  # fills of reads begun below this position are dropped
        self.position = -1  # the last log position applied
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, model: type[Any], sid: str) -> Any:
        """The cached row (None: known not to exist), or MISSING."""
        key = (model, sid)
        entry = self._rows.get(key)
        if entry is None:
            self.misses += 1
            return MISSING
        self._rows.move_to_end(key)
        self.hits += 1
        return entry[1]

    def fill(self, model: type[Any], sid: str, row: Any, since: int) -> None:
        """File a row read from the database by a read begun at position `since`."""
        key = (model, sid)
        if since < self._floor or key in self._rows:
            return  # the feed may have changed it during the read: its entry wins
        self._rows[key] = (since, row)
        self._evict()

    def apply(self, changes: Sequence[Change] | None, position: int) -> None:
        """The feed applied everything up to `position`, including `changes`; None:
        a full reload, after which nothing cached before can be trusted."""
        if changes is None:
            self._rows.clear()
            self._floor = position
        else:
            rows = self._rows
            for model, sid, row in changes:
                key = (model, sid)
                rows[key] = (position, row)
                rows.move_to_end(key)
            self._evict()
        self.position = position

    def _evict(self) -> None:
        rows = self._rows
        while len(rows) > self._max:
            _, (known_as_of, _) = rows.popitem(last=False)
            if known_as_of > self._floor:
                self._floor = known_as_of
