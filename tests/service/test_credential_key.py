"""The credential key: outside the database, created 0600, required for PostgreSQL, and
how databases made before it are brought under it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pytest

from sipmap import keyfile
from sipmap.core.models import Account
from sipmap.service.accounts import AccountService, AuthenticationFailed
from sipmap.service.context import Context
from sipmap.service.credentials import CredentialKeyMismatch
from sipmap.store.sqlite import SqliteStore

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SID = "AC" + "d" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _accounts(db: Path, key: bytes) -> tuple[AccountService, SqliteStore]:
    store = SqliteStore(db)
    return AccountService(Context(store, credential_key=key)), store


async def _create(db: Path, key: bytes) -> tuple[str, str]:
    service, store = _accounts(db, key)
    try:
        account, token = await service.create_account(None, "top")
        return account.sid, token
    finally:
        await store.close()


async def _login(db: Path, key: bytes, sid: str, token: str) -> str:
    service, store = _accounts(db, key)
    try:
        return (await service.authenticate(sid, token)).account_sid
    finally:
        await store.close()


def _db_contents(db: Path, sid: str) -> tuple[bytes, str]:
    # The store's own SQLite (APSW): never two SQLite libraries on one file in one process.
    with apsw.Connection(str(db)) as conn:
        (salt,) = conn.execute(
            "SELECT value FROM settings WHERE key = 'credential_salt'"
        ).fetchone()
        (stored,) = conn.execute(
            "SELECT auth_token_hash FROM accounts WHERE sid = ?", (sid,)
        ).fetchone()
    return bytes.fromhex(salt), stored


def test_a_copy_of_the_database_cannot_check_a_guessed_token(tmp_path: Path) -> None:
    # Issue 10, finding 7: with the HMAC key beside the hashes, a dictionary of guesses
    # could be tested offline against a copy of the database.
    db = tmp_path / "a.db"
    sid, token = asyncio.run(_create(db, KEY))
    salt, stored = _db_contents(db, sid)
    everything_in_the_file = hmac.new(salt, token.encode(), hashlib.sha256).hexdigest()
    assert stored != everything_in_the_file
    assert KEY.hex() not in db.read_bytes().hex()
    assert asyncio.run(_login(db, KEY, sid, token)) == sid


def test_another_key_is_refused_not_silently_failing_logins(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    sid, token = asyncio.run(_create(db, KEY))
    with pytest.raises(CredentialKeyMismatch):
        asyncio.run(_login(db, OTHER_KEY, sid, token))
    assert asyncio.run(_login(db, KEY, sid, token)) == sid


def test_a_database_from_before_the_key_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SqliteStore(db).close_blocking()
    # What earlier versions stored: the key in the database, HMAC(key, token) beside it.
    old_key, token = os.urandom(32), "weak-operator-token"
    old_hash = hmac.new(old_key, token.encode(), hashlib.sha256).hexdigest()
    with apsw.Connection(str(db)) as conn:  # one transaction, committed at the end
        conn.execute("INSERT INTO settings VALUES ('credential_salt', ?)", (old_key.hex(),))
        conn.execute(
            "INSERT INTO accounts (sid, owner_account_sid, friendly_name, status, "
            "auth_token_hash, date_created, date_updated) VALUES (?, ?, 'old', 'active', ?, 0, 0)",
            (SID, SID, old_hash),
        )
    assert asyncio.run(_login(db, KEY, SID, token)) == SID
    _, stored = _db_contents(db, SID)
    assert stored != old_hash  # no longer checkable from the file alone
    # Upgraded once: a second start neither wraps again nor fails.
    assert asyncio.run(_login(db, KEY, SID, token)) == SID
    with pytest.raises(AuthenticationFailed):
        asyncio.run(_login(db, KEY, SID, token + "x"))


def test_the_default_key_file_is_created_beside_the_database_0600(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    key = keyfile.resolve(db, None, None)
    path = Path(db + ".key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key.hex()
    assert keyfile.resolve(db, None, None) == key  # read back, not replaced
    assert [p.name for p in tmp_path.iterdir()] == ["s.db.key"]  # no temporary left


def test_the_environment_and_a_named_file_take_precedence(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    named = tmp_path / "named.key"
    named.write_text(OTHER_KEY.hex())
    named.chmod(0o600)
    assert keyfile.resolve(db, str(named), None) == OTHER_KEY
    assert keyfile.resolve(db, str(named), KEY.hex()) == KEY
    assert not Path(db + ".key").exists()


@pytest.mark.parametrize(
    ("db", "key_file", "env", "says"),
    [
        ("postgresql://x@127.0.0.1/db", None, None, "needs --credential-key-file"),
        ("s.db", "missing.key", None, "does not exist"),
        ("s.db", None, "abc", "64 hex digits"),
        ("s.db", "loose.key", None, "accessible to other users"),
        ("s.db", "short.key", None, "64 hex digits"),
    ],
)
def test_key_mistakes_are_one_clear_error(
    tmp_path: Path, db: str, key_file: str | None, env: str | None, says: str
) -> None:
    (tmp_path / "loose.key").write_text(KEY.hex())
    (tmp_path / "loose.key").chmod(0o644)
    (tmp_path / "short.key").write_text("abcd")
    (tmp_path / "short.key").chmod(0o600)
    path = str(tmp_path / key_file) if key_file else None
    if not db.startswith("postgresql"):
        db = str(tmp_path / db)
    with pytest.raises(keyfile.KeyFileError, match=says):
        keyfile.resolve(db, path, env)


def test_a_hash_made_by_the_service_verifies(tmp_path: Path) -> None:
    db = tmp_path / "h.db"

    async def run() -> None:
        store = SqliteStore(db)
        try:
            service = AccountService(Context(store, credential_key=KEY))
            stored = await service.hash_secret("x")  # prepares the database first
            account = Account(SID, SID, "t", "active", stored, T0, T0)
            await store.write(lambda tx: tx.insert(account))
            assert (await service.authenticate(SID, "x")).account_sid == SID
        finally:
            await store.close()

    asyncio.run(run())
