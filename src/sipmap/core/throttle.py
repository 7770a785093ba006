"""Failed-login throttling: token buckets per source address and per username, in bounded memory.

Each failed login takes a token from the bucket of its source address and from that of
the username it named; buckets refill at a steady rate up to their size. A login is
refused unheard (429) while either bucket is empty. Successful logins take nothing.

A source that has logged in successfully as a username is remembered as known for it,
and is not held back by that username's bucket: someone guessing one account's token from
many addresses cannot lock its own clients out. Its own address's bucket still applies.

Memory is bounded: each table keeps at most `max_entries` keys and forgets the least
recently used first, so a client rotating usernames or addresses cannot grow it. IPv6
sources are counted per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

MAX_ENTRIES = 50_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class Buckets:
    """Token buckets by key: `size` failures at once, refilled at `size` per `period` s."""

    def __init__(self, size: int, period: float, clock: Callable[[], float], max_entries: int):
        self.size = size
        self.rate = size / period
        self._clock = clock
        self._max = max_entries
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(self.size, bucket.tokens + (now - bucket.stamp) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again; 0 if it may now."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        level = self._level(bucket, self._clock())
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def take(self, key: str) -> bool:
        """Count a failure; True if this one emptied the bucket."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        level = self.size if bucket is None else self._level(bucket, now)
        self._buckets[key] = _Bucket(max(level - 1, 0.0), now)  # most recently used last
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return level >= 1 > level - 1

    def __len__(self) -> int:
        return len(self._buckets)


def source_key(source: str | None) -> str:
    """The unit a source address is counted in: the address, or its /64 for IPv6."""
    if not source:
        return "?"
    try:
        address = ip_address(source)
    except ValueError:
        return source[:64]
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return f"{IPv6Address(int(address) >> 64 << 64)}/64"
    return str(address)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a login may be tried now, and if not, for how long it is held back."""

    retry_after: float  # seconds; 0 means go ahead

    @property
    def allowed(self) -> bool:
        return self.retry_after <= 0

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after))


class LoginThrottle:
    def __init__(
        self,
        per_source: int,
        per_username: int,
        period: float = 60.0,
        clock: Callable[[], float] | None = None,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        tick = clock or time.monotonic
        self.enabled = per_source > 0 or per_username > 0
        self.sources = Buckets(max(per_source, 1), period, tick, max_entries)
        self.usernames = Buckets(max(per_username, 1), period, tick, max_entries)
        self._limit_sources = per_source > 0
        self._limit_usernames = per_username > 0
        # (username, source key) pairs that have logged in: most recently used last.
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max = max_entries

    def check(self, source: str | None, username: str) -> Verdict:
        if not self.enabled:
            return Verdict(0.0)
        where = source_key(source)
        wait = self.sources.wait(where) if self._limit_sources else 0.0
        if self._limit_usernames and (username, where) not in self._known:
            wait = max(wait, self.usernames.wait(username))
        return Verdict(wait)

    def failed(self, source: str | None, username: str) -> bool:
        """Count a failure; True if it is the one that starts holding the source or
        the username back (worth one log line)."""
        if not self.enabled:
            return False
        where = source_key(source)
        emptied = self._limit_sources and self.sources.take(where)
        return (self._limit_usernames and self.usernames.take(username)) or emptied

    def succeeded(self, source: str | None, username: str) -> None:
        if not self.enabled:
            return
        pair = (username, source_key(source))
        self._known.pop(pair, None)
        self._known[pair] = None
        if len(self._known) > self._max:
            self._known.popitem(last=False)
