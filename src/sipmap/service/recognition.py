"""Recognition for API callers: only results about their own domains are revealed."""

from __future__ import annotations

from ..core.errors import MissingParameter, NotFound
from ..recognize.recognizer import Recognition, Recognizer, not_recognized
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
            # Another account's domain: answer exactly as if nothing matched. (Not by
            # matched_by: a source-IP match under an unknown name would then differ.)
            return not_recognized(request_uri)
        return result
