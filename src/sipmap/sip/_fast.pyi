"""Type stub for the C extension sipmap.sip._fast."""

from collections.abc import Callable, Sequence
from typing import Any, final

# decide(data, address, uri, method) -> an index into the answers, or HANDLED (-1)
Decide = Callable[[bytes, tuple[Any, ...], str, str], int]
Slow = Callable[[bytes, tuple[Any, ...]], object]

@final
class FastPath:
    def __init__(
        self,
        answers: Sequence[tuple[tuple[bytes, bytes, bool], ...]],
        max_message: int,
        batch: int = 32,
    ) -> None: ...
    def respond(
        self, data: bytes, ip: str, port: int, decide: Decide, /
    ) -> list[tuple[bytes, tuple[str, int]]] | None: ...
    def pump(self, fd: int, decide: Decide, slow: Slow, /) -> tuple[int, int]: ...
