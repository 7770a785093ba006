"""How auth tokens and API key secrets are stored: keyed hashes, the key outside the database.

stored = HMAC-SHA256(key, HMAC-SHA256(salt, secret)), in hex. The salt is per database and
kept in it (as before this scheme); the key is the operator's (keyfile.py) and never
written to the database, so a copy of the database is no oracle for guessing a token.
Two HMACs cost about 2 µs, and a verified credential is cached besides, so a slow KDF
would add cost without adding protection for random secrets (docs/security.md).

Databases made before the key existed hold HMAC(salt, secret): on first use with a key,
each stored hash is wrapped in the outer HMAC, in one write transaction, and a check
value of the key recorded; a later start with another key is refused rather than
silently failing every login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from msgspec.structs import replace

from ..core.errors import ServiceError
from ..core.models import Account, ApiKey
from ..store.base import Store, Tx

SALT_SETTING = "credential_salt"
CHECK_SETTING = "credential_key_check"
_CHECK_MESSAGE = b"sipmap credential key check"


class CredentialKeyMismatch(ServiceError):
    status = 500
    code = 20500
    message = (
        "the credential key does not match the one this database's credentials were stored "
        "with (see docs/security.md)"
    )


def _hmac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


class CredentialHasher:
    def __init__(self, store: Store, key: bytes) -> None:
        self._store = store
        self._key = key
        self._salt: bytes | None = None

    def _outer(self, inner: str) -> str:
        return _hmac(self._key, inner.encode("ascii"))

    async def _ready(self) -> bytes:
        if self._salt is None:
            self._salt = bytes.fromhex(await self._store.write(self._prepare))
        return self._salt

    def _prepare(self, tx: Tx) -> str:
        """The database's salt; its stored hashes brought under the key if they are not."""
        salt = tx.get_setting(SALT_SETTING)
        if salt is None:
            salt = secrets.token_hex(32)
            tx.set_setting(SALT_SETTING, salt)
        check = _hmac(self._key, _CHECK_MESSAGE)
        recorded = tx.get_setting(CHECK_SETTING)
        if recorded is None:
            for account in tx.find(Account):
                tx.update(replace(account, auth_token_hash=self._outer(account.auth_token_hash)))
            for key in tx.find(ApiKey):
                tx.update(replace(key, secret_hash=self._outer(key.secret_hash)))
            tx.set_setting(CHECK_SETTING, check)
        elif not hmac.compare_digest(recorded, check):
            raise CredentialKeyMismatch()
        return salt

    async def check(self) -> None:
        """Raise CredentialKeyMismatch now if the key is not this database's."""
        await self._ready()

    async def hash(self, secret: str) -> str:
        salt = await self._ready()
        inner = _hmac(salt, secret.encode("utf-8", "surrogatepass"))
        return self._outer(inner)
