"""Bad input of every kind, sent raw: the documented Twilio error, never a 500, and the
stored data unchanged (listed before and after every request)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from .. import oai
from ..conftest import Server

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
A = "/2010-04-01/Accounts"


@dataclass
class Tenant:
    sid: str
    token: str
    record: str = ""
    domain: str = ""
    domain_name: str = ""
    mapping: str = ""
    key: str = ""


@dataclass
class World:
    server: Server
    me: Tenant
    other: Tenant
    # One keep-alive client per tenant: a new httpx.Client costs tens of milliseconds.
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    # Everything both tenants can list, taken once: no bad request may change it, so
    # the state before each case is this one (else an earlier case already failed).
    baseline: dict[str, Any] = field(default_factory=dict)

    def http(self, tenant: Tenant | None = None) -> httpx.Client:
        tenant = tenant or self.me
        if tenant.sid not in self.clients:
            self.clients[tenant.sid] = self.server.http(tenant.sid, tenant.token)
        return self.clients[tenant.sid]

    def fill(self, template: str) -> str:
        me, other = self.me, self.other
        return template.format(
            acct=me.sid,
            rec=me.record,
            rec_hex=me.record[2:],
            dom=me.domain,
            dom_name=me.domain_name,
            map=me.mapping,
            key=me.key,
            other_acct=other.sid,
            other_rec=other.record,
            other_dom=other.domain,
            other_dom_name=other.domain_name,
            other_dom_name_upper=other.domain_name.upper(),
            other_map=other.mapping,
            other_key=other.key,
            parent=self.server.account_sid,
            unknown_rec="IL" + "f" * 32,
            unknown_dom="SD" + "f" * 32,
            unknown_map="IB" + "f" * 32,
            unknown_acct="AC" + "f" * 32,
            unknown_key="SK" + "f" * 32,
        )


def _populate(server: Server, tenant: Tenant) -> None:
    with server.http(tenant.sid, tenant.token) as http:
        # A random host address: mapped networks are unique system-wide, and the session
        # server is shared with other tests.
        address = ".".join(str(b) for b in (10, *uuid.uuid4().bytes[:3]))
        tenant.record = http.post("/v1/IpRecords", data={"IpAddress": address}).json()["sid"]
        tenant.domain_name = f"bad-{uuid.uuid4().hex[:12]}.sip.twilio.com"
        tenant.domain = http.post(
            f"{A}/{tenant.sid}/SIP/Domains.json", data={"DomainName": tenant.domain_name}
        ).json()["sid"]
        tenant.mapping = http.post(
            "/v1/SourceIpMappings",
            data={"IpRecordSid": tenant.record, "SipDomainSid": tenant.domain},
        ).json()["sid"]
        tenant.key = http.post(f"{A}/{tenant.sid}/Keys.json").json()["sid"]


def _subaccount(server: Server, name: str) -> Tenant:
    with server.http() as http:
        body = http.post(f"{A}.json", data={"FriendlyName": name}).json()
    return Tenant(body["sid"], body["auth_token"])


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    me, other = _subaccount(server, "bad-input"), _subaccount(server, "bad-input-other")
    _populate(server, me)
    _populate(server, other)
    world = World(server, me, other)
    world.baseline = snapshot(world)
    yield world
    for http in world.clients.values():
        http.close()


def snapshot(world: World) -> dict[str, Any]:
    """Everything the tenant can list, and the other tenant's things too."""
    out: dict[str, Any] = {}
    for tenant in (world.me, world.other):
        for path in (
            "/v1/IpRecords?PageSize=1000",
            "/v1/SourceIpMappings?PageSize=1000",
            f"{A}/{tenant.sid}/SIP/Domains.json?PageSize=1000",
            f"{A}/{tenant.sid}/Keys.json?PageSize=1000",
            f"{A}/{tenant.sid}.json",
        ):
            response = world.http(tenant).get(path)
            assert response.status_code == 200, (path, response.text)
            out[f"{tenant.sid}{path}"] = response.json()
    return out


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    code: int
    message: str = ""  # a part of the message, after filling in the template
    data: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None


