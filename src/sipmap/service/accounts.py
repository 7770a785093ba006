"""Accounts, subaccounts, API keys and authentication."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

from msgspec.structs import replace

from ..core import sids, validation
from ..core.errors import (
    AccountNotActive,
    DatabaseUnavailable,
    InvalidParameter,
    LimitExceeded,
    NotFound,
    ServiceError,
)
from ..core.events import AccountStatusChanged
from ..core.models import Account, ApiKey
from ..core.paging import Page, PageRequest
from ..core.throttle import LoginThrottle
from ..store.base import Tx
from .context import Context
from .credentials import CredentialHasher

log = logging.getLogger("sipmap.auth")

MAX_SUBACCOUNTS = 1000
# How long a verified credential is trusted without looking at the store again.
# Revocations made through this process clear the cache at once; the TTL bounds
# how long another node sharing the database may still accept a revoked one.
CREDENTIAL_CACHE_SECONDS = 5.0
ACCOUNT_STATUSES = ("active", "suspended", "closed")
NO_ACCOUNT = "AC" + "0" * 32  # looked up in place of a missing key's account
NO_KEY = "SK" + "0" * 32


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the account its credentials belong to."""

    account_sid: str
    is_subaccount: bool
    via_api_key: bool = False
    owner_account_sid: str | None = None  # the top-level account of a subaccount

    @property
    def tenant(self) -> str:
        """The account family the request is accounted to (fair sharing, api/limits.py)."""
        return self.owner_account_sid or self.account_sid


class AuthenticationFailed(ServiceError):
    status = 401
    code = 20003

    def __init__(self, detail: str) -> None:
        super().__init__(f"Authentication Error - {detail}")


class TooManyFailedLogins(ServiceError):
    status = 429
    code = 20429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; retry after {retry_after} seconds")
        self.retry_after = retry_after


class KeyForbidden(ServiceError):
    # What Twilio answers a standard API key there (twilio-python issue 259).
    status = 401
    code = 20003
    message = "Authentication Error - API keys cannot access Accounts or Keys resources"


class SubaccountForbidden(ServiceError):
    status = 403
    code = 20403
    message = "Subaccounts cannot create subaccounts"


def check_bootstrap_environment(sid: str | None, token: str | None) -> None:
    """Raise ValueError if the bootstrap credentials from the environment are unusable."""
    if sid is not None and sids.normalize(sid, sids.ACCOUNT) is None:
        raise ValueError("SIPMAP_ACCOUNT_SID must be AC followed by 32 hex digits")
    if (sid is None) != (token is None):
        raise ValueError("set both SIPMAP_ACCOUNT_SID and SIPMAP_AUTH_TOKEN, or neither")


def _username_key(username: str) -> str:
    """What failed logins are counted against: the canonical SID, or the text, cut short."""
    for prefix in (sids.ACCOUNT, sids.API_KEY):
        if (sid := sids.normalize(username, prefix)) is not None:
            return sid
    return username[:64]


def _digest(credentials: bytes) -> bytes:
    """What the cache of verified credentials is keyed by, so that it holds no secret.

    BLAKE2b (CPython's own): on every authenticated request, and OpenSSL's SHA-256 looks
    its algorithm up anew on each call (~3k instructions, 4% of a cached fetch)."""
    return hashlib.blake2b(credentials, digest_size=32).digest()


def new_secret() -> str:
    return secrets.token_hex(16)


