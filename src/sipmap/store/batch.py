"""What both stores' group commit shares: the batch bound, and handing each write's
outcome back to the event loop that waits for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

MAX_BATCH = 256  # writes per transaction: bounds how long one batch takes

# (the waiting caller's future, the write function's result, or the error it raised)
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def settle(outcomes: Iterable[Outcome]) -> None:
    """Resolve each future (call on the futures' loop); a caller that stopped waiting
    (cancelled) is skipped."""
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def dispatch(outcomes: Iterable[Outcome]) -> None:
    """settle() the outcomes on their futures' own loops, from any thread: one wake-up
    per loop, not per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, group in by_loop.items():
        # RuntimeError: that loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, group)
