"""The source table both SIP servers answer from, built once and written two ways:
as a sipmap SQLite database (through the store, in one transaction) and as the entries
of Kamailio's address file (one permissions group per SIP domain)."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sip_kamailio import Entry
from sipmap import keyfile
from sipmap.core.models import (
    AclMapping,
    IpAccessControlList,
    IpAddress,
    IpRecord,
    Model,
    SipDomain,
    SourceIpMapping,
)
from sipmap.service import Context, Service
from sipmap.store.base import Tx
from sipmap.store.open import open_store
from synthetic import Prefix, dotted, random_prefix

# SIPp sends from ALLOWED_SOURCE (mapped, and in its domain's IP ACL); the probe also
# sends from UNKNOWN_SOURCE, which no network of the table contains.
ALLOWED_SOURCE = "127.0.0.2"
UNKNOWN_SOURCE = "127.0.0.3"
BENCH_DOMAIN_SID = "SD" + "0" * 32
BENCH_GROUP = 1  # the bench domain's Kamailio group; synthetic domain n is group n + 2
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOOPBACK = 127


@dataclass(frozen=True)
class Table:
    networks: list[Prefix]  # the synthetic part; network i belongs to domain i % domains
    domains: int

    def kamailio_entries(self) -> list[Entry]:
        entries = [(BENCH_GROUP, ALLOWED_SOURCE, 32)]
        entries += [
            (i % self.domains + 2, dotted(network), prefix_len)
            for i, (network, prefix_len) in enumerate(self.networks)
        ]
        return entries

    @property
    def size(self) -> int:
        """Mappings in all, the bench's own included."""
        return len(self.networks) + 1


def make_table(size: int, seed: int = 8) -> Table:
    """`size` mappings (the bench's own source among them), one SIP domain per 100;
    networks in the realistic mix of synthetic.random_prefix, none in 127.0.0.0/8."""
    rng = random.Random(seed)
    seen: dict[Prefix, None] = {}
    parents: list[Prefix] = []
    while len(seen) < size - 1:
        prefix = random_prefix(rng, parents)
        if prefix[0] >> 24 == LOOPBACK or prefix in seen:
            continue
        seen[prefix] = None
        if prefix[1] < 32 and len(parents) < 5000:
            parents.append(prefix)
    return Table(list(seen), max(1, size // 100))


def write_source(n: int) -> str:
    """The address of the n-th IP record the writes case maps and unmaps (127.1.0.0/16)."""
    return f"127.1.{n // 250}.{n % 250 + 1}"


def _domain(sid: str, account_sid: str, name: str) -> SipDomain:
    return SipDomain(
        sid, account_sid, name, None, None, "POST", None, "POST", None, "POST",
        False, False, False, None, None, T0, T0,
    )  # fmt: skip


def table_rows(table: Table, account_sid: str) -> list[Model]:
    """Every row of the table, in an order the foreign keys accept."""
    acl = "AL" + "0" * 32
    bench = _domain(BENCH_DOMAIN_SID, account_sid, "bench.sip.twilio.com")
    rows: list[Model] = [
        bench,
        IpAccessControlList(acl, account_sid, "bench", T0, T0),
        IpAddress("IP" + "0" * 32, account_sid, acl, "bench", ALLOWED_SOURCE, 32, T0, T0),
        AclMapping(acl, account_sid, BENCH_DOMAIN_SID, T0, T0),
    ]
    domains = [
        _domain(f"SD{n + 1:032x}", account_sid, f"d{n}.sip.twilio.com")
        for n in range(table.domains)
    ]
    rows += domains
    sources = [(ALLOWED_SOURCE, 32, BENCH_DOMAIN_SID)] + [
        (dotted(network), prefix_len, domains[i % len(domains)].sid)
        for i, (network, prefix_len) in enumerate(table.networks)
    ]
    for i, (address, prefix_len, domain_sid) in enumerate(sources):
        record = IpRecord(f"IL{i:032x}", account_sid, None, address, prefix_len, T0, T0)
        rows.append(record)
        network = record.network
        mapping = SourceIpMapping(
            f"IB{i:032x}", account_sid, record.sid, domain_sid, network, prefix_len, T0, T0
        )
        rows.append(mapping)
    return rows


async def _build(table: Table, db: Path, account_sid: str, auth_token: str) -> None:
    # The key serve will use: the same variable, else the key file beside the database.
    key = keyfile.resolve(str(db), None, os.environ.get(keyfile.ENV_VAR) or None)
    store = open_store(db)
    try:
        service = Service(Context(store, credential_key=key))
        await service.accounts.ensure_bootstrap(account_sid, auth_token)
        rows = table_rows(table, account_sid)

        def insert_all(tx: Tx) -> None:
            for row in rows:
                tx.insert(row)

        await store.write(insert_all)
    finally:
        await store.close()


def build_sqlite(table: Table, db: Path, account_sid: str, auth_token: str) -> None:
    """A sipmap database holding `table`, its bootstrap account included, for `serve`."""
    asyncio.run(_build(table, db, account_sid, auth_token))
