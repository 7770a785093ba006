"""PostgreSQL's side of the shared SQL (sqltx.py), and how sipmap connects to it."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from ..core.models import Model
from .deadline import UNBOUNDED, Deadline
from .sqltx import POSTGRES, SqlTx

SCAN_BATCH = 10_000  # rows per round trip of Tx.scan
# The first key of our advisory locks; the second is a hash of the schema's name, so
# stores in different schemas of one database do not wait for each other.
LOCK_CLASS = 0x5109  # "sip"
SCHEMA_KEY = "hashtext(coalesce(current_schema(), ''))"


class PostgresTx(SqlTx):
    """One transaction's operations: sqltx's SQL in PostgreSQL's dialect."""

    dialect = POSTGRES

    def __init__(
        self, conn: psycopg.Connection[tuple[Any, ...]], deadline: Deadline = UNBOUNDED
    ) -> None:
        super().__init__(conn)
        self._deadline = deadline  # renewed for each round trip of a scan

    def scan(self, model: type[Model], columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor, fetched SCAN_BATCH rows at a time: a plain one would
        # receive the whole result into client memory before the first row. A scan
        # may take long in all (a full load): the deadline covers each round trip
        # anew, and not the consumer's work in between — nor after the scan: the
        # caller renews it for its next statement.
        conn: psycopg.Connection[tuple[Any, ...]] = self._conn  # type: ignore[assignment]
        deadline = self._deadline
        try:
            with conn.cursor(name="sipmap_scan") as cursor:
                try:
                    deadline.renew()
                    cursor.execute(self._scan_sql(model, columns).encode())
                    while True:
                        deadline.renew()
                        rows = cursor.fetchmany(SCAN_BATCH)
                        if not rows:
                            break
                        deadline.pause()
                        yield from rows
                finally:
                    deadline.renew()  # for the CLOSE as the block ends
        finally:
            deadline.pause()


def connect(dsn: str, timeout: float, role: str) -> psycopg.Connection[tuple[Any, ...]]:
    # autocommit: we issue BEGIN/COMMIT ourselves, as the SQLite store does.
    # libpq's connect_timeout is whole seconds, at least 2; tcp_user_timeout and the
    # keepalives make a connection whose server vanished fail rather than hang.
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=max(2, math.ceil(timeout)),
        tcp_user_timeout=int(timeout * 1000),
        keepalives=1,
        keepalives_idle=max(1, int(timeout)),
        keepalives_interval=1,
        keepalives_count=3,
        # Names the node (its process) and the connection's job in pg_stat_activity.
        application_name=f"sipmap {os.getpid()} {role}",
    )
