"""Scratch PostgreSQL schemas for tests: each its own empty database, as far as sipmap sees.

Which server: the one SIPMAP_TEST_POSTGRES names (CI sets it to the machine's server,
see `.ci/run`); otherwise a throwaway real PostgreSQL of the suite's own, started on
first use from the `pgserver` wheel's binaries, listening on a Unix socket only (no
TCP port), stopped and deleted when the test process exits. Either way the tests run:
nothing is skipped. (PostgreSQL refuses to run as root: run as root, pgserver runs it
as a system user `pgserver`, which it creates if missing.)
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg

from .locks import machine_lock

ENV = "SIPMAP_TEST_POSTGRES"


@cache
def base_url() -> str:
    """The URL of the server the tests use (started on the first call if it is ours)."""
    configured = os.environ.get(ENV)
    if configured:
        return configured
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (it falls back to /tmp).
        warnings.simplefilter("ignore")
        import pgserver  # the throwaway server: only when no server was named

    folder = tempfile.mkdtemp(prefix="sipmap-test-pg-")
    with machine_lock("pg-user"):  # as root it may add a system user: one at a time
        server = pgserver.get_server(folder, cleanup_mode="delete")
    return str(server.get_uri())


def with_options(url: str, options: str) -> str:
    """`url` with libpq `options` added (our own server's URL already has a query: ?host=)."""
    return f"{url}{'&' if '?' in url else '?'}options={options}"


@contextmanager
def scratch_database() -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped afterwards."""
    url = base_url()
    schema = f"sipmap_test_{uuid.uuid4().hex}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_options(url, f"-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
