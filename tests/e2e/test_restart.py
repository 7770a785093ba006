"""Restarting `sipmap serve` on the same database file: everything is still there."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from .. import oai
from ..conftest import Server, sdk_client, start_server


def state(server: Server, sid: str, token: str) -> dict[str, Any]:
    """Everything an account can list, as raw JSON (URLs included: same host and port)."""
    out: dict[str, Any] = {}
    base = f"/2010-04-01/Accounts/{sid}"
    with server.http(sid, token) as http:
        for path in (
            "/v1/IpRecords?PageSize=1000",
            "/v1/SourceIpMappings?PageSize=1000",
            f"{base}/SIP/Domains.json?PageSize=1000",
            f"{base}/Keys.json?PageSize=1000",
            f"{base}.json",
            "/2010-04-01/Accounts.json?PageSize=1000",
        ):
            response = http.get(path)
            assert response.status_code == 200, response.text
            oai.validate("GET", path.split("?")[0], 200, response.json())
            out[path] = response.json()
    return out


def populate(client: Client, server: Server) -> dict[str, Any]:
    account = client.api.v2010.accounts.create(friendly_name="survivor")
    sub = sdk_client(server, account.sid, account.auth_token)
    key = sub.api.v2010.account.new_keys.create(friendly_name="survivor key")
    records = [
        sub.voice.v1.ip_records.create(
            ip_address=f"192.0.2.{n}", cidr_prefix_length=32, friendly_name=f"r{n}"
        )
        for n in range(1, 6)
    ]
    domain = sub.api.v2010.account.sip.domains.create(
        domain_name=f"r-{uuid.uuid4().hex[:12]}.sip.twilio.com",
        voice_url="https://example.com/voice",
        secure=True,
    )
    mapping = sub.voice.v1.source_ip_mappings.create(
        ip_record_sid=records[0].sid, sip_domain_sid=domain.sid
    )
    sub.voice.v1.ip_records(records[4].sid).delete()  # deletions are durable too
    revoked = sub.api.v2010.account.new_keys.create(friendly_name="revoked")
    sub.api.v2010.account.keys(revoked.sid).delete()
    page = sub.voice.v1.ip_records.page(page_size=2)
    return {
        "account": account,
        "key": key,
        "revoked": revoked,
        "records": records,
        "mapping": mapping,
        "next_page_url": page.next_page_url,
        "page_two": [r.sid for r in page.next_page()],
    }


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_restart_keeps_everything(tmp_path: Path, stop: str) -> None:
    db = tmp_path / "restart.db"
    first = start_server(db)
    try:
        made = populate(sdk_client(first), first)
        account = made["account"]
        before = state(first, account.sid, account.auth_token)
        parent_before = state(first, first.account_sid, first.auth_token)
    finally:
        if stop == "kill":
            # No shutdown at all: what was acknowledged must already be on disk.
            first.process.kill()
            first.process.wait()
        else:
            first.stop()

    second = start_server(db, port=first.port)
    try:
        assert state(second, account.sid, account.auth_token) == before
        assert state(second, second.account_sid, second.auth_token) == parent_before
        assert [r["sid"] for r in before["/v1/IpRecords?PageSize=1000"]["ip_records"]] == [
            r.sid for r in made["records"][:4]
        ]

        # Every credential still works: bootstrap token, subaccount token, API key.
        sub = sdk_client(second, account.sid, account.auth_token)
        key = made["key"]
        with_key = sdk_client(second, key.sid, key.secret, account_sid=account.sid)
        assert [m.sid for m in with_key.voice.v1.source_ip_mappings.list()] == [made["mapping"].sid]
        assert sdk_client(second).api.v2010.accounts(account.sid).fetch().friendly_name == (
            "survivor"
        )
        # ... and a revoked one still does not.
        revoked = made["revoked"]
        gone = sdk_client(second, revoked.sid, revoked.secret, account_sid=account.sid)
        with pytest.raises(TwilioRestException) as info:
            gone.voice.v1.ip_records.create(ip_address="10.0.0.1")
        assert info.value.status == 401

        # A page link handed out before the restart still leads to the same page.
        with second.http(account.sid, account.auth_token) as http:
            body = http.get(made["next_page_url"]).json()
        assert [r["sid"] for r in body["ip_records"]] == made["page_two"]

        # The rules still hold over the reloaded data.
        with pytest.raises(TwilioRestException) as info:
            sub.voice.v1.source_ip_mappings.create(
                ip_record_sid=made["records"][0].sid,
                sip_domain_sid=made["mapping"].sip_domain_sid,
            )
        assert (info.value.status, info.value.code) == (409, 20409)
        # New writes continue after the old ones, in order.
        newer = sub.voice.v1.ip_records.create(ip_address="192.0.2.99")
        assert [r.sid for r in sub.voice.v1.ip_records.list()][-1] == newer.sid
    finally:
        second.stop()


def test_restart_on_another_port(tmp_path: Path) -> None:
    db = tmp_path / "moved.db"
    first = start_server(db)
    try:
        sid = sdk_client(first).api.v2010.accounts.create(friendly_name="kept").sid
    finally:
        first.stop()
    second = start_server(db)
    try:
        assert second.port != first.port
        assert sdk_client(second).api.v2010.accounts(sid).fetch().friendly_name == "kept"
    finally:
        second.stop()
