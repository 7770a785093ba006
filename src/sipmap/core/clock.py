"""The clock, injected so tests can be deterministic. Times are whole seconds, UTC."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


_last: tuple[int, datetime] = (0, datetime.fromtimestamp(0, UTC))


def system_clock() -> datetime:
    # Both wire date formats have one-second resolution; storing more would make
    # "what you wrote is what you read" false.
    global _last
    second = int(time.time())
    last = _last
    if last[0] != second:  # a new second: a new (immutable) value, shared until the next
        last = _last = (second, datetime.fromtimestamp(second, UTC))
    return last[1]


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int = 1) -> None:
        self.now += timedelta(seconds=seconds)
