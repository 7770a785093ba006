"""What only the PostgreSQL store has to do, beyond the contract: start beside other
nodes, and outlive its connections."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import psycopg

from sipmap.core.models import IpRecord
from sipmap.store.open import open_store
from sipmap.store.postgres import PostgresStore
from sipmap.store.sqlite import SqliteStore

from ..pg import base_url, scratch_database
from .factories import TOP, record, sid
from .test_contract import insert_all, with_accounts


def test_open_store_picks_the_backend_from_the_url(tmp_path: Path) -> None:
    with scratch_database() as url:
        for given in (url, url.replace("postgresql://", "postgres://", 1)):
            store = open_store(given)
            assert isinstance(store, PostgresStore)
            store.close_blocking()
    store = open_store(tmp_path / "sipmap.db")
    assert isinstance(store, SqliteStore)
    store.close_blocking()


def test_nodes_starting_together_migrate_once() -> None:
    with scratch_database() as url, ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(lambda _: PostgresStore(url), range(8)))
        for store in stores:
            store.close_blocking()
        with psycopg.connect(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        folder = resources.files("sipmap.store") / "migrations" / "postgres"
        scripts = [int(f.name.split("_")[0]) for f in folder.iterdir() if f.name.endswith(".sql")]
        assert sorted(versions) == sorted(scripts)  # each once


def test_dropped_connections_are_replaced() -> None:
    name = f"sipmap_test_{uuid.uuid4().hex[:12]}"
    with scratch_database() as url:
        store = PostgresStore(f"{url}&application_name={name}")

        async def scenario() -> None:
            await store.write(with_accounts)
            await store.write(insert_all(record(1)))
            assert await store.get(IpRecord, sid("IL", 1)) == record(1)
            with psycopg.connect(base_url(), autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (name,),
                )
                # Wait until they are gone, so the next calls meet dead connections.
                query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                while admin.execute(query, (name,)).fetchone() != (0,):
                    await asyncio.sleep(0.01)
            # Connections found dead before anything ran on them are replaced unnoticed.
            assert await store.get(IpRecord, sid("IL", 1)) == record(1)
            await store.write(insert_all(record(2)))
            found = await store.read(lambda tx: tx.find(IpRecord, account_sid=TOP.sid))
            assert found == [record(1), record(2)]

        try:
            asyncio.run(scenario())
        finally:
            store.close_blocking()