def form(body: bytes | str) -> dict[str, Any]:
    return {"content": body.encode() if isinstance(body, str) else body, "headers": FORM}


def missing(name: str) -> str:
    return f"Missing required parameter {name} in the post body"


IPV4 = "Invalid IpAddress: must be an IPv4 address in dotted decimal notation"
PREFIX = "Invalid CidrPrefixLength: must be an integer from 1 to 32"
PAGE_SIZE = "Invalid PageSize: must be a positive integer"
NOT_UTF8 = "parameters must be UTF-8 encoded"
NF = "was not found"
BIG = "x" * (70 * 1024)


def c(method: str, path: str, status: int, code: int, message: str = "", **kw: Any) -> Case:
    return Case(method, path, status, code, message, **kw)


CASES: dict[str, Case] = {
    # -- IP records: create -------------------------------------------------------------
    "ip-no-body": c("POST", "/v1/IpRecords", 400, 20001, missing("IpAddress")),
    "ip-empty-body": c("POST", "/v1/IpRecords", 400, 20001, missing("IpAddress"), **form("")),
    "ip-empty": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": ""}),
    "ip-blank": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": " "}),
    "ip-octet": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "10.0.0.256"}),
    "ip-short": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "10.0.1"}),
    "ip-zeros": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "010.0.0.1"}),
    "ip-v6": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "::1"}),
    "ip-mapped-v6": c(
        "POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "::ffff:10.0.0.1"}
    ),
    "ip-cidr": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "10.0.0.0/8"}),
    "ip-name": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "localhost"}),
    "ip-nul": c("POST", "/v1/IpRecords", 400, 20001, IPV4, **form("IpAddress=10.0.0.1%00")),
    "ip-arabic": c(
        "POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "\u0661.\u0662.\u0663.\u0664"}
    ),
    "ip-long": c("POST", "/v1/IpRecords", 400, 20001, IPV4, data={"IpAddress": "1" * 5000}),
    **{
        f"prefix-{name}": c(
            "POST",
            "/v1/IpRecords",
            400,
            20001,
            PREFIX,
            data={"IpAddress": "10.0.0.1", "CidrPrefixLength": value},
        )
        for name, value in {
            "33": "33",
            "negative": "-1",
            "huge": "99999999999999999999",
            "text": "abc",
            "empty": "",
            "blank": " ",
            "float": "24.0",
            "exp": "1e1",
            "hex": "0x18",
            "plus": "+24",
            "double-minus": "--5",
            "superscript": "²",
            "arabic": "\u0662\u0664",
            "fullwidth": "\uff12\uff14",
        }.items()
    },
    "ip-friendly-name-long": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        "Invalid FriendlyName: must be at most 255 characters",
        data={"IpAddress": "10.0.0.1", "FriendlyName": "x" * 256},
    ),
    "ip-friendly-name-control": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        "Invalid FriendlyName",
        **form("IpAddress=10.0.0.1&FriendlyName=a%0Ab"),
    ),
    "ip-json": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        missing("IpAddress"),
        content=b'{"IpAddress": "10.0.0.1"}',
        headers={"Content-Type": "application/json"},
    ),
    "ip-text-plain": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        missing("IpAddress"),
        content=b"IpAddress=10.0.0.1",
        headers={"Content-Type": "text/plain"},
    ),
    "ip-multipart": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        missing("IpAddress"),
        content=b'--b\r\nContent-Disposition: form-data; name="IpAddress"\r\n\r\n10.0.0.1\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    ),
    "ip-no-content-type": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        missing("IpAddress"),
        content=b"IpAddress=10.0.0.1",
        headers={"Content-Type": ""},
    ),
    "ip-repeated": c(
        "POST",
        "/v1/IpRecords",
        400,
        20001,
        "Invalid IpAddress: was given more than once",
        **form("IpAddress=10.0.0.1&IpAddress=10.0.0.2"),
    ),
    "ip-not-utf8": c("POST", "/v1/IpRecords", 400, 20001, NOT_UTF8, **form(b"IpAddress=\xff")),
    "ip-not-utf8-escaped": c(
        "POST", "/v1/IpRecords", 400, 20001, NOT_UTF8, **form("IpAddress=10.0.0.1&F=%FF")
    ),
    "ip-surrogate": c(
        "POST", "/v1/IpRecords", 400, 20001, NOT_UTF8, **form("FriendlyName=%ED%A0%80")
    ),
    "ip-oversized": c("POST", "/v1/IpRecords", 413, 20001, "exceeds", **form("IpAddress=" + BIG)),
    # -- IP records: instance ---------------------------------------------------------------
    "ip-update-long-name": c(
        "POST",
        "/v1/IpRecords/{rec}",
        400,
        20001,
        "Invalid FriendlyName",
        data={"FriendlyName": "x" * 256},
    ),
    "ip-update-repeated": c(
        "POST",
        "/v1/IpRecords/{rec}",
        400,
        20001,
        "more than once",
        **form("FriendlyName=a&FriendlyName=b"),
    ),
    "ip-update-not-utf8": c(
        "POST", "/v1/IpRecords/{rec}", 400, 20001, NOT_UTF8, **form(b"FriendlyName=\xc3")
    ),
    "ip-update-oversized": c(
        "POST", "/v1/IpRecords/{rec}", 413, 20001, "exceeds", **form("FriendlyName=" + BIG)
    ),
    **{
        f"ip-{method.lower()}-{name}": c(
            method,
            f"/v1/IpRecords/{sid}",
            404,
            20404,
            f"The requested resource /v1/IpRecords/{sid} was not found",
            **({"data": {"FriendlyName": "hijack"}} if method == "POST" else {}),
        )
        for method in ("GET", "POST", "DELETE")
        for name, sid in {
            "unknown": "{unknown_rec}",
            "other-account": "{other_rec}",
            "malformed": "nope",
            "short": "IL" + "0" * 31,
            "long": "IL" + "0" * 33,
            "lowercase-prefix": "il" + "0" * 32,
            "wrong-prefix": "{dom}",
            "non-hex": "IL" + "g" * 32,
        }.items()
    },
    # -- source IP mappings -------------------------------------------------------------------
    "map-no-body": c("POST", "/v1/SourceIpMappings", 400, 20001, missing("IpRecordSid")),
    "map-no-domain": c(
        "POST",
        "/v1/SourceIpMappings",
        400,
        20001,
        missing("SipDomainSid"),
        data={"IpRecordSid": "{rec}"},
    ),
    "map-no-record": c(
        "POST",
        "/v1/SourceIpMappings",
        400,
        20001,
        missing("IpRecordSid"),
        data={"SipDomainSid": "{dom}"},
    ),
    **{
        f"map-bad-{which}-{name}": c(
            "POST",
            "/v1/SourceIpMappings",
            400,
            20001,
            f"Invalid {'IpRecordSid' if which == 'record' else 'SipDomainSid'}",
            data={
                "IpRecordSid": value if which == "record" else "{rec}",
                "SipDomainSid": value if which == "domain" else "{dom}",
            },
        )
        for which, values in {
            "record": {
                "unknown": "{unknown_rec}",
                "other-account": "{other_rec}",
                "malformed": "IL123",
                "empty": "",
                "wrong-type": "{dom}",
                "lowercase-prefix": "il" + "0" * 32,
            },
            "domain": {
                "unknown": "{unknown_dom}",
                "other-account": "{other_dom}",
                "malformed": "SD123",
                "empty": "",
                "wrong-type": "{rec}",
            },
        }.items()
        for name, value in values.items()
    },
    "map-already-mapped": c(
        "POST",
        "/v1/SourceIpMappings",
        409,
        20409,
        "is already mapped by source IP mapping {map}",
        data={"IpRecordSid": "{rec}", "SipDomainSid": "{dom}"},
    ),
    "map-update-missing": c(
        "POST", "/v1/SourceIpMappings/{map}", 400, 20001, missing("SipDomainSid")
    ),
    "map-update-json": c(
        "POST",
        "/v1/SourceIpMappings/{map}",
        400,
        20001,
        missing("SipDomainSid"),
        content=b'{"SipDomainSid": "x"}',
        headers={"Content-Type": "application/json"},
    ),
    "map-update-unknown-domain": c(
        "POST",
        "/v1/SourceIpMappings/{map}",
        400,
        20001,
        "Invalid SipDomainSid",
        data={"SipDomainSid": "{unknown_dom}"},
    ),
    "map-update-other-domain": c(
        "POST",
        "/v1/SourceIpMappings/{map}",
        400,
        20001,
        "Invalid SipDomainSid",
        data={"SipDomainSid": "{other_dom}"},
    ),
    **{
        f"map-{method.lower()}-{name}": c(
            method,
            f"/v1/SourceIpMappings/{sid}",
            404,
            20404,
            NF,
            **({"data": {"SipDomainSid": "{dom}"}} if method == "POST" else {}),
        )
        for method in ("GET", "POST", "DELETE")
        for name, sid in {
            "unknown": "{unknown_map}",
            "other-account": "{other_map}",
            "malformed": "IB0",
            "wrong-prefix": "{rec}",
        }.items()
    },
    # -- paging -------------------------------------------------------------------------------
    **{
        f"page-size-{name}-{which}": c(
            "GET", f"/v1/{which}?PageSize={value}", 400, 20001, PAGE_SIZE
        )
        for which in ("IpRecords", "SourceIpMappings")
        for name, value in {
            "zero": "0",
            "negative": "-5",
            "text": "ten",
            "empty": "",
            "float": "2.5",
            "superscript": "%C2%B2",
        }.items()
    },
    "page-negative": c("GET", "/v1/IpRecords?Page=-1", 400, 20001, "Invalid Page:"),
    "page-text": c("GET", "/v1/IpRecords?Page=first", 400, 20001, "Invalid Page:"),
    "page-13-digits": c(
        "GET",
        "/v1/IpRecords?Page=1234567890123",
        400,
        20001,
        "Invalid Page: must be an integer from 0 to 999999999999",
    ),
    # Paths are matched as sent: an escaped "/" is not a separator (issue 10, item 9).
    **{
        f"path-escaped-slash-{i}": c("GET", path, 404, 20404, NF)
        for i, path in enumerate(
            [
                "/v1/IpRecords%2F{rec}",
                "/v1/IpRecords%2f{rec}",
                "/v1%2FIpRecords",
                "/v1/SourceIpMappings%2F{map}",
                A + "/{acct}/SIP%2FDomains.json",
                A + "%2F{acct}.json",
                "/v1/IpRecords/%49L{rec_hex}",
            ]
        )
    },
    "page-repeated": c("GET", "/v1/IpRecords?PageSize=1&PageSize=2", 400, 20001, "more than once"),
    "page-not-utf8": c("GET", "/v1/IpRecords?PageToken=%FF", 400, 20001, NOT_UTF8),
    **{
        f"page-token-{name}": c(
            "GET", f"{path}?Page=1&PageToken={token}", 400, 21481, "Invalid PageToken"
        )
        for name, path, token in [
            ("garbage", "/v1/IpRecords", "garbage"),
            ("empty", "/v1/IpRecords", ""),
            ("prefix-only", "/v1/IpRecords", "PA"),
            ("unknown", "/v1/IpRecords", "PA{unknown_rec}"),
            ("other-account", "/v1/IpRecords", "PA{other_rec}"),
            ("other-account-back", "/v1/IpRecords", "PB{other_rec}"),
            ("other-list", "/v1/IpRecords", "PA{map}"),
            ("mapping-other", "/v1/SourceIpMappings", "PA{other_map}"),
            ("domains", A + "/{acct}/SIP/Domains.json", "PA{other_dom}"),
            ("keys", A + "/{acct}/Keys.json", "PA{other_key}"),
            ("accounts", A + ".json", "PA{parent}"),
        ]
    },
    "domains-page-size": c("GET", A + "/{acct}/SIP/Domains.json?PageSize=0", 400, 20001, PAGE_SIZE),
    "keys-page-size": c("GET", A + "/{acct}/Keys.json?PageSize=abc", 400, 20001, PAGE_SIZE),
    "accounts-page-size": c("GET", A + ".json?PageSize=-100000", 400, 20001, PAGE_SIZE),
    # -- SIP domains --------------------------------------------------------------------------
    "dom-no-body": c("POST", A + "/{acct}/SIP/Domains.json", 400, 20001, missing("DomainName")),
    "dom-empty-name": c(
        "POST",
        A + "/{acct}/SIP/Domains.json",
        400,
        20001,
        missing("DomainName"),
        data={"DomainName": ""},
    ),
    **{
        f"dom-name-{name}": c(
            "POST",
            A + "/{acct}/SIP/Domains.json",
            400,
            21232,
            "DomainName",
            data={"DomainName": value},
        )
        for name, value in {
            "suffix": "x.sip.twilio.org",
            "bare": "sip.twilio.com",
            "underscore": "a_b.sip.twilio.com",
            "space": "a b.sip.twilio.com",
            "hyphen-start": "-ab.sip.twilio.com",
            "non-ascii": "ü.sip.twilio.com",
            "kelvin": "\u212a.sip.twilio.com",
            "long-label": "a" * 64 + ".sip.twilio.com",
        }.items()
    },
    **{
        f"dom-name-taken-{name}": c(
            "POST",
            A + "/{acct}/SIP/Domains.json",
            400,
            21232,
            "is already in use",
            data={"DomainName": value},
        )
        for name, value in {
            "own": "{dom_name}",
            "other": "{other_dom_name}",
            "other-upper": "{other_dom_name_upper}",
        }.items()
    },
    **{
        f"dom-{name}": c(
            "POST",
            A + "/{acct}/SIP/Domains.json",
            400,
            20001,
            f"Invalid {param}",
            data={"DomainName": "fresh-{acct}.sip.twilio.com", param: value},
        )
        for name, param, value in [
            ("bool-yes", "SipRegistration", "yes"),
            ("bool-one", "Secure", "1"),
            ("bool-empty", "EmergencyCallingEnabled", ""),
            ("method", "VoiceMethod", "PUT"),
            ("fallback-method", "VoiceFallbackMethod", "get me"),
            ("status-method", "VoiceStatusCallbackMethod", "HEAD"),
            ("url", "VoiceUrl", "example.com"),
            ("url-scheme", "VoiceFallbackUrl", "javascript:alert(1)"),
            ("url-space", "VoiceStatusCallbackUrl", "https://example.com/a b"),
            ("url-long", "VoiceUrl", "https://example.com/" + "x" * 3000),
            ("byoc", "ByocTrunkSid", "BY1"),
            ("caller", "EmergencyCallerSid", "SD" + "0" * 32),
            ("name-long", "FriendlyName", "x" * 65),
        ]
    },
    "dom-repeated": c(
        "POST",
        A + "/{acct}/SIP/Domains.json",
        400,
        20001,
        "more than once",
        **form("DomainName=a.sip.twilio.com&DomainName=b.sip.twilio.com"),
    ),
    "dom-not-utf8": c(
        "POST", A + "/{acct}/SIP/Domains.json", 400, 20001, NOT_UTF8, **form(b"DomainName=\xe9")
    ),
    "dom-json": c(
        "POST",
        A + "/{acct}/SIP/Domains.json",
        400,
        20001,
        missing("DomainName"),
        content=b'{"DomainName": "json.sip.twilio.com"}',
        headers={"Content-Type": "application/json"},
    ),
    "dom-update-taken": c(
        "POST",
        A + "/{acct}/SIP/Domains/{dom}.json",
        400,
        21232,
        "",
        data={"DomainName": "{other_dom_name}"},
    ),
    "dom-update-invalid-name": c(
        "POST", A + "/{acct}/SIP/Domains/{dom}.json", 400, 21232, "", data={"DomainName": ""}
    ),
    "dom-update-bool": c(
        "POST",
        A + "/{acct}/SIP/Domains/{dom}.json",
        400,
        20001,
        "Invalid Secure",
        data={"Secure": "maybe"},
    ),
    **{
        f"dom-{method.lower()}-{name}": c(
            method,
            path,
            404,
            20404,
            NF,
            **({"data": {"FriendlyName": "x"}} if method == "POST" else {}),
        )
        for method in ("GET", "POST", "DELETE")
        for name, path in {
            "unknown": A + "/{acct}/SIP/Domains/{unknown_dom}.json",
            "other-account": A + "/{acct}/SIP/Domains/{other_dom}.json",
            "other-path": A + "/{other_acct}/SIP/Domains/{other_dom}.json",
            "parent-path": A + "/{parent}/SIP/Domains/{dom}.json",
            "malformed": A + "/{acct}/SIP/Domains/SD1.json",
            "no-json-suffix": A + "/{acct}/SIP/Domains/{dom}",
            "malformed-account": A + "/AC1/SIP/Domains/{dom}.json",
        }.items()
    },
    "dom-list-other": c("GET", A + "/{other_acct}/SIP/Domains.json", 404, 20404, NF),
    "dom-create-other": c(
        "POST",
        A + "/{other_acct}/SIP/Domains.json",
        404,
        20404,
        NF,
        data={"DomainName": "intruder-{acct}.sip.twilio.com"},
    ),
    # -- accounts and keys ------------------------------------------------------------------------
    "acct-other": c("GET", A + "/{other_acct}.json", 404, 20404, NF),
    "acct-parent": c("GET", A + "/{parent}.json", 404, 20404, NF),
    "acct-unknown": c("GET", A + "/{unknown_acct}.json", 404, 20404, NF),
    "acct-malformed": c("GET", A + "/ACnope.json", 404, 20404, NF),
    "acct-update-other": c(
        "POST", A + "/{other_acct}.json", 404, 20404, NF, data={"FriendlyName": "x"}
    ),
    "acct-update-status": c(
        "POST", A + "/{acct}.json", 400, 20001, "Invalid Status", data={"Status": "sleeping"}
    ),
    "acct-update-self-suspend": c(
        "POST", A + "/{acct}.json", 400, 20001, "Invalid Status", data={"Status": "suspended"}
    ),
    "acct-update-name": c(
        "POST",
        A + "/{acct}.json",
        400,
        20001,
        "Invalid FriendlyName",
        data={"FriendlyName": "x" * 65},
    ),
    "acct-create-as-sub": c("POST", A + ".json", 403, 20403, "", data={"FriendlyName": "child"}),
    "acct-list-status": c("GET", A + ".json?Status=sleeping", 400, 20001, "Invalid Status"),
    "key-create-name": c(
        "POST",
        A + "/{acct}/Keys.json",
        400,
        20001,
        "Invalid FriendlyName",
        data={"FriendlyName": "k" * 65},
    ),
    "key-create-other": c("POST", A + "/{other_acct}/Keys.json", 404, 20404, NF),
    "key-update-name": c(
        "POST",
        A + "/{acct}/Keys/{key}.json",
        400,
        20001,
        "Invalid FriendlyName",
        data={"FriendlyName": "k\x00"},
    ),
    **{
        f"key-{method.lower()}-{name}": c(method, path, 404, 20404, NF)
        for method in ("GET", "POST", "DELETE")
        for name, path in {
            "unknown": A + "/{acct}/Keys/{unknown_key}.json",
            "other-account": A + "/{acct}/Keys/{other_key}.json",
            "other-path": A + "/{other_acct}/Keys/{other_key}.json",
            "malformed": A + "/{acct}/Keys/SK0.json",
        }.items()
    },
    # -- routing ----------------------------------------------------------------------------------
    "route-unknown": c(
        "GET", "/v1/Nope", 404, 20404, "The requested resource /v1/Nope was not found"
    ),
    "route-root": c("GET", "/", 404, 20404, NF),
    "route-v2": c("GET", "/v2/IpRecords", 404, 20404, NF),
    "route-2010-unknown": c("GET", A + "/{acct}/Calls/Nope.json", 404, 20404, NF),
    "route-trailing-slash": c("GET", "/v1/IpRecords/", 404, 20404, NF),
    "route-trailing-slash-post": c(
        "POST", "/v1/IpRecords/", 404, 20404, NF, data={"IpAddress": "10.0.0.1"}
    ),
    "route-instance-slash": c("GET", "/v1/IpRecords/{rec}/", 404, 20404, NF),
    # A regex "$" also matches before a trailing newline: these must not be routes.
    "route-newline-account": c("GET", A + "/{acct}.json%0A", 404, 20404, NF),
    "route-newline-domains": c("GET", A + "/{acct}/SIP/Domains.json%0A", 404, 20404, NF),
    "route-newline-record": c("DELETE", "/v1/IpRecords/{rec}%0A", 404, 20404, NF),
    "route-nul": c("GET", "/v1/IpRecords/%00", 404, 20404, NF),
    "route-not-utf8": c("GET", "/v1/IpRecords/%FF", 404, 20404, NF),
    "route-long": c("GET", "/v1/IpRecords/" + "I" * 4000, 404, 20404, NF),
    "method-put": c(
        "PUT",
        "/v1/IpRecords",
        405,
        20004,
        "The requested resource /v1/IpRecords does not support the attempted HTTP method PUT",
    ),
    "method-patch": c("PATCH", "/v1/IpRecords/{rec}", 405, 20004, "HTTP method PATCH"),
    "method-delete-list": c("DELETE", "/v1/SourceIpMappings", 405, 20004, "HTTP method DELETE"),
    "method-delete-account": c("DELETE", A + "/{acct}.json", 405, 20004, "HTTP method DELETE"),
    "method-put-domains": c("PUT", A + "/{acct}/SIP/Domains.json", 405, 20004, "PUT"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(world: World, name: str) -> None:
    case = CASES[name]
    path = world.fill(case.path)
    kwargs: dict[str, Any] = {}
    if case.data is not None:
        kwargs["data"] = {k: world.fill(v) for k, v in case.data.items()}
    if case.content is not None:
        kwargs["content"] = case.content
    if case.headers is not None:
        kwargs["headers"] = case.headers
    response = world.http().request(case.method, path, **kwargs)
    assert response.status_code != 500
    assert response.headers.get("content-type") == "application/json"
    assert response.headers["twilio-request-id"].startswith("RQ")
    body = response.json()
    oai.validate_error(response.status_code, body)
    assert (response.status_code, body["code"]) == (case.status, case.code), body
    assert world.fill(case.message) in body["message"]
    if response.status_code == 405:  # RFC 9110 §15.5.6
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert case.method not in allowed
        assert "OPTIONS" in allowed and len(allowed) >= 2
    assert snapshot(world) == world.baseline


# -- good input that looks odd ---------------------------------------------------------------


def test_uppercase_hex_is_the_same_resource(world: World) -> None:
    me = world.me
    http = world.http()
    for lower, path in [
        (f"/v1/IpRecords/{me.record}", f"/v1/IpRecords/IL{me.record[2:].upper()}"),
        (
            f"/v1/SourceIpMappings/{me.mapping}",
            f"/v1/SourceIpMappings/IB{me.mapping[2:].upper()}",
        ),
        (
            f"{A}/{me.sid}/SIP/Domains/{me.domain}.json",
            f"{A}/AC{me.sid[2:].upper()}/SIP/Domains/SD{me.domain[2:].upper()}.json",
        ),
        (f"{A}/{me.sid}/Keys/{me.key}.json", f"{A}/{me.sid}/Keys/SK{me.key[2:].upper()}.json"),
        (f"{A}/{me.sid}.json", f"{A}/AC{me.sid[2:].upper()}.json"),
    ]:
        canonical, shouted = http.get(lower), http.get(path)
        assert canonical.status_code == shouted.status_code == 200
        assert canonical.json()["sid"] == shouted.json()["sid"]


def test_unknown_parameters_are_ignored(sub_client: Any, server: Server) -> None:
    with server.http(sub_client.username, sub_client.password) as http:
        created = http.post(
            "/v1/IpRecords",
            data={
                "IpAddress": "10.98.0.1",
                "Sid": "IL" + "0" * 32,
                "AccountSid": world_sid(),
                "X": "",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        oai.validate("POST", "/v1/IpRecords", 201, body)
        assert body["account_sid"] == sub_client.account_sid
        assert body["sid"] != "IL" + "0" * 32


def test_a_repeated_unknown_parameter_is_ignored(sub_client: Any, server: Server) -> None:
    with server.http(sub_client.username, sub_client.password) as http:
        created = http.post(
            "/v1/IpRecords",
            content=b"IpAddress=10.98.0.2&Foo=1&Foo=2&Foo=3",
            headers=FORM,
        )
        assert created.status_code == 201, created.text
        repeated_known = http.post(
            "/v1/IpRecords", content=b"IpAddress=10.98.0.3&IpAddress=10.98.0.4", headers=FORM
        )
        assert repeated_known.status_code == 400
        assert "IpAddress" in repeated_known.json()["message"]


def test_405_names_the_allowed_methods(server: Server) -> None:
    with server.http() as http:
        response = http.request("PUT", "/v1/IpRecords")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
        response = http.request("PATCH", "/v1/IpRecords/IL" + "0" * 32)
        assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, POST"


def world_sid() -> str:
    return "AC" + "e" * 32


def test_form_with_charset_and_query_on_post(sub_client: Any, server: Server) -> None:
    with server.http(sub_client.username, sub_client.password) as http:
        response = http.post(
            "/v1/IpRecords?IpAddress=10.0.0.9&CidrPrefixLength=1",
            content=b"IpAddress=10.97.0.1&FriendlyName=%C3%A9t%C3%A9+%E2%98%8E",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    # Parameters come from the body only; the text survives as UTF-8.
    assert (body["ip_address"], body["cidr_prefix_length"]) == ("10.97.0.1", 32)
    assert body["friendly_name"] == "été ☎"
    assert "été ☎".encode() in response.content  # UTF-8 on the wire, not \\u escapes


def test_response_headers(sub_client: Any, server: Server) -> None:
    with server.http(sub_client.username, sub_client.password) as http:
        ids = set()
        for response in (
            http.get("/v1/IpRecords"),
            http.get("/v1/IpRecords/IL" + "0" * 32),
            http.post("/v1/IpRecords"),
        ):
            request_id = response.headers["twilio-request-id"]
            assert len(request_id) == 34 and request_id.startswith("RQ")
            int(request_id[2:], 16)
            ids.add(request_id)
            float(response.headers["twilio-request-duration"])
            assert response.headers["content-type"] == "application/json"
        assert len(ids) == 3
        created = http.post("/v1/IpRecords", data={"IpAddress": "10.96.0.1"})
        deleted = http.delete(f"/v1/IpRecords/{created.json()['sid']}")
        assert (created.status_code, deleted.status_code) == (201, 204)
        assert deleted.content == b""
        assert deleted.headers["twilio-request-id"].startswith("RQ")
        preflight = http.options(
            "/v1/IpRecords",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
