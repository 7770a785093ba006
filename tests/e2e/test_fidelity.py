"""What SDK users rely on beyond single calls: long lists, and links that resolve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from twilio.rest import Client

from sipmap import testing

from ..conftest import Server, check_against_specs


def test_sdk_list_beyond_the_page_maximum(server: Server, subaccount: tuple[str, str]) -> None:
    """list(limit=N) sends PageSize=N: served as pages of 1000, followed by the SDK."""
    sid, token = subaccount
    with server.http(sid, token) as http, ThreadPoolExecutor(8) as pool:
        created = list(
            pool.map(
                lambda n: (
                    http.post(
                        "/v1/IpRecords", data={"IpAddress": f"10.{n // 256}.{n % 256}.1"}
                    ).status_code
                ),
                range(2600),
            )
        )
    assert set(created) == {201}
    pages: list[tuple[str, int, int]] = []

    def seen(method: str, url: str, response: Any) -> None:
        check_against_specs(method, url, response)
        body = json.loads(response.text)
        pages.append((urlsplit(url).query, body["meta"]["page_size"], len(body["ip_records"])))

    client: Client = testing.twilio_client(server, sid, token, on_response=seen)
    records = client.voice.v1.ip_records.list(limit=2500)
    assert len(records) == 2500
    assert len({r.sid for r in records}) == 2500
    # 2,600 exist: the SDK stops reading in the third page of 1000.
    assert [(size, count) for _, size, count in pages] == [(1000, 1000)] * 2 + [(1000, 600)]
    assert "PageSize=1000" in pages[1][0]  # the next_page_url sipmap gave
    # What the SDK sent first (as a parameter the hook does not see), asked directly:
    with server.http(sid, token) as http:
        meta = http.get("/v1/IpRecords", params={"PageSize": 2500}).json()["meta"]
    assert meta["page_size"] == 1000
    assert "PageSize=1000&Page=0" in meta["url"] and "PageSize=1000" in meta["next_page_url"]


def _links(body: Any) -> Iterator[str]:
    """Every URI or URL a response advertises (resources, pages, subresources)."""
    if isinstance(body, list):
        for item in body:
            yield from _links(item)
    elif isinstance(body, dict):
        for key, value in body.items():
            if key == "subresource_uris":
                yield from value.values()
            elif isinstance(value, str) and (key.endswith(("uri", "url"))):
                yield value
            else:
                yield from _links(value)


def test_every_advertised_link_resolves(server: Server, subaccount: tuple[str, str]) -> None:
    sid, token = subaccount
    client = testing.twilio_client(server, sid, token)
    domain = client.sip.domains.create(
        domain_name=f"links-{sid[-12:]}.sip.twilio.com", voice_url="https://example.com/voice"
    )
    acl = client.sip.ip_access_control_lists.create(friendly_name="links")
    acl.ip_addresses.create(friendly_name="pbx", ip_address="192.0.2.0", cidr_prefix_length=24)
    client.sip.domains(domain.sid).ip_access_control_list_mappings.create(
        ip_access_control_list_sid=acl.sid
    )
    other = client.sip.ip_access_control_lists.create(friendly_name="links 2")
    client.sip.domains(domain.sid).auth.calls.ip_access_control_list_mappings.create(
        ip_access_control_list_sid=other.sid
    )
    record = client.voice.v1.ip_records.create(ip_address="192.0.2.7")
    client.voice.v1.source_ip_mappings.create(ip_record_sid=record.sid, sip_domain_sid=domain.sid)
    client.api.v2010.account.new_keys.create(friendly_name="links")

    own = f"/2010-04-01/Accounts/{sid}"
    pending = [f"{own}.json", "/2010-04-01/Accounts.json", "/v1/IpRecords",
               "/v1/SourceIpMappings", f"{own}/SIP/Domains.json",
               f"{own}/SIP/IpAccessControlLists.json"]  # fmt: skip
    visited: set[str] = set()
    with server.http(sid, token) as http:
        while pending:
            link = pending.pop()
            if link in visited or link.startswith("https://example.com"):
                continue  # the domain's own voice_url is the user's, not sipmap's
            visited.add(link)
            path = link.removeprefix(server.base_url)
            assert path.startswith("/"), link  # relative, or absolute on this server
            response = http.get(path)
            assert response.status_code == 200, (link, response.text)
            body = response.json()
            check_against_specs("GET", server.base_url + path, _Response(response.text, 200))
            pending.extend(_links(body))
    kinds = {urlsplit(link).path.rsplit("/", 1)[-1].split(".")[0][:2] for link in visited}
    # Followed into every kind of resource, not only the lists we started from.
    # (A key has no uri of its own: Twilio's key resource has none.)
    assert {"IL", "IB", "SD", "AL", "IP", "AC"} <= kinds, sorted(visited)


class _Response:
    """The two attributes check_against_specs reads from an SDK response."""

    def __init__(self, text: str, status_code: int) -> None:
        self.text = text
        self.status_code = status_code
