"""Recognition for API callers: only results about their own domains are revealed."""

from __future__ import annotations

from ..core.errors import MissingParameter, NotFound
from ..recognize.recognizer import NO_SOURCE_MAPPING, UNKNOWN_DOMAIN, Recognition, Recognizer
from .accounts import AccountService, Principal


class RecognitionService:
    def __init__(self, recognizer: Recognizer, accounts: AccountService) -> None:
        self.recognizer = recognizer
        self.accounts = accounts

    async def recognize_for(
        self, principal: Principal, source_ip: str | None, request_uri: str | None
    ) -> Recognition:
        if not source_ip:
            raise MissingParameter("source_ip")
        result = self.recognizer.recognize(source_ip, request_uri)
        if result.account_sid is None or result.account_sid == principal.account_sid:
            return result
        try:
            await self.accounts.visible_account(principal, result.account_sid)
        except NotFound:
            # Another account's domain: answer exactly as if nothing matched.
            hidden = UNKNOWN_DOMAIN if result.matched_by == "request_uri" else NO_SOURCE_MAPPING
            return Recognition(False, False, hidden)
        return result