class AccountService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._hasher = CredentialHasher(ctx.store, ctx.credential_key)
        self.throttle = LoginThrottle(
            ctx.login_failures_per_source,
            ctx.login_failures_per_account,
            clock=lambda: time.monotonic(),  # this module's clock, as the cache's
        )
        # _digest(credentials) -> (principal, expiry on the monotonic clock)
        self._verified: dict[bytes, tuple[Principal, float]] = {}
        self._stand_in: str | None = None  # an API key SID looked up beside a missing one

    # -- credentials ----------------------------------------------------------

    async def hash_secret(self, secret: str) -> str:
        return await self._hasher.hash(secret)

    def recall(self, credentials: bytes) -> Principal | None:
        """Whom `credentials` (an encoding of one username and password, such as an
        Authorization header) were verified as in the last few seconds, if anyone.

        Lets a caller skip decoding them; only a digest of them is kept.
        """
        cached = self._verified.get(_digest(credentials))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    async def authenticate(
        self,
        username: str,
        password: str,
        *,
        credentials: bytes | None = None,
        source: str | None = None,
    ) -> Principal:
        """Verify a username (account or API key SID) and password (token or secret),
        from the client address `source`.

        `credentials`, if given, is what `recall` will be asked with for the same pair.
        Failures are throttled per source and per username (core/throttle.py).
        """
        if credentials is None:
            credentials = f"{username}\0{password}".encode("utf-8", "surrogatepass")
        cached = self.recall(credentials)
        if cached is not None:
            return cached
        who = _username_key(username)
        verdict = self.throttle.check(source, who)
        if not verdict.allowed:
            raise TooManyFailedLogins(verdict.retry_after_seconds)
        try:
            principal = await self._verify(username, password)
        except DatabaseUnavailable:
            # While the database is down nothing can be revoked, and recognition still
            # answers from memory: credentials verified before the outage still pass.
            stale = self._verified.get(_digest(credentials))
            if stale is None:
                raise
            return stale[0]
        except AuthenticationFailed:
            # The username is the caller's text: repr'd and cut short, never the secret.
            where = source or "an unknown address"
            log.warning("failed login as %r from %s", who, where)
            if self.throttle.failed(source, who):
                log.warning("holding back failed logins as %r or from %s", who, where)
            raise
        self.throttle.succeeded(source, who)
        if len(self._verified) > 10_000:
            self._verified.clear()
        expires = time.monotonic() + CREDENTIAL_CACHE_SECONDS
        self._verified[_digest(credentials)] = (principal, expires)
        return principal

    def forget_credentials(self) -> None:
        self._verified.clear()

    async def _verify(self, username: str, password: str) -> Principal:
        digest = await self.hash_secret(password)
        if (account_sid := sids.normalize(username, sids.ACCOUNT)) is not None:
            account = await self.ctx.store.get(Account, account_sid)
            stored = account.auth_token_hash if account else None
        elif (key_sid := sids.normalize(username, sids.API_KEY)) is not None:

            def key_and_account(tx: Tx) -> tuple[ApiKey | None, Account | None]:
                # Equal work whether or not the SID names a key (issue 10, finding 8):
                # one statement reads it and a stand-in key, and one reads the account
                # of the key, or of the stand-in; a missing key also decodes one row less
                # (~5 µs of ~200 µs a request takes).
                if self._stand_in is None:
                    first = tx.page(ApiKey, PageRequest(1)).items
                    self._stand_in = first[0].sid if first else NO_KEY
                found = tx.find(ApiKey, sid=[key_sid, self._stand_in])
                key = next((k for k in found if k.sid == key_sid), None)
                proxy = key or (found[0] if found else None)
                if proxy is None:
                    self._stand_in = None  # deleted: pick another next time
                return key, tx.get(Account, proxy.account_sid if proxy else NO_ACCOUNT)

            key, account = await self.ctx.store.read(key_and_account)
            stored = key.secret_hash if key else None
        else:
            raise AuthenticationFailed("invalid username")
        # Compare even when nothing is stored, so timing does not tell which SIDs exist.
        if not hmac.compare_digest(digest, stored or "0" * 64) or account is None:
            raise AuthenticationFailed("invalid username")
        if account.status != "active":
            raise AccountNotActive()
        return Principal(
            account.sid,
            account.owner_account_sid != account.sid,
            via_api_key=account_sid is None,
            owner_account_sid=account.owner_account_sid,
        )

    # -- accounts ---------------------------------------------------------------

    @staticmethod
    def check_may_manage(principal: Principal) -> None:
        """Accounts and keys are managed with an account's own credentials, as at Twilio:
        otherwise a leaked key could mint replacements for itself and outlive revocation."""
        if principal.via_api_key:
            raise KeyForbidden()

    async def ensure_bootstrap(
        self, sid: str | None, token: str | None, friendly_name: str = "sipmap"
    ) -> tuple[Account, str | None]:
        """The operator's top-level account: from the given credentials, else created once.

        Returns the account and, when it was generated now, its token (to print once).
        """
        check_bootstrap_environment(sid, token)
        given_token = token
        new_token = token or new_secret()
        token_hash = await self.hash_secret(new_token)
        now = self.ctx.clock()
        wanted = sids.normalize(sid, sids.ACCOUNT) if sid else None

        def run(tx: Tx) -> tuple[Account, bool]:
            if wanted is not None:
                existing = tx.get(Account, wanted)
                if existing is not None:
                    if existing.auth_token_hash != token_hash:  # the environment is authoritative
                        existing = replace(existing, auth_token_hash=token_hash, date_updated=now)
                        tx.update(existing)
                    return existing, False
                new_sid = wanted
            else:
                first = tx.find(Account, status=list(ACCOUNT_STATUSES))
                top = [a for a in first if a.owner_account_sid == a.sid]
                if top:
                    return top[0], False
                new_sid = self.ctx.new_sid(sids.ACCOUNT)
            account = Account(new_sid, new_sid, friendly_name, "active", token_hash, now, now)
            tx.insert(account)
            return account, True

        account, created = await self.ctx.store.write(run)
        self.forget_credentials()
        return account, (new_token if created and given_token is None else None)

    async def create_account(
        self, principal: Principal | None, friendly_name: str | None
    ) -> tuple[Account, str]:
        """A subaccount of the principal's account, or a top-level account (operator CLI)."""
        if principal is not None and principal.is_subaccount:
            raise SubaccountForbidden()
        name = validation.text("friendly_name", friendly_name or "", max_length=64)
        token = new_secret()
        token_hash = await self.hash_secret(token)
        now = self.ctx.clock()
        sid = self.ctx.new_sid(sids.ACCOUNT)
        owner = principal.account_sid if principal else sid

        def run(tx: Tx) -> Account:
            if (
                principal is not None
                and tx.count(Account, owner_account_sid=owner) > MAX_SUBACCOUNTS
            ):
                raise LimitExceeded(f"An account can have at most {MAX_SUBACCOUNTS} subaccounts")
            label = name or f"SubAccount Created at {now:%Y-%m-%d %I:%M %p}"
            account = Account(sid, owner, label, "active", token_hash, now, now)
            tx.insert(account)
            return account

        return await self.ctx.store.write(run), token

    async def get_account(self, account_sid: str) -> Account:
        """Any account, for the operator's CLI (no principal: whoever holds the database)."""
        return await self.ctx.get_owned(Account, sids.ACCOUNT, account_sid)

    async def all_accounts(self) -> list[Account]:
        """Every account, oldest first, for the operator's CLI."""
        return await self.ctx.store.read(lambda tx: tx.find(Account))

    async def visible_account(self, principal: Principal, account_sid: str) -> Account:
        """The account at a 2010 path, if the principal may act on it; else NotFound."""
        account = await self.get_account(account_sid)
        if principal.account_sid not in (account.sid, account.owner_account_sid):
            raise NotFound()
        return account

    async def list_accounts(
        self,
        principal: Principal,
        request: PageRequest,
        friendly_name: str | None = None,
        status: str | None = None,
    ) -> Page[Account]:
        where: dict[str, object] = {}
        if principal.is_subaccount:
            where["sid"] = principal.account_sid
        else:
            where["owner_account_sid"] = principal.account_sid
        if friendly_name is not None:
            where["friendly_name"] = friendly_name
        if status is not None:
            where["status"] = self._status(status)
        return await self.ctx.store.read(lambda tx: tx.page(Account, request, **where))

    @staticmethod
    def _status(value: str) -> str:
        if value not in ACCOUNT_STATUSES:
            raise InvalidParameter("status", "must be active, suspended or closed")
        return value

    async def update_account(
        self,
        principal: Principal,
        account_sid: str,
        friendly_name: str | None,
        status: str | None,
    ) -> Account:
        account = await self.visible_account(principal, account_sid)
        changes: dict[str, object] = {}
        if friendly_name is not None:
            changes["friendly_name"] = validation.text(
                "friendly_name", friendly_name, max_length=64
            )
        if status is not None:
            status = self._status(status)
            if account.status == "closed" and status != "closed":
                raise InvalidParameter("status", "a closed account cannot be reopened")
            if account.sid == principal.account_sid and status != "active":
                # Twilio's rule too: an account cannot suspend or close itself.
                raise InvalidParameter("status", "an account cannot change its own status")
            changes["status"] = status
        now = self.ctx.clock()

        def run(tx: Tx) -> Account:
            current = tx.get(Account, account.sid)
            if current is None:
                raise NotFound()
            updated = replace(current, **changes, date_updated=now)
            tx.update(updated)
            return updated

        updated = await self.ctx.store.write(run)
        self.forget_credentials()
        if "status" in changes:
            # A suspended or closed account's domains accept nothing (CONTRACT §6). Sent
            # whenever a status was set: applying it is idempotent, and comparing with
            # the status read before the write could miss a concurrent change.
            self.ctx.publisher.publish([AccountStatusChanged(updated.sid, updated.status)])
        return updated

    # -- API keys ----------------------------------------------------------------

    async def create_key(self, account: Account, friendly_name: str | None) -> tuple[ApiKey, str]:
        name = None
        if friendly_name is not None:
            name = validation.text("friendly_name", friendly_name, max_length=64)
        secret = new_secret()
        key = ApiKey(
            self.ctx.new_sid(sids.API_KEY),
            account.sid,
            name,
            await self.hash_secret(secret),
            self.ctx.clock(),
            self.ctx.clock(),
        )
        await self.ctx.store.write(lambda tx: tx.insert(key))
        return key, secret

    async def get_key(self, account: Account, key_sid: str) -> ApiKey:
        return await self.ctx.get_owned(ApiKey, sids.API_KEY, key_sid, account_sid=account.sid)

    async def list_keys(self, account: Account, request: PageRequest) -> Page[ApiKey]:
        return await self.ctx.store.read(
            lambda tx: tx.page(ApiKey, request, account_sid=account.sid)
        )

    async def update_key(self, account: Account, key_sid: str, friendly_name: str | None) -> ApiKey:
        key = await self.get_key(account, key_sid)
        name = key.friendly_name
        if friendly_name is not None:
            name = validation.text("friendly_name", friendly_name, max_length=64)
        updated = replace(key, friendly_name=name, date_updated=self.ctx.clock())

        def run(tx: Tx) -> ApiKey:
            if tx.get(ApiKey, key.sid) is None:
                raise NotFound()
            tx.update(updated)
            return updated

        return await self.ctx.store.write(run)

    async def delete_key(self, account: Account, key_sid: str) -> None:
        key = await self.get_key(account, key_sid)

        def run(tx: Tx) -> None:
            if tx.delete(ApiKey, sid=key.sid) == 0:
                raise NotFound()

        await self.ctx.store.write(run)
        self.forget_credentials()
