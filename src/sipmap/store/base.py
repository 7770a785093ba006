"""The store interface every backend satisfies.

The service hands the store a function of a transaction (`Tx`); the store runs it
atomically — `write` in one serialised write transaction, `read` against one
consistent snapshot — so the rules the function checks hold when it commits, even
under racing requests. Tx methods are synchronous and speak in models only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..core.models import M, Model
from ..core.paging import Page, PageRequest

R = TypeVar("R")


class Tx(Protocol):
    def insert(self, obj: Model) -> None: ...

    def update(self, obj: Model) -> None:
        """Replace the stored row with the same key (sid, or domain_sid+sid for AclMapping)."""

    def get(self, model: type[M], sid: str, **where: Any) -> M | None: ...

    def find(self, model: type[M], **where: Any) -> list[M]:
        """Rows matching every `field=value` (a list/tuple value means "any of"), oldest first."""

    def count(self, model: type[Model], **where: Any) -> int: ...

    def delete(self, model: type[Model], **where: Any) -> int:
        """Delete matching rows, remembering their place so page tokens naming them still work."""

    def page(self, model: type[M], request: PageRequest, **where: Any) -> Page[M]:
        """One page in creation order; raises InvalidPageToken for a token naming no item."""

    def prune_tombstones(self, deleted_before: int) -> int:
        """Forget where items deleted before `deleted_before` (seconds since the epoch)
        stood; page tokens naming them become invalid. Returns how many were forgotten."""

    def overlaps_outside_family(self, network: int, prefix_len: int, family_sid: str) -> bool:
        """Whether a source IP mapping of an account outside `family_sid`'s family (the
        top-level account and its subaccounts) has a network equal to, containing or
        inside `network`/`prefix_len`. Indexed: a range and ≤ 33 point lookups."""

    def get_setting(self, key: str) -> str | None: ...

    def set_setting(self, key: str, value: str) -> None: ...


class Store(Protocol):
    async def read(self, fn: Callable[[Tx], R]) -> R: ...

    async def write(self, fn: Callable[[Tx], R]) -> R:
        """Run fn in a write transaction and commit before returning its result.

        fn may be run more than once (a store may retry it, after rolling back): it
        must be a function of the transaction, with no effects outside it.
        """

    async def get(self, model: type[M], sid: str, **where: Any) -> M | None:
        """One row by SID: a single statement, so it needs no explicit snapshot."""

    def read_blocking(self, fn: Callable[[Tx], R]) -> R:
        """Run a read on a private connection in the calling thread (for bulk loads off the loop)."""

    async def close(self) -> None: ...
