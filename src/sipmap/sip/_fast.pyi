"""Type stub for the C extension sipmap.sip._fast."""

from collections.abc import Callable, Sequence
from typing import Any, Protocol, final

class _Versioned(Protocol):
    generation: int

# decide(data, address, uri, method) -> an answer's index or HANDLED (-1), alone or
# with the ids of the counters it incremented when the decision may be cached
Decide = Callable[[bytes, tuple[Any, ...], str, str], int | tuple[int, tuple[int, ...]]]
Slow = Callable[[bytes, tuple[Any, ...]], object]
Unsent = Callable[[int], object]

@final
class FastPath:
    def __init__(
        self,
        answers: Sequence[tuple[tuple[bytes, bytes, bool], ...]],
        max_message: int,
        batch: int = 32,
        recognizer: _Versioned | None = None,
        bounds: Sequence[float] | None = None,
    ) -> None: ...
    def respond(
        self, data: bytes, ip: str, port: int, decide: Decide, /
    ) -> list[tuple[bytes, tuple[str, int]]] | None: ...
    def pump(
        self, fd: int, decide: Decide, slow: Slow, unsent: Unsent | None = None, /
    ) -> tuple[int, int]: ...
    def take(self) -> tuple[list[tuple[int, int]], list[int], float]: ...
