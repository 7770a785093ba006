"""One node: the store `--db` names, the service over it, and how its recogniser follows writes.

On SQLite the node is the only writer, so the service hands each committed change to
the recogniser itself before acknowledging the write. On PostgreSQL other nodes write
too, so the recogniser follows the database's change feed instead (store/feed.py) —
this node's writes included: the feed is its only source of changes there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .recognize.recognizer import Recognizer, read_state
from .service import Context, Service, open_service
from .store.base import Store, Tx
from .store.feed import ChangeFeed, Rebuild
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


def rebuilder(recognizer: Recognizer) -> Rebuild:
    """The feed's full rebuild for `recognizer`: build a fresh state here, in the feed's
    thread, from the rows as plain tuples (as at start-up); swap it in on the loop."""

    def rebuild(tx: Tx) -> Callable[[], None]:
        state = read_state(tx)
        return lambda: recognizer.adopt(state)

    return rebuild


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
    return Node(store, service, store.follow(recognizer.publish, rebuilder(recognizer)))
