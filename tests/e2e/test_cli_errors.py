"""Every operator mistake: one line on stderr, its own exit code, never a traceback."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sipmap.exits import Exit
from sipmap.service import Context, Service
from sipmap.store.sqlite import SqliteStore
from sipmap.testing import free_port

from ..conftest import ACCOUNT_SID

IP = "192.0.2.1"
UNKNOWN = "AC" + "f" * 32


def sipmap(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPMAP_")}
    if args[:1] == ("serve",):  # these mistakes are not about the SIP edge: no port 5060 needed
        args = (*args, "--sip-port", "0")
    return subprocess.run(
        [sys.executable, "-m", "sipmap.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def make_db(path: Path) -> Path:
    assert sipmap("accounts", "create", "--db", str(path)).returncode == 0
    return path


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` write-protected for this user: root ignores file modes, not the immutable flag."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        yield


# name → (arguments given the scratch folder, exit code, what the one line says)
CASES: dict[str, tuple[Callable[[Path], list[str]], Exit, str]] = {
    **{
        f"{command}-missing-dir": (
            lambda t, c=command: [*c.split(), "--db", str(t / "no/such/dir/x.db")],
            Exit.DATABASE,
            "/no/such/dir does not exist",
        )
        for command in (
            "serve --port 0 --sip-port 0",
            f"recognize {IP}",
            "accounts list",
            "accounts create",
        )
    },
    **{
        f"{command}-directory": (
            lambda t, c=command: [*c.split(), "--db", str(t)],
            Exit.DATABASE,
            "is a directory, not a database file",
        )
        for command in (
            "serve --port 0 --sip-port 0",
            f"recognize {IP}",
            "accounts list",
            "accounts create",
        )
    },
    **{
        f"{command}-not-a-database": (
            lambda t, c=command: [*c.split(), "--db", str(t / "notes.txt")],
            Exit.DATABASE,
            "is not an SQLite database",
        )
        for command in (
            "serve --port 0 --sip-port 0",
            f"recognize {IP}",
            "accounts list",
            f"keys create --account {ACCOUNT_SID}",
        )
    },
    **{
        f"{command}-no-database": (
            lambda t, c=command: [*c.split(), "--db", str(t / "typo.db")],
            Exit.DATABASE,
            "no such database file",
        )
        for command in (
            f"recognize {IP}",
            "accounts list",
            f"keys list --account {ACCOUNT_SID}",
            f"list ip-records --account {ACCOUNT_SID}",
        )
    },
    "postgres-unreachable": (
        lambda t: [
            *("serve", "--port", "0", "--sip-port", "0", "--credential-key-file", str(t / "key")),
            *("--db", f"postgresql://u:pw@127.0.0.1:{free_port()}/x"),
        ],
        Exit.DATABASE,
        "connection failed",
    ),
    "port-too-high": (lambda t: ["serve", "--port", "99999"], Exit.USAGE, "--port: 99999 is not"),
    "port-negative": (lambda t: ["serve", "--port", "-1"], Exit.USAGE, "--port: -1 is not"),
    "limit-zero": (
        lambda t: ["serve", "--max-concurrent-requests", "0"],
        Exit.USAGE,
        "--max-concurrent-requests: 0 is less than 1",
    ),
    "limit-negative": (
        lambda t: ["serve", "--max-concurrent-requests", "-3"],
        Exit.USAGE,
        "--max-concurrent-requests: -3 is less than 1",
    ),
    "recognize-not-an-ip": (
        lambda t: ["recognize", "not-an-ip", "--db", str(make_db(t / "r.db"))],
        Exit.USAGE,
        "'not-an-ip' is not an IP address",
    ),
    "malformed-account": (
        lambda t: ["list", "domains", "--account", "AC12", "--db", str(make_db(t / "m.db"))],
        Exit.USAGE,
        "--account must be AC followed by 32 hex digits",
    ),
    **{
        f"{command}-unknown-account": (
            lambda t, c=command: [
                *c.split(),
                "--account",
                UNKNOWN,
                "--db",
                str(make_db(t / "u.db")),
            ],
            Exit.REFUSED,
            f"--account {UNKNOWN}: no such account",
        )
        for command in ("list ip-records", "list domains", "keys list", "keys create")
    },
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_operator_mistake(name: str, tmp_path: Path) -> None:
    args, code, message = CASES[name]
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    result = sipmap(*args(tmp_path))
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if code == Exit.USAGE and "argument" in result.stderr:  # argparse: usage, then the error
        last = result.stderr.splitlines()[-1]
        assert last.startswith("sipmap serve: error: argument ") and message in last, last
    else:
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr
    if name != "recognize-not-an-ip":  # that one prints its JSON answer too, like grep
        assert result.stdout == ""
    # Read-only commands never create a database.
    assert not (tmp_path / "typo.db").exists()


def test_a_read_only_database_is_refused_before_anything_starts(tmp_path: Path) -> None:
    db = make_db(tmp_path / "ro.db")
    before = db.read_bytes()
    with read_only(db):
        for args in (["serve", "--port", "0", "--sip-port", "0"], ["accounts", "create"], ["keys", "create",
                     "--account", ACCOUNT_SID]):  # fmt: skip
            result = sipmap(*args, "--db", str(db))
            assert result.returncode == Exit.DATABASE, result.stderr
            assert (
                result.stderr == f"error: --db {db}: is read-only, and this command writes to it\n"
            )
            assert result.stdout == ""  # no token printed for a server that did not start
        # Reading it is fine.
        listed = sipmap("accounts", "list", "--db", str(db))
        assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 1
    assert db.read_bytes() == before


def test_a_taken_port_fails_before_credentials_are_printed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = sipmap(
            "serve", "--port", str(port), "--sip-port", "0", "--db", str(tmp_path / "s.db")
        )
    assert result.returncode == Exit.LISTEN
    assert result.stderr == (
        f"error: --port {port}: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "s.db").exists()  # the port is checked before the store is opened


def test_a_closed_pipe_ends_the_listing_quietly(tmp_path: Path) -> None:
    """`sipmap accounts list | head -c 100`: one line, its own code, no traceback."""
    db = tmp_path / "many.db"

    async def populate() -> None:
        store = SqliteStore(db)
        try:
            service = Service(Context(store))
            # More output than a pipe buffers (64 KiB), so writing must meet the closed end.
            await asyncio.gather(*(service.accounts.create_account(None, "x") for _ in range(600)))
        finally:
            await store.close()

    asyncio.run(populate())
    process = subprocess.Popen(
        [sys.executable, "-m", "sipmap.cli", "accounts", "list", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert len(process.stdout.read(100)) == 100
    process.stdout.close()  # what `head -c 100` does next
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(60) == Exit.OUTPUT_CLOSED
    assert stderr == "error: output closed before everything was written\n"


def test_exit_codes_are_documented() -> None:
    config = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for code in Exit:
        assert f"| {code.value} |" in config, code
