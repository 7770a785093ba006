"""The official SDK against a real server: accounts, subaccounts, API keys and authentication."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from .. import oai
from ..conftest import Server, sdk_client

ACCOUNT_FIELDS = [
    "auth_token",
    "date_created",
    "date_updated",
    "friendly_name",
    "owner_account_sid",
    "sid",
    "status",
    "subresource_uris",
    "type",
    "uri",
]
KEY_FIELDS = ["sid", "friendly_name", "date_created", "date_updated"]
HEX32 = re.compile(r"[0-9a-f]{32}")


def error_of(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


def list_status(call: Any) -> int:
    """The HTTP status of a failed list (the SDK raises a bare TwilioException for pages)."""
    with pytest.raises(TwilioException) as info:
        call()
    return int(info.value.args[1].status_code)


def new_subaccount(client: Client, server: Server, name: str = "sibling") -> Client:
    account = client.api.v2010.accounts.create(friendly_name=name)
    return sdk_client(server, account.sid, account.auth_token)


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- accounts --------------------------------------------------------------------------------


def test_create_subaccount(client: Client, server: Server) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    account = client.api.v2010.accounts.create(friendly_name=name)
    assert account.sid.startswith("AC") and HEX32.fullmatch(account.sid[2:])
    assert account.owner_account_sid == server.account_sid
    assert (account.friendly_name, account.status, account.type) == (name, "active", "Full")
    assert account.auth_token and len(account.auth_token) >= 32
    assert isinstance(account.date_created, datetime)
    base = f"/2010-04-01/Accounts/{account.sid}"
    assert account.uri == f"{base}.json"
    assert account.subresource_uris["keys"] == f"{base}/Keys.json"
    # The token is shown once: never again, to the parent or to the subaccount itself.
    assert client.api.v2010.accounts(account.sid).fetch().auth_token is None
    sub = sdk_client(server, account.sid, account.auth_token)
    itself = sub.api.v2010.accounts(account.sid).fetch()
    assert (itself.sid, itself.friendly_name, itself.auth_token) == (account.sid, name, None)
    with server.http(account.sid, account.auth_token) as http:
        body = http.get(f"{base}.json").json()
    assert list(body) == ACCOUNT_FIELDS


def test_default_friendly_name(client: Client) -> None:
    account = client.api.v2010.accounts.create()
    # Twilio's documented default: "SubAccount Created at {YYYY-MM-DD HH:MM meridian}",
    # a 12-hour clock (a 24-hour "13:05 PM" would not parse here).
    when = datetime.strptime(account.friendly_name, "SubAccount Created at %Y-%m-%d %I:%M %p")
    created = account.date_created.replace(second=0, tzinfo=None)
    assert abs((when - created).total_seconds()) <= 60


def test_list_accounts(client: Client, server: Server, subaccount: tuple[str, str]) -> None:
    sub_sid, token = subaccount
    name = f"listed-{uuid.uuid4().hex}"
    named = client.api.v2010.accounts.create(friendly_name=name)
    # The parent sees itself and its subaccounts; filters narrow that.
    assert [a.sid for a in client.api.v2010.accounts.list(friendly_name=name)] == [named.sid]
    everyone = {a.sid for a in client.api.v2010.accounts.stream(page_size=50)}
    assert {server.account_sid, sub_sid, named.sid} <= everyone
    assert all(a.auth_token is None for a in client.api.v2010.accounts.list(limit=5))
    active = {a.sid for a in client.api.v2010.accounts.list(status="active", page_size=1000)}
    assert named.sid in active
    assert client.api.v2010.accounts.list(status="closed", friendly_name=name) == []
    # A subaccount sees only itself.
    sub = sdk_client(server, sub_sid, token)
    assert [a.sid for a in sub.api.v2010.accounts.list()] == [sub_sid]


def test_list_accounts_paging(client: Client) -> None:
    name = f"paged-{uuid.uuid4().hex}"
    made = [client.api.v2010.accounts.create(friendly_name=name).sid for _ in range(3)]
    listed = [a.sid for a in client.api.v2010.accounts.stream(friendly_name=name, page_size=2)]
    assert listed == made
    page = client.api.v2010.accounts.page(friendly_name=name, page_size=2)
    assert "FriendlyName=" in page.next_page_url  # the filter survives paging


def test_invalid_status_filter(client: Client) -> None:
    assert list_status(lambda: client.api.v2010.accounts.list(status="asleep")) == 400


def test_update_account(client: Client, server: Server, subaccount: tuple[str, str]) -> None:
    sub_sid, token = subaccount
    renamed = client.api.v2010.accounts(sub_sid).update(friendly_name="renamed by parent")
    assert renamed.friendly_name == "renamed by parent" and renamed.auth_token is None
    sub = sdk_client(server, sub_sid, token)
    assert sub.api.v2010.accounts(sub_sid).update(friendly_name="mine").friendly_name == "mine"
    error = error_of(lambda: sub.api.v2010.accounts(sub_sid).update(friendly_name="x" * 65))
    assert (error.status, error.code) == (400, 20001)
    assert client.api.v2010.accounts(sub_sid).fetch().friendly_name == "mine"


def test_suspend_and_reactivate(client: Client, server: Server) -> None:
    sub = new_subaccount(client, server, "suspended")
    sid = sub.account_sid
    record = sub.voice.v1.ip_records.create(ip_address="10.40.0.1")
    key = sub.api.v2010.account.new_keys.create()
    with_key = sdk_client(server, key.sid, key.secret, account_sid=sid)
    assert with_key.voice.v1.ip_records(record.sid).fetch().sid == record.sid
    assert client.api.v2010.accounts(sid).update(status="suspended").status == "suspended"
    # Its credentials, token and keys, stop working at once; the parent still sees it.
    for who in (sub, with_key):
        error = error_of(who.voice.v1.ip_records(record.sid).fetch)
        assert (error.status, error.code) == (401, 20005)
    assert client.api.v2010.accounts(sid).fetch().status == "suspended"
    assert client.api.v2010.accounts(sid).update(status="active").status == "active"
    assert sub.voice.v1.ip_records(record.sid).fetch().sid == record.sid
    assert with_key.voice.v1.ip_records(record.sid).fetch().sid == record.sid


def test_closed_is_final(client: Client, server: Server) -> None:
    sub = new_subaccount(client, server, "closed")
    sid = sub.account_sid
    assert client.api.v2010.accounts(sid).update(status="closed").status == "closed"
    error = error_of(lambda: client.api.v2010.accounts(sid).update(status="active"))
    assert (error.status, error.code) == (400, 20001)
    assert client.api.v2010.accounts(sid).fetch().status == "closed"
    assert error_of(sub.api.v2010.accounts(sid).fetch).status == 401


def test_an_account_cannot_change_its_own_status(client: Client, sub_client: Client) -> None:
    for who in (client, sub_client):
        error = error_of(
            lambda w=who: w.api.v2010.accounts(w.account_sid).update(status="suspended")
        )
        assert (error.status, error.code) == (400, 20001)
        assert who.api.v2010.accounts(who.account_sid).fetch().status == "active"
    error = error_of(lambda: client.api.v2010.accounts(client.account_sid).update(status="paused"))
    assert (error.status, error.code) == (400, 20001)


def test_subaccounts_cannot_create_subaccounts(sub_client: Client) -> None:
    error = error_of(lambda: sub_client.api.v2010.accounts.create(friendly_name="grandchild"))
    assert error.status == 403
    assert [a.sid for a in sub_client.api.v2010.accounts.list()] == [sub_client.account_sid]


def test_accounts_are_invisible_to_other_accounts(
    client: Client, server: Server, sub_client: Client
) -> None:
    sibling = new_subaccount(client, server)
    for target in (client.account_sid, sibling.account_sid, "AC" + uuid.uuid4().hex):
        for call in (
            sub_client.api.v2010.accounts(target).fetch,
            lambda t=target: sub_client.api.v2010.accounts(t).update(friendly_name="x"),
        ):
            error = error_of(call)
            assert (error.status, error.code) == (404, 20404)
    assert sibling.api.v2010.accounts(sibling.account_sid).fetch().friendly_name == "sibling"
    # Nor can a subaccount act on its parent's or sibling's 2010 paths.
    for target in (client.account_sid, sibling.account_sid):
        assert list_status(sub_client.api.v2010.accounts(target).keys.list) == 404
        assert list_status(sub_client.api.v2010.accounts(target).sip.domains.list) == 404
        error = error_of(sub_client.api.v2010.accounts(target).new_keys.create)
        assert error.status == 404


# -- API keys ------------------------------------------------------------------------------------


def test_key_lifecycle(sub_client: Client, server: Server) -> None:
    created = sub_client.api.v2010.account.new_keys.create(friendly_name="deploy")
    assert created.sid.startswith("SK") and HEX32.fullmatch(created.sid[2:])
    assert created.friendly_name == "deploy"
    assert created.secret and len(created.secret) >= 32
    keys = sub_client.api.v2010.account.keys
    fetched = keys(created.sid).fetch()
    assert (fetched.sid, fetched.friendly_name) == (created.sid, "deploy")
    assert fetched.date_created == created.date_created
    assert [k.sid for k in keys.list()] == [created.sid]
    with server.http(sub_client.username, sub_client.password) as http:
        uri = f"/2010-04-01/Accounts/{sub_client.account_sid}/Keys"
        body = http.get(f"{uri}/{created.sid}.json").json()
        assert list(body) == KEY_FIELDS  # the secret is shown once, on create
        listed = http.get(f"{uri}.json").json()
        assert "secret" not in listed["keys"][0]
        oai.validate("GET", f"{uri}.json", 200, listed)

    updated = keys(created.sid).update(friendly_name="deploy, renamed")
    assert updated.friendly_name == "deploy, renamed"
    assert keys(created.sid).fetch().friendly_name == "deploy, renamed"
    error = error_of(lambda: keys(created.sid).update(friendly_name="x" * 65))
    assert (error.status, error.code) == (400, 20001)

    assert keys(created.sid).delete() is True
    for call in (keys(created.sid).fetch, keys(created.sid).delete):
        error = error_of(call)
        assert (error.status, error.code) == (404, 20404)
    assert keys.list() == []


def test_key_without_a_name(sub_client: Client) -> None:
    key = sub_client.api.v2010.account.new_keys.create()
    assert key.friendly_name is None
    assert sub_client.api.v2010.account.keys(key.sid).fetch().friendly_name is None


def test_keys_paging(sub_client: Client) -> None:
    made = [
        sub_client.api.v2010.account.new_keys.create(friendly_name=str(n)).sid for n in range(5)
    ]
    assert [k.sid for k in sub_client.api.v2010.account.keys.stream(page_size=2)] == made


def test_key_authenticates_as_its_account(sub_client: Client, server: Server) -> None:
    record = sub_client.voice.v1.ip_records.create(ip_address="10.41.0.1")
    key = sub_client.api.v2010.account.new_keys.create(friendly_name="ci")
    with_key = sdk_client(server, key.sid, key.secret, account_sid=sub_client.account_sid)
    assert [r.sid for r in with_key.voice.v1.ip_records.list()] == [record.sid]
    made = with_key.voice.v1.ip_records.create(ip_address="10.41.0.2")
    assert made.account_sid == sub_client.account_sid
    domain = with_key.api.v2010.account.sip.domains.create(
        domain_name=f"k-{uuid.uuid4().hex[:12]}.sip.twilio.com"
    )
    assert domain.account_sid == sub_client.account_sid
    # The SID's hex is case-insensitive in the username too.
    upper = sdk_client(server, "SK" + key.sid[2:].upper(), key.secret, sub_client.account_sid)
    assert len(upper.voice.v1.ip_records.list()) == 2


def test_deleted_key_stops_working(sub_client: Client, server: Server) -> None:
    key = sub_client.api.v2010.account.new_keys.create(friendly_name="short-lived")
    with_key = sdk_client(server, key.sid, key.secret, account_sid=sub_client.account_sid)
    assert with_key.voice.v1.ip_records.list() == []
    sub_client.api.v2010.account.keys(key.sid).delete()
    error = error_of(lambda: with_key.voice.v1.ip_records.create(ip_address="10.0.0.1"))
    assert (error.status, error.code) == (401, 20003)
    with httpx.Client(base_url=server.base_url) as http:
        response = http.get("/v1/IpRecords", headers=basic(key.sid, key.secret))
    assert response.status_code == 401
    assert sub_client.voice.v1.ip_records.list() == []


def test_key_secret_is_the_only_password(sub_client: Client, server: Server) -> None:
    key = sub_client.api.v2010.account.new_keys.create()
    other = sub_client.api.v2010.account.new_keys.create()
    with httpx.Client(base_url=server.base_url) as http:
        for username, password in [
            (key.sid, other.secret),  # another key's secret
            (key.sid, sub_client.password),  # the account's token
            (sub_client.account_sid, key.secret),  # the key's secret as the account's token
            (key.sid, key.secret.upper()),
            (key.sid, key.secret + " "),
            (key.sid, ""),
        ]:
            response = http.get("/v1/IpRecords", headers=basic(username, password))
            assert response.status_code == 401, (username, password)
            assert response.json()["code"] == 20003


def test_parent_manages_subaccount_keys(
    client: Client, server: Server, subaccount: tuple[str, str]
) -> None:
    sub_sid, token = subaccount
    key = client.api.v2010.accounts(sub_sid).new_keys.create(friendly_name="by parent")
    sub = sdk_client(server, sub_sid, token)
    assert [k.sid for k in sub.api.v2010.account.keys.list()] == [key.sid]
    # The key is the subaccount's: it acts as the subaccount, not as the parent.
    with_key = sdk_client(server, key.sid, key.secret, account_sid=sub_sid)
    record = with_key.voice.v1.ip_records.create(ip_address="10.42.0.1")
    assert record.account_sid == sub_sid
    assert error_of(client.voice.v1.ip_records(record.sid).fetch).status == 404
    # Keys never reach Accounts or Keys resources (Twilio's standard keys), whoever's.
    assert list_status(with_key.api.v2010.accounts(client.account_sid).keys.list) == 401
    client.api.v2010.accounts(sub_sid).keys(key.sid).delete()
    assert sub.api.v2010.account.keys.list() == []


def test_keys_are_invisible_to_other_accounts(client: Client, server: Server) -> None:
    one, two = new_subaccount(client, server, "one"), new_subaccount(client, server, "two")
    key = one.api.v2010.account.new_keys.create(friendly_name="one's")
    for call in (
        two.api.v2010.account.keys(key.sid).fetch,
        lambda: two.api.v2010.account.keys(key.sid).update(friendly_name="stolen"),
        two.api.v2010.account.keys(key.sid).delete,
        two.api.v2010.accounts(one.account_sid).keys(key.sid).fetch,
        client.api.v2010.account.keys(key.sid).fetch,  # the parent's own path
    ):
        error = error_of(call)
        assert (error.status, error.code) == (404, 20404)
    assert one.api.v2010.account.keys(key.sid).fetch().friendly_name == "one's"


# -- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authentication Error - No credentials provided"),
        ({"Authorization": ""}, "Authentication Error - No credentials provided"),
        ({"Authorization": "Basic"}, "Authentication Error - invalid username"),
        ({"Authorization": "Basic !!!notbase64"}, "Authentication Error - invalid username"),
        ({"Authorization": "Bearer abc"}, "Authentication Error - invalid username"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            "Authentication Error - invalid username",
        ),
        (
            {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
            "Authentication Error - invalid username",
        ),
        (basic("AC" + "f" * 32, "whatever"), "Authentication Error - invalid username"),
        (basic("someone", "whatever"), "Authentication Error - invalid username"),
        (basic("", ""), "Authentication Error - invalid username"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/IpRecords"),
        ("POST", "/v1/SourceIpMappings"),
        ("GET", "/2010-04-01/Accounts.json"),
        ("DELETE", "/v1/IpRecords/IL" + "0" * 32),
    ],
)
def test_unauthenticated(
    server: Server, headers: dict[str, str], message: str, method: str, path: str
) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        response = http.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    body = response.json()
    oai.validate_error(401, body)
    # The 2010 API says only "Authenticate" (recorded traffic); Voice v1 says what failed.
    expected = "Authenticate" if path.startswith("/2010-04-01/") else message
    assert (body["code"], body["message"]) == (20003, expected)


def test_wrong_password(server: Server, subaccount: tuple[str, str]) -> None:
    sub_sid, token = subaccount
    with httpx.Client(base_url=server.base_url) as http:
        for password in ("wrong", token[:-1], token.upper(), server.auth_token):
            response = http.get("/v1/IpRecords", headers=basic(sub_sid, password))
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Basic realm="Twilio API"'
            assert response.json()["message"] == "Authentication Error - invalid username"
        assert http.get("/v1/IpRecords", headers=basic(sub_sid, token)).status_code == 200
        upper = "AC" + sub_sid[2:].upper()
        assert http.get("/v1/IpRecords", headers=basic(upper, token)).status_code == 200


def test_sdk_with_wrong_password(server: Server, subaccount: tuple[str, str]) -> None:
    wrong = sdk_client(server, subaccount[0], "not-the-token")
    error = error_of(lambda: wrong.voice.v1.ip_records.create(ip_address="10.0.0.1"))
    assert (error.status, error.code) == (401, 20003)


def test_api_keys_cannot_manage_accounts_or_keys(
    server: Server, sub_client: Client, subaccount: tuple[str, str]
) -> None:
    sub_sid, _ = subaccount
    key = sub_client.api.v2010.account.new_keys.create(friendly_name="leaked")
    with_key = sdk_client(server, key.sid, key.secret, account_sid=sub_sid)
    for call in (
        lambda: with_key.api.v2010.account.new_keys.create(friendly_name="replacement"),
        lambda: with_key.api.v2010.accounts.create(friendly_name="escape"),
        with_key.api.v2010.account.fetch,
        lambda: with_key.api.v2010.account.update(friendly_name="renamed"),
        with_key.api.v2010.account.keys(key.sid).fetch,
        with_key.api.v2010.account.keys(key.sid).delete,
    ):
        error = error_of(call)
        # Twilio's answer to a standard key there (twilio-python issue 259).
        assert (error.status, error.code) == (401, 20003)
        assert error.msg.endswith("Authenticate")
    assert list_status(with_key.api.v2010.account.keys.list) == 401
    # Everything else works with the key.
    assert with_key.api.v2010.account.sip.domains.list() == []
    assert [k.sid for k in sub_client.api.v2010.account.keys.list()] == [key.sid]
