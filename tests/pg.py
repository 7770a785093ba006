"""Scratch PostgreSQL schemas for tests: each its own empty database, as far as sipmap sees.

The server is the local one CI starts (`.ci/run`); SIPMAP_TEST_POSTGRES overrides its URL.
A server that is not there fails the tests that need it: nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

BASE_URL = os.environ.get("SIPMAP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped afterwards."""
    schema = f"sipmap_test_{uuid.uuid4().hex}"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{BASE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
