"""Deleted items' places are forgotten once no page token can need them (issue 10, finding 10)."""

from __future__ import annotations

import time
from pathlib import Path

from ..conftest import start_server


def test_a_token_naming_a_deleted_item_works_for_its_lifetime_then_is_pruned(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "tomb.db", "--page-token-lifetime", "2")
    try:
        with server.http() as http:
            made = [
                http.post("/v1/IpRecords", data={"IpAddress": f"10.0.0.{n}"}).json()["sid"]
                for n in range(3)
            ]
            page = http.get("/v1/IpRecords", params={"PageSize": 1}).json()
            next_url = page["meta"]["next_page_url"]
            assert next_url.endswith(f"PageToken=PA{made[0]}")
            assert http.delete(f"/v1/IpRecords/{made[0]}").status_code == 204
            # Within the token's lifetime the walk resumes where it was.
            resumed = http.get(next_url)
            assert resumed.status_code == 200, resumed.text
            assert [r["sid"] for r in resumed.json()["ip_records"]] == [made[1]]
            # Past it, the server forgets the place (polled: pruning runs in the background).
            deadline = time.monotonic() + 30
            while (answer := http.get(next_url)).status_code == 200:
                assert time.monotonic() < deadline, "the tombstone was never pruned"
                time.sleep(0.2)
            assert (answer.status_code, answer.json()["code"]) == (400, 21481)
            # Tokens naming items that still exist are unaffected.
            page = http.get("/v1/IpRecords", params={"PageSize": 1}).json()
            assert http.get(page["meta"]["next_page_url"]).status_code == 200
    finally:
        server.stop()
