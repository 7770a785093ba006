"""request_uri_host: the host of a SIP Request-URI, as recognition compares it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipmap.recognize.uri import request_uri_host

HOST = "example.sip.twilio.com"


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        # schemes
        ("sip:example.sip.twilio.com", HOST),
        ("sips:example.sip.twilio.com", HOST),
        ("SIP:example.sip.twilio.com", HOST),
        ("SiPs:example.sip.twilio.com", HOST),
        # user-info
        ("sip:alice@example.sip.twilio.com", HOST),
        ("sip:alice:secret@example.sip.twilio.com", HOST),
        ("sip:+15551234567@example.sip.twilio.com", HOST),
        ("sip:%40odd@example.sip.twilio.com", HOST),
        # RFC 3261 §19.1: ';' and '?' are legal in the user part ("user-unreserved")
        ("sip:alice;day=tuesday@example.sip.twilio.com", HOST),
        ("sip:+1-212-555-1212:1234@example.sip.twilio.com;user=phone", HOST),
        ("sip:+15551234;npdi;rn=+15550000@example.sip.twilio.com", HOST),
        ("sip:who?@example.sip.twilio.com", HOST),
        # port
        ("sip:alice@example.sip.twilio.com:5060", HOST),
        ("sips:example.sip.twilio.com:5061", HOST),
        # uri-parameters and headers
        ("sip:alice@example.sip.twilio.com;transport=tcp", HOST),
        ("sip:alice@example.sip.twilio.com:5060;transport=tcp;lr", HOST),
        ("sip:alice@example.sip.twilio.com?subject=project%20x&priority=urgent", HOST),
        ("sip:example.sip.twilio.com;maddr=192.0.2.1?X-Header=a:b", HOST),
        ("sip:alice@example.sip.twilio.com:5060;transport=udp?h=v", HOST),
        # case: DNS names compare case-insensitively, so the host is lowercased
        ("sip:Alice@EXAMPLE.Sip.Twilio.COM", HOST),
        ("sip:ALICE@example.sip.twilio.com", HOST),
        # fully-qualified form with the root dot
        ("sip:alice@example.sip.twilio.com.", HOST),
        ("sip:alice@example.sip.twilio.com.:5060", HOST),
        # surrounding whitespace (a parser may leave it)
        ("  sip:alice@example.sip.twilio.com \t", HOST),
        # IPv4 and IPv6 references
        ("sip:alice@192.0.2.10", "192.0.2.10"),
        ("sip:alice@192.0.2.10:5060;transport=udp", "192.0.2.10"),
        ("sip:[2001:db8::1]", "2001:db8::1"),
        ("sip:alice@[2001:DB8::1]:5060", "2001:db8::1"),
        ("sip:alice@[2001:db8::1];transport=tcp", "2001:db8::1"),
        ("sip:[::ffff:192.0.2.1]:5080", "::ffff:192.0.2.1"),
        # a bare host, with or without user-info and port
        ("example.sip.twilio.com", HOST),
        ("Example.Sip.Twilio.Com:5060", HOST),
        ("alice@example.sip.twilio.com", HOST),
        ("192.0.2.10", "192.0.2.10"),
    ],
)
def test_host(uri: str, host: str) -> None:
    assert request_uri_host(uri) == host


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "   ",
        "sip:",
        "sips:",
        "sip:alice@",
        "sip:alice@:5060",
        "sip:alice@;transport=tcp",
        "sip:[]",
        "sip:[2001:db8::1",  # unterminated reference: no host can be read
        # a tel URI has no host at all: it cannot name a SIP domain
        "tel:+15551234567",
        "tel:+1-201-555-0123;phone-context=example.sip.twilio.com",
        "TEL:5550123",
    ],
)
def test_no_host(uri: str) -> None:
    assert request_uri_host(uri) is None


def test_port_and_parameters_never_change_the_host() -> None:
    plain = request_uri_host("sip:bob@example.sip.twilio.com")
    for suffix in (":5060", ":5061", ":1", ":65535", ";transport=tls", ":5080;lr?x=y"):
        assert request_uri_host(f"sip:bob@example.sip.twilio.com{suffix}") == plain


LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
USER = st.from_regex(r"[A-Za-z0-9+._~!*'()&=$,;?/-]{1,12}", fullmatch=True)
PARAMS = st.from_regex(r"(;[a-z]{1,6}(=[A-Za-z0-9.:-]{1,8})?){0,3}", fullmatch=True)
HEADERS = st.from_regex(
    r"(\?[A-Za-z-]{1,6}=[A-Za-z0-9%:]{0,8}(&[a-z]{1,4}=[a-z0-9]{0,4})?)?", fullmatch=True
)


@given(
    st.sampled_from(["sip", "sips", "SIP", "Sips"]),
    st.none() | USER,
    st.lists(LABEL, min_size=1, max_size=4),
    st.none() | st.integers(1, 65535),
    PARAMS,
    HEADERS,
)
def test_any_well_formed_sip_uri(
    scheme: str,
    user: str | None,
    labels: list[str],
    port: int | None,
    params: str,
    headers: str,
) -> None:
    host = ".".join(labels)
    uri = f"{scheme}:{'' if user is None else user + '@'}{host}"
    uri += f"{'' if port is None else f':{port}'}{params}{headers}"
    assert request_uri_host(uri) == host.lower()


@given(st.text(max_size=40))
def test_never_raises(text: str) -> None:
    host = request_uri_host(text)
    assert host is None or (host and host == host.lower())
