"""Where the credential key comes from: the environment, a key file, or a new key file
created beside the SQLite database. Never from the database itself (docs/security.md).

The key is the secret half of how credentials are stored: each hash is an HMAC under
it, so a copy of the database alone cannot be used to test guesses of a token.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger("sipmap.keyfile")

KEY_BYTES = 32
ENV_VAR = "SIPMAP_CREDENTIAL_KEY"


class KeyFileError(ValueError):
    """An operator's mistake with the key: reported as one line, never a traceback."""


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def default_key_file(db: str) -> Path | None:
    """`<database file>.key` for SQLite; PostgreSQL has no file to sit beside."""
    return None if is_postgres(db) else Path(db + ".key")


def parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{where} must hold {KEY_BYTES * 2} hex digits")
    return key


def check_given(db: str, key_file: str | None, env_value: str | None) -> None:
    """Raise KeyFileError if no key is given where none can be made (PostgreSQL); touches
    nothing, so it can run before anything else."""
    if not env_value and not key_file and default_key_file(db) is None:
        raise KeyFileError(
            "a PostgreSQL database needs --credential-key-file or SIPMAP_CREDENTIAL_KEY, "
            "the same on every node sharing it (see docs/security.md)"
        )


def resolve(db: str, key_file: str | None, env_value: str | None) -> bytes:
    """The credential key for `db`: SIPMAP_CREDENTIAL_KEY, else the key file (the
    given one, else the default beside a SQLite file, created on first use)."""
    if env_value:
        return parse_key(env_value, ENV_VAR)
    check_given(db, key_file, env_value)
    path = Path(key_file) if key_file else default_key_file(db)
    assert path is not None  # check_given: only PostgreSQL has no default file
    if not path.exists():
        if key_file:  # a named file that is missing is a mistake, not a first start
            raise KeyFileError(f"credential key file {path} does not exist")
        return _create(path)
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"credential key file {path} is accessible to other users "
                f"(mode {stat.S_IMODE(mode):04o}); make it 0600"
            )
        return parse_key(path.read_text(), f"credential key file {path}")
    except OSError as error:
        raise KeyFileError(f"cannot read credential key file {path}: {error.strerror}") from None


def _create(path: Path) -> bytes:
    """A new random key in `path`, mode 0600, written whole before it appears there:
    of two processes creating it at once, both end up with the one that won."""
    key = secrets.token_bytes(KEY_BYTES)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read(path)
        _sync_directory(path.parent)
        log.warning("created credential key file %s: back it up, apart from the database", path)
        return key
    except OSError as error:
        raise KeyFileError(f"cannot create credential key file {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
