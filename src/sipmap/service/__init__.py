"""Use cases: validate → apply rules → one store transaction → publish the change.

The HTTP API and the CLI both call these; neither touches the store directly.
"""

from __future__ import annotations

from .accounts import AccountService, Principal
from .acls import AclService
from .context import Context, Publisher
from .domains import DomainService
from .voice import VoiceService


class Service:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.accounts = AccountService(ctx)
        self.domains = DomainService(ctx)
        self.voice = VoiceService(ctx)
        self.acls = AclService(ctx)


__all__ = ["Context", "Principal", "Publisher", "Service"]
