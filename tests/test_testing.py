"""sipmap.testing, used the way a user's own test suite would use it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException

from sipmap import testing
from sipmap.testing import redirect, sipmap_server, twilio_client


def test_a_user_suite_can_provision_against_a_throwaway_server(tmp_path: Path) -> None:
    seen: list[tuple[str, str, int]] = []
    with sipmap_server(tmp_path / "sipmap.db") as server:
        client = twilio_client(
            server, on_response=lambda method, url, r: seen.append((method, url, r.status_code))
        )
        domain = client.sip.domains.create(domain_name="ci.sip.twilio.com")
        record = client.voice.v1.ip_records.create(ip_address="192.0.2.10")
        mapping = client.voice.v1.source_ip_mappings.create(
            ip_record_sid=record.sid, sip_domain_sid=domain.sid
        )
        assert client.voice.v1.source_ip_mappings(mapping.sid).fetch().sip_domain_sid == domain.sid
        with pytest.raises(TwilioRestException) as error:
            twilio_client(server, server.account_sid, "wrong").voice.v1.ip_records(
                record.sid
            ).fetch()
        assert (error.value.status, error.value.code) == (401, 20003)
        # The hook saw the client's responses, at the redirected URLs.
        assert seen[0] == ("POST", f"{server.base_url}/2010-04-01/Accounts/"
                           f"{server.account_sid}/SIP/Domains.json", 201)  # fmt: skip
        assert len(seen) == 4
        process = server.process
    assert process.poll() is not None  # stopped on leaving the block


@pytest.mark.parametrize("edge", [(), ("--sip-port", "0")], ids=["edge", "no-edge"])
def test_a_port_taken_before_the_server_binds_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edge: tuple[str, ...]
) -> None:
    # Another process takes the port between free_port() and the server's bind, as
    # happens with suites run in parallel: the server exits 5 and gets another port.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = [taken.getsockname()[1]]
        real = testing.free_port
        monkeypatch.setattr(testing, "free_port", lambda: ports.pop() if ports else real())
        with sipmap_server(tmp_path / "sipmap.db", *edge) as server:
            assert server.port != taken.getsockname()[1]
            assert not ports  # the taken port was tried first


def test_redirect_only_rewrites_twilio_hosts() -> None:
    base = "http://127.0.0.1:9"
    assert redirect("https://voice.twilio.com/v1/IpRecords", base) == f"{base}/v1/IpRecords"
    assert redirect("https://api.twilio.com/2010-04-01/Accounts.json", base) == (
        f"{base}/2010-04-01/Accounts.json"
    )
    # Regions and edges change the host; the path is what sipmap serves.
    assert redirect("https://voice.dublin.ie1.twilio.com/v1/IpRecords?PageSize=5", base) == (
        f"{base}/v1/IpRecords?PageSize=5"
    )
    assert redirect("https://example.com/x", base) == "https://example.com/x"
    assert redirect("https://twilio.com.example.com/x", base) == "https://twilio.com.example.com/x"
