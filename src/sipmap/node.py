"""One node: the store `--db` names, the service over it, and how its recogniser follows writes.

On SQLite the node is the only writer, so the service hands each committed change to
the recogniser itself before acknowledging the write. On PostgreSQL other nodes write
too, so the recogniser follows the database's change feed instead (store/feed.py) —
this node's writes included: the feed is its only source of changes there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.events import AccountStatusChanged, CredentialsChanged, Event
from .recognize.recognizer import Recognizer, read_state
from .service import Context, Service, open_service
from .store.base import Store, Tx
from .store.feed import ChangeFeed, Publish, Rebuild
from .store.open import is_postgres, open_store


@dataclass
class Node:
    store: Store
    service: Service
    feed: ChangeFeed | None  # on PostgreSQL

    async def load(self) -> None:
        """Fill the recogniser (off the loop) and, on PostgreSQL, start following."""
        if self.feed is not None:
            await self.feed.start()
        else:
            await asyncio.to_thread(self.service.recognizer.load, self.store)

    async def close(self) -> None:
        await self.store.close()  # stops the feed first


def rebuilder(recognizer: Recognizer, forget: Callable[[], None]) -> Rebuild:
    """The feed's full rebuild for `recognizer`: build a fresh state here, in the feed's
    thread, from the rows as plain tuples (as at start-up); swap it in on the loop. The
    log entries skipped may have revoked credentials: `forget` the verified ones."""

    def rebuild(tx: Tx) -> Callable[[], None]:
        state = read_state(tx)

        def swap() -> None:
            recognizer.adopt(state)
            forget()

        return swap

    return rebuild


def follower(recognizer: Recognizer, forget: Callable[[], None]) -> Publish:
    """What the feed's events go to: the recogniser, and for a credential or an
    account's status changed on any node, `forget` the credentials verified here."""

    def publish(events: Sequence[Event]) -> None:
        recognizer.publish(events)
        if any(type(e) in _REVOKING for e in events):
            forget()

    return publish


_REVOKING = (CredentialsChanged, AccountStatusChanged)


def open_node(db: str | Path, *, db_timeout: float | None = None, **options: Any) -> Node:
    """A node over `db` (load it before use); `options` go to the service's Context."""
    return node_over(open_store(db, timeout=db_timeout), **options)


def node_over(store: Store, **options: Any) -> Node:
    """The service over an opened store, and how its recogniser follows the writes."""
    if not is_postgres(getattr(store, "dsn", "")):
        return Node(store, open_service(store, **options), None)
    from .store.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    recognizer = Recognizer()
    service = Service(Context(store, **options), recognizer)  # no in-process publishing
    forget = service.accounts.forget_credentials
    return Node(
        store, service, store.follow(follower(recognizer, forget), rebuilder(recognizer, forget))
    )
