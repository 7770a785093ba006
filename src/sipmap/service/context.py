"""What every use case needs: the store, the clock, SID minting, settings, the publisher."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..core import sids
from ..core.clock import Clock, system_clock
from ..core.errors import NotFound
from ..core.events import Event
from ..core.models import M
from ..core.sids import SidFactory, random_sid
from ..store.base import Store


class Publisher(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Apply committed changes (to recognition) before the write is acknowledged."""


class NullPublisher:
    def publish(self, events: Sequence[Event]) -> None:
        pass


@dataclass
class Context:
    store: Store
    clock: Clock = system_clock
    new_sid: SidFactory = random_sid
    sip_domain_suffix: str = "sip.twilio.com"
    min_mapping_prefix: int = 8
    # Failed logins allowed per minute (0: no limit); see core/throttle.py.
    login_failures_per_source: int = 10
    login_failures_per_account: int = 100
    publisher: Publisher = field(default_factory=NullPublisher)
    # The key credentials are hashed under (keyfile.py); kept outside the database.
    # The default, a new random key, suits a store used by this context alone.
    credential_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    async def get_owned(
        self, model: type[M], prefix: str, sid: str, account_sid: str | None = None, **where: str
    ) -> M:
        """The resource `sid` names if it is one of `prefix`'s, belongs to `account_sid`
        (if given) and matches `where`.

        Malformed, unknown and other accounts' SIDs are all the same NotFound.
        """
        canonical = sids.normalize(sid, prefix)
        found = None if canonical is None else await self.store.get(model, canonical, **where)
        if found is None:
            raise NotFound()
        # The owner is compared here rather than passed to the store as a filter: a
        # fetch of one's own resource, the common case, then asks the store by SID
        # alone, its cheapest path. Only models that belong to an account are asked
        # for with one.
        if account_sid is not None and found.account_sid != account_sid:  # type: ignore[union-attr]
            raise NotFound()
        return found
