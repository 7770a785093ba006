"""Use cases: validate → apply rules → one store transaction → publish the change.

The HTTP API and the CLI both call these; neither touches the store directly.
"""

from __future__ import annotations

import time
from typing import Any

from ..recognize.recognizer import Recognizer
from ..store.base import Store
from .accounts import AccountService, Principal
from .acls import AclService
from .context import Context, Publisher
from .domains import DomainService
from .recognition import RecognitionService
from .voice import VoiceService


class Service:
    def __init__(self, ctx: Context, recognizer: Recognizer | None = None) -> None:
        self.ctx = ctx
        self.accounts = AccountService(ctx)
        self.domains = DomainService(ctx)
        self.voice = VoiceService(ctx)
        self.acls = AclService(ctx)
        self.recognizer = recognizer if recognizer is not None else Recognizer()
        self.recognition = RecognitionService(self.recognizer, self.accounts)

    async def prune_tombstones(self, token_lifetime: float, now: float | None = None) -> int:
        """Forget deleted items' places once no page token can name them.

        A page token names an item that existed when it was issued and is honoured for
        `token_lifetime` seconds after; so a deletion older than that is needed by none.
        """
        before = int((time.time() if now is None else now) - token_lifetime)
        return await self.ctx.store.write(lambda tx: tx.prune_tombstones(before))


def open_service(store: Store, **options: Any) -> Service:
    """A service whose recognizer sees every write it acknowledges (load it before use)."""
    recognizer = Recognizer()
    return Service(Context(store, publisher=recognizer, **options), recognizer)


__all__ = ["Context", "Principal", "Publisher", "Service", "open_service"]
