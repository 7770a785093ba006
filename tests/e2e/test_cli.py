"""The `sipmap` command on a scratch database: JSON out, errors on stderr, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from sipmap.service import Context, Service
from sipmap.store.sqlite import SqliteStore

from ..conftest import ACCOUNT_SID, start_server
from ..pg import scratch_database


def sipmap(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sipmap.cli",
            *args,
            *(["--sip-port", "0"] if args[:1] == ("serve",) else []),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def one(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    (only,) = lines(result)
    return only


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


def test_version() -> None:
    result = sipmap("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("sipmap ")


def test_accounts(db: str) -> None:
    top = one(sipmap("accounts", "create", "--friendly-name", "Operator", "--db", db))
    assert top["sid"].startswith("AC") and len(top["sid"]) == 34
    assert top["owner_account_sid"] == top["sid"]
    assert (top["friendly_name"], top["status"]) == ("Operator", "active")
    assert len(top["auth_token"]) == 32
    assert not any(key.endswith("_hash") for key in top)

    sub = one(sipmap("accounts", "create", "--owner", top["sid"], "--db", db))
    assert sub["owner_account_sid"] == top["sid"]
    assert sub["friendly_name"].startswith("SubAccount Created at ")
    assert sub["auth_token"] != top["auth_token"]

    listed = lines(sipmap("accounts", "list", "--db", db))
    assert [a["sid"] for a in listed] == [top["sid"], sub["sid"]]
    for account in listed:
        assert "auth_token" not in account and not any(k.endswith("_hash") for k in account)


def test_account_errors(db: str) -> None:
    top = one(sipmap("accounts", "create", "--db", db))
    sub = one(sipmap("accounts", "create", "--owner", top["sid"], "--db", db))

    grandchild = sipmap("accounts", "create", "--owner", sub["sid"], "--db", db)
    assert grandchild.returncode == 2
    assert "top-level" in grandchild.stderr and grandchild.stdout == ""

    unknown = sipmap("accounts", "create", "--owner", "AC" + "f" * 32, "--db", db)
    assert unknown.returncode == 4
    assert unknown.stderr == f"error: --owner AC{'f' * 32}: no such account\n"
    assert unknown.stdout == ""

    assert len(lines(sipmap("accounts", "list", "--db", db))) == 2


def test_keys(db: str) -> None:
    top = one(sipmap("accounts", "create", "--db", db))
    key = one(
        sipmap("keys", "create", "--account", top["sid"], "--friendly-name", "ci", "--db", db)
    )
    assert key["sid"].startswith("SK") and key["account_sid"] == top["sid"]
    assert key["friendly_name"] == "ci" and len(key["secret"]) == 32
    listed = lines(sipmap("keys", "list", "--account", top["sid"], "--db", db))
    assert [k["sid"] for k in listed] == [key["sid"]]
    assert "secret" not in listed[0] and not any(k.endswith("_hash") for k in listed[0])

    missing = sipmap("keys", "create", "--account", "AC" + "f" * 32, "--db", db)
    assert missing.returncode == 4 and missing.stderr.startswith("error: ")
    assert sipmap("keys", "list", "--account", "nonsense", "--db", db).returncode == 2


def test_account_sids_are_case_insensitive(db: str) -> None:
    top = one(sipmap("accounts", "create", "--db", db))
    shouted = "AC" + top["sid"][2:].upper()
    sub = one(sipmap("accounts", "create", "--owner", shouted, "--db", db))
    assert sub["owner_account_sid"] == top["sid"]
    key = one(sipmap("keys", "create", "--account", shouted, "--db", db))
    assert key["account_sid"] == top["sid"]
    assert [k["sid"] for k in lines(sipmap("keys", "list", "--account", shouted, "--db", db))] == [
        key["sid"]
    ]
    # Not an account SID at all: an error, not an empty listing.
    for bad in ("ac" + top["sid"][2:], "nonsense", "SK" + top["sid"][2:]):
        result = sipmap("list", "ip-records", "--account", bad, "--db", db)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr == "error: --account must be AC followed by 32 hex digits\n"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nonsense"],
        ["accounts"],
        ["keys", "create"],  # --account is required
        ["list", "widgets", "--account", ACCOUNT_SID],
        ["list", "ip-records"],
        ["serve", "--log-level", "loud"],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    result = sipmap(*args)
    assert result.returncode == 2
    assert "usage: sipmap" in result.stderr


def test_cli_and_server_share_one_database(tmp_path: Path) -> None:
    """Credentials made by the CLI work on the server; what the API wrote, the CLI lists."""
    db = str(tmp_path / "shared.db")
    top = one(sipmap("accounts", "create", "--friendly-name", "made by the CLI", "--db", db))
    server = start_server(Path(db))
    try:
        key = one(sipmap("keys", "create", "--account", top["sid"], "--db", db))
        with httpx.Client(base_url=server.base_url, auth=(key["sid"], key["secret"])) as http:
            record = http.post("/v1/IpRecords", data={"IpAddress": "192.0.2.1"})
            assert record.status_code == 201, record.text
            name = f"cli-{uuid.uuid4().hex[:8]}.sip.twilio.com"
            domain = http.post(
                f"/2010-04-01/Accounts/{top['sid']}/SIP/Domains.json", data={"DomainName": name}
            )
            mapping = http.post(
                "/v1/SourceIpMappings",
                data={"IpRecordSid": record.json()["sid"], "SipDomainSid": domain.json()["sid"]},
            )
            assert mapping.status_code == 201, mapping.text
        with httpx.Client(base_url=server.base_url, auth=(top["sid"], top["auth_token"])) as http:
            assert http.get(f"/2010-04-01/Accounts/{top['sid']}.json").status_code == 200

        # Listed while the server runs (SQLite readers do not block the writer).
        records = lines(sipmap("list", "ip-records", "--account", top["sid"], "--db", db))
        assert [(r["sid"], r["ip_address"], r["cidr_prefix_length"]) for r in records] == [
            (record.json()["sid"], "192.0.2.1", 32)
        ]
        domains = lines(sipmap("list", "domains", "--account", top["sid"], "--db", db))
        assert [(d["sid"], d["domain_name"], d["ip_acl_mapped"]) for d in domains] == [
            (domain.json()["sid"], name, False)
        ]
        mappings = lines(sipmap("list", "source-ip-mappings", "--account", top["sid"], "--db", db))
        assert [m["sid"] for m in mappings] == [mapping.json()["sid"]]
        assert mappings[0]["sip_domain_sid"] == domain.json()["sid"]
        # The bootstrap account of the server has none of them.
        assert lines(sipmap("list", "ip-records", "--account", ACCOUNT_SID, "--db", db)) == []
    finally:
        server.stop()


def _in_another_process(db: Path, statement: str) -> None:
    """Run `await <statement>` with `service` open on `db`, in a separate process."""
    script = (
        "import asyncio, sys\n"
        "from sipmap.service import Context, Service\n"
        "from sipmap.store.sqlite import SqliteStore\n"
        "async def main():\n"
        "    store = SqliteStore(sys.argv[1])\n"
        "    service = Service(Context(store))\n"
        "    try:\n"
        f"        await {statement}\n"
        "    finally:\n"
        "        await store.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


def test_server_reads_see_commits_of_another_process(tmp_path: Path) -> None:
    """A fetch right after another process committed to the database answers with its change."""
    db = tmp_path / "shared.db"
    server = start_server(db)
    try:
        with server.http() as http:
            made = http.post("/v1/IpRecords", data={"IpAddress": "192.0.2.1", "FriendlyName": "a"})
            url = f"/v1/IpRecords/{made.json()['sid']}"
            args = f"{ACCOUNT_SID!r}, {made.json()['sid']!r}"
            for name in ("b", "c"):
                assert http.get(url).json()["friendly_name"] != name
                _in_another_process(db, f"service.voice.update_ip_record({args}, {name!r})")
                assert http.get(url).json()["friendly_name"] == name
            _in_another_process(db, f"service.voice.delete_ip_record({args})")
            assert http.get(url).status_code == 404
    finally:
        server.stop()


def test_list_pages_through_everything(tmp_path: Path) -> None:
    """More items than one store page (1,000) are all listed, each once, in order."""
    db = tmp_path / "many.db"

    async def populate() -> tuple[str, list[str]]:
        store = SqliteStore(db)
        try:
            service = Service(Context(store))
            account, _ = await service.accounts.create_account(None, "many")
            records = await asyncio.gather(
                *(
                    service.voice.create_ip_record(
                        account.sid, f"10.0.{n // 256}.{n % 256}", 32, None
                    )
                    for n in range(1003)
                )
            )
            return account.sid, [r.sid for r in records]
        finally:
            await store.close()

    account, made = asyncio.run(populate())
    listed = lines(sipmap("list", "ip-records", "--account", account, "--db", str(db)))
    assert [r["sid"] for r in listed] == made


def test_serve_rejects_bad_bootstrap_credentials(tmp_path: Path) -> None:
    db = str(tmp_path / "serve.db")
    result = sipmap(
        "serve",
        "--db",
        db,
        "--port",
        "0",
        env={"SIPMAP_ACCOUNT_SID": "AC123", "SIPMAP_AUTH_TOKEN": "x"},
    )
    assert result.returncode == 2
    assert "SIPMAP_ACCOUNT_SID" in result.stderr
    half = sipmap(
        "serve",
        "--db",
        db,
        "--port",
        "0",
        env={"SIPMAP_ACCOUNT_SID": ACCOUNT_SID, "SIPMAP_AUTH_TOKEN": ""},
    )
    assert half.returncode == 2
    assert "both" in half.stderr


def test_the_credential_key_lives_beside_the_database_not_in_it(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    top = one(sipmap("accounts", "create", "--db", str(db)))
    key_file = Path(f"{db}.key")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert key_file.read_text().strip() not in db.read_bytes().decode("latin-1")
    # Another key is refused in one line, by the operator commands and by serve.
    other = {"SIPMAP_CREDENTIAL_KEY": "ab" * 32}
    for args in (
        ["keys", "create", "--account", top["sid"]],
        ["serve", "--port", "0", "--sip-port", "0"],
    ):
        result = sipmap(*args, "--db", str(db), env=other)
        assert result.returncode != 0
        assert result.stderr.startswith("error: the credential key does not match"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_serve_on_postgresql_needs_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SIPMAP_CREDENTIAL_KEY"}
    with scratch_database() as url:
        result = subprocess.run(
            [sys.executable, "-m", "sipmap.cli", "serve", "--port", "0", "--sip-port", "0",
             "--db", url],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: a PostgreSQL database needs --credential-key-file or SIPMAP_CREDENTIAL_KEY, "
        "the same on every node sharing it (see docs/security.md)"
    )
    assert result.stdout == ""
