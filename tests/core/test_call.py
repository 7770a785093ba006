"""The API's encoded-response cache (src/sipmap/api/call.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from sipmap.api import render
from sipmap.api.call import MAX_ENCODED, EncodedCache, encode_json
from sipmap.core.models import IpRecord

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RECORD = IpRecord("IL" + "1" * 32, "AC" + "2" * 32, "pbx", "192.0.2.1", 32, T0, T0)
BASE = "http://localhost:8000"


def test_same_bytes_as_rendering_and_encoding() -> None:
    cache = EncodedCache()
    for _ in range(2):
        assert cache.encode(render.ip_record, RECORD, BASE) == encode_json(
            render.ip_record(RECORD, BASE)
        )


def test_entries_are_by_identity_and_base_url() -> None:
    cache = EncodedCache()
    first = cache.encode(render.ip_record, RECORD, BASE)
    assert cache.encode(render.ip_record, RECORD, BASE) is first
    # An equal but distinct object (a row read again) is rendered again.
    assert cache.encode(render.ip_record, replace(RECORD), BASE) is not first
    renamed = replace(RECORD, friendly_name="renamed")
    assert json.loads(cache.encode(render.ip_record, renamed, BASE))["friendly_name"] == "renamed"
    other = json.loads(cache.encode(render.ip_record, RECORD, "https://api.example.com"))
    assert other["url"] == f"https://api.example.com/v1/IpRecords/{RECORD.sid}"


def test_bounded() -> None:
    cache = EncodedCache()
    records = [replace(RECORD, friendly_name=str(n)) for n in range(MAX_ENCODED + 10)]
    for record in records:
        cache.encode(render.ip_record, record, BASE)
    assert len(cache._entries) <= MAX_ENCODED
    assert json.loads(cache.encode(render.ip_record, records[0], BASE))["friendly_name"] == "0"
