"""The crash test: concurrent writes, SIGKILL at a random moment, restart, and every
acknowledged write checked — on SQLite and on PostgreSQL.

Each cycle starts `sipmap serve` on the same database, runs writers that create IP
records, map them to a domain and delete some, kills the server with SIGKILL after a
random delay, and restarts it. After each restart every write the API acknowledged (a
2xx answer) must be there — and every acknowledged delete gone, with its mapping — in
the API and in recognition; SQLite's file must pass `PRAGMA integrity_check` and
`foreign_key_check`, PostgreSQL's tables must have no dangling reference. Writes in
flight at the kill may or may not have landed; nothing else is allowed.

A few cycles run in CI; SIPMAP_CRASH_CYCLES=50 (say) runs a longer attack.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ..conftest import Server, start_server
from ..pg import scratch_database

CYCLES = int(os.environ.get("SIPMAP_CRASH_CYCLES", "3"))
WRITERS = 4


@dataclass
class Acknowledged:
    """What the API said it did, across all cycles."""

    records: dict[str, str] = field(default_factory=dict)  # sid -> ip_address
    mappings: dict[str, str] = field(default_factory=dict)  # record sid -> mapping sid
    deleting: set[str] = field(default_factory=set)  # record sids a delete was sent for
    deleted: set[str] = field(default_factory=set)  # ... and acknowledged
    lock: threading.Lock = field(default_factory=threading.Lock)


def _write_until_killed(
    server: Server, domain: str, prefix: str, ack: Acknowledged, started: threading.Event
) -> None:
    n = 0
    with server.http() as http:
        while True:
            n += 1
            try:
                made = http.post(
                    "/v1/IpRecords", data={"IpAddress": f"{prefix}.{n // 250}.{n % 250}"}
                )
                if made.status_code != 201:
                    raise AssertionError(made.text)  # anything but success or a dead server
                record = made.json()["sid"]
                with ack.lock:
                    ack.records[record] = made.json()["ip_address"]
                mapped = http.post(
                    "/v1/SourceIpMappings", data={"IpRecordSid": record, "SipDomainSid": domain}
                )
                assert mapped.status_code == 201, mapped.text
                with ack.lock:
                    ack.mappings[record] = mapped.json()["sid"]
                if n % 4 == 0:
                    with ack.lock:
                        ack.deleting.add(record)
                    gone = http.delete(f"/v1/IpRecords/{record}")
                    assert gone.status_code == 204, gone.text
                    with ack.lock:
                        ack.deleted.add(record)
            except httpx.TransportError:
                return  # the server was killed
            started.set()


def _all(http: httpx.Client, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = f"{path}?PageSize=1000"
    while url:
        page = http.get(url)
        assert page.status_code == 200, page.text
        items += page.json()[key]
        url = page.json()["meta"]["next_page_url"]
    return items


def _check(server: Server, ack: Acknowledged) -> int:
    with server.http() as http:
        records = {r["sid"]: r["ip_address"] for r in _all(http, "/v1/IpRecords", "ip_records")}
        mappings = {
            m["ip_record_sid"]: m["sid"]
            for m in _all(http, "/v1/SourceIpMappings", "source_ip_mappings")
        }
        for sid, address in ack.records.items():
            if sid in ack.deleted:
                assert sid not in records and sid not in mappings, sid
            elif sid not in ack.deleting:  # (a delete in flight at the kill may have landed)
                assert records.get(sid) == address, sid
        for record, mapping in ack.mappings.items():
            if record not in ack.deleting:
                assert mappings.get(record) == mapping, record
        # Nothing that was not acknowledged is half there: every mapping has its record.
        assert set(mappings) <= set(records)
        # Recognition, loaded from the store at start, agrees with the API.
        live = [r for r in ack.mappings if r not in ack.deleting]
        for record in random.sample(live, min(40, len(live))):
            found = http.get("/sipmap/v1/Recognition", params={"SourceIp": records[record]})
            assert found.json()["source_ip_mapping_sid"] == ack.mappings[record], record
    return len(records)


def _check_sqlite_file(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def _check_postgres(url: str) -> None:
    with psycopg.connect(url) as conn:
        dangling = conn.execute(
            "SELECT count(*) FROM source_ip_mappings m "
            "LEFT JOIN ip_records r ON r.sid = m.ip_record_sid "
            "LEFT JOIN sip_domains d ON d.sid = m.sip_domain_sid "
            "WHERE r.sid IS NULL OR d.sid IS NULL"
        ).fetchone()
        assert dangling == (0,)


def _block(n: int) -> str:
    """The first two octets of writer n's addresses: every writer of every cycle its own."""
    return f"{10 + n // 256}.{n % 256}"


@contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp_path / "crash.db")
    else:
        with scratch_database() as url:
            yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_no_acknowledged_write_is_lost_to_sigkill(kind: str, tmp_path: Path) -> None:
    ack = Acknowledged()
    rng = random.Random()
    with _database(kind, tmp_path) as db:
        domain = ""
        acknowledged_before = 0
        for cycle in range(CYCLES):
            server = start_server(db)
            writers: list[threading.Thread] = []
            try:
                if not domain:
                    with server.http() as http:
                        made = http.post(
                            f"/2010-04-01/Accounts/{server.account_sid}/SIP/Domains.json",
                            data={"DomainName": "crash.sip.twilio.com"},
                        )
                        assert made.status_code == 201, made.text
                        domain = made.json()["sid"]
                if cycle:
                    _check(server, ack)
                started = [threading.Event() for _ in range(WRITERS)]
                writers += [
                    threading.Thread(
                        target=_write_until_killed,
                        args=(server, domain, _block(cycle * WRITERS + w), ack, started[w]),
                    )
                    for w in range(WRITERS)
                ]
                for writer in writers:
                    writer.start()
                for event in started:  # every writer under way (a loaded machine is slow)
                    event.wait(60)
                time.sleep(rng.uniform(0.0, 1.0))  # then a random moment mid-write
            finally:
                server.process.kill()  # SIGKILL: no shutdown, no flush
                server.process.wait()
            for writer in writers:
                writer.join(30)
            # Each cycle wrote something before it was cut short.
            assert len(ack.records) > acknowledged_before, cycle
            acknowledged_before = len(ack.records)
            if kind == "sqlite":
                _check_sqlite_file(Path(db))
            else:
                _check_postgres(db)
        server = start_server(db)
        try:
            kept = _check(server, ack)
        finally:
            server.stop()
    # Besides the acknowledged, at most the creates in flight at each kill landed.
    live = len(ack.records) - len(ack.deleted)
    assert live - len(ack.deleting - ack.deleted) <= kept <= live + CYCLES * WRITERS
    print(f"{kind}: {CYCLES} SIGKILLs, {len(ack.records)} acknowledged records")
