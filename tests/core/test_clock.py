"""The system clock: whole seconds, UTC, and the current second."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from sipmap.core import clock


def test_system_clock_is_the_current_whole_second_in_utc() -> None:
    before = int(time.time())
    now = clock.system_clock()
    after = int(time.time())
    assert now.tzinfo is UTC and now.microsecond == 0
    assert before <= now.timestamp() <= after


def test_system_clock_moves_with_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = [1_780_000_000.9]
    monkeypatch.setattr(clock, "time", SimpleNamespace(time=lambda: fake[0]))
    first = clock.system_clock()
    assert first == datetime.fromtimestamp(1_780_000_000, UTC)
    fake[0] = 1_780_000_000.99
    assert clock.system_clock() is first  # the same second: the same value
    fake[0] = 1_780_000_001.0
    assert clock.system_clock() == datetime.fromtimestamp(1_780_000_001, UTC)
    fake[0] = 1_779_999_999.5  # the wall clock stepped back
    assert clock.system_clock() == datetime.fromtimestamp(1_779_999_999, UTC)
