"""Field validation rules (src/sipmap/core/validation.py)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipmap.core import validation
from sipmap.core.errors import InvalidParameter


def rejects(fn: object, *args: object, **kwargs: object) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


# -- IPv4 addresses --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0.0.0.0", "10.1.2.3", "255.255.255.255", "192.168.0.1"])
def test_ipv4_address_is_returned_as_given(value: str) -> None:
    assert validation.ipv4_address("ip_address", value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        " 10.0.0.1",
        "10.0.0.1 ",
        "10.0.0",
        "10.0.0.1.1",
        "256.0.0.1",
        "010.0.0.1",  # leading zeros are ambiguous (octal in some parsers)
        "10.0.0.1/24",
        "::1",
        "::ffff:10.0.0.1",
        "example.com",
        "10.0.0.\u0661",
        "\uff11.2.3.4",
        "10.0.0.1\x00",
    ],
)
def test_ipv4_address_rejects(value: str) -> None:
    error = rejects(validation.ipv4_address, "ip_address", value)
    assert error.field == "ip_address"
    assert "IPv4" in error.rule
    assert (error.status, error.code) == (400, 20001)


# -- prefix lengths --------------------------------------------------------------------


def test_prefix_length_zero_means_a_host() -> None:
    assert validation.prefix_length("cidr_prefix_length", 0) == 32


@pytest.mark.parametrize("value", [1, 8, 24, 31, 32])
def test_prefix_length_in_range(value: int) -> None:
    assert validation.prefix_length("cidr_prefix_length", value) == value


@pytest.mark.parametrize("value", [-1, 33, 64, 10**12])
def test_prefix_length_out_of_range(value: int) -> None:
    error = rejects(validation.prefix_length, "cidr_prefix_length", value)
    assert error.rule == "must be an integer from 1 to 32"


# -- free text ---------------------------------------------------------------------------


def test_text_limits() -> None:
    assert validation.text("friendly_name", "x" * 255, max_length=255) == "x" * 255
    assert validation.text("friendly_name", "été ☎", max_length=5) == "été ☎"
    assert validation.text("friendly_name", "a\tb", max_length=5) == "a\tb"
    assert validation.text("friendly_name", "", max_length=5) == ""
    error = rejects(validation.text, "friendly_name", "x" * 256, max_length=255)
    assert error.rule == "must be at most 255 characters"


@pytest.mark.parametrize("value", ["a\x00b", "line\nbreak", "cr\r", "\x1b[31m"])
def test_text_rejects_control_characters(value: str) -> None:
    assert "control" in rejects(validation.text, "friendly_name", value, max_length=64).rule


@given(st.text(st.characters(max_codepoint=0x7F), max_size=8) | st.text(max_size=8))
def test_text_accepts_exactly_the_strings_without_c0_controls_but_tab(value: str) -> None:
    expected = not any(ord(c) < 0x20 and c != "\t" for c in value)
    try:
        validation.text("f", value, max_length=64)
    except InvalidParameter:
        assert not expected
    else:
        assert expected


def test_text_required() -> None:
    assert "empty" in rejects(validation.text, "f", "  ", max_length=5, required=True).rule


# -- URLs and methods -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["https://example.com/voice", "http://example.com:8080/a?b=c#d", "https://[::1]/x"],
)
def test_http_url(value: str) -> None:
    assert validation.http_url("voice_url", value) == value


def test_http_url_empty_clears() -> None:
    assert validation.http_url("voice_url", "") is None


@pytest.mark.parametrize(
    "value",
    [
        "example.com/voice",
        "ftp://example.com/",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "http://[::1",
        "https://example.com/a b",
        "https://example.com/\n",
        "https://example.com/" + "x" * 2048,
    ],
)
def test_http_url_rejects(value: str) -> None:
    assert rejects(validation.http_url, "voice_url", value).field == "voice_url"


@pytest.mark.parametrize(("value", "method"), [("GET", "GET"), ("post", "POST"), ("Get", "GET")])
def test_http_method(value: str, method: str) -> None:
    assert validation.http_method("voice_method", value) == method


@pytest.mark.parametrize("value", ["", "PUT", "DELETE", "G ET", "GETX"])
def test_http_method_rejects(value: str) -> None:
    assert rejects(validation.http_method, "voice_method", value).rule == "must be GET or POST"


# -- SIP domain names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("acme.sip.twilio.com", "acme.sip.twilio.com"),
        ("Acme-1.SIP.Twilio.com", "acme-1.sip.twilio.com"),
        ("0.sip.twilio.com", "0.sip.twilio.com"),
        ("a" * 63 + ".sip.twilio.com", "a" * 63 + ".sip.twilio.com"),
    ],
)
def test_sip_domain_name(value: str, name: str) -> None:
    assert validation.sip_domain_name("domain_name", value, suffix="sip.twilio.com") == name


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sip.twilio.com",
        ".sip.twilio.com",
        "acme.sip.twilio.org",
        "acmesip.twilio.com",
        "-acme.sip.twilio.com",
        "acme-.sip.twilio.com",
        "ac_me.sip.twilio.com",
        "ac me.sip.twilio.com",
        "acme..sip.twilio.com",
        "a" * 64 + ".sip.twilio.com",
        "acmé.sip.twilio.com",
        "\u212acme.sip.twilio.com",  # KELVIN SIGN lowercases to an ASCII "k"
        "acme.sip.twilio.com.",
        "acme.sip.twilio.com\x00",
        "a.b.sip.twilio.com",  # one label before the suffix (CONTRACT §5)
        ("a" * 60 + ".") * 4 + "sip.twilio.com",  # longer than 253
    ],
)
def test_sip_domain_name_rejects(value: str) -> None:
    error = rejects(validation.sip_domain_name, "domain_name", value, suffix="sip.twilio.com")
    assert error.field == "domain_name"
    # CONTRACT §2: an invalid SIP domain name is Twilio's 21232, not a generic 20001.
    assert (error.status, error.code) == (400, 21232)


def test_sip_domain_name_custom_suffix() -> None:
    assert validation.sip_domain_name("domain_name", "a.sip.example.org", suffix="sip.example.org")
    error = rejects(
        validation.sip_domain_name, "domain_name", "a.sip.twilio.com", suffix="sip.example.org"
    )
    assert error.rule == "must be a name ending in .sip.example.org"


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from(["0", "00", "01", "1", "9", "25", "99", "199", "249", "255", "256", "٤"]),
        min_size=1,
        max_size=5,
    ).map(".".join)
    | st.text("0123456789.\n ", max_size=16)
)
def test_ipv4_address_accepts_exactly_what_ipaddress_does(value: str) -> None:
    try:
        IPv4Address(value)
        valid = True
    except ValueError:
        valid = False
    try:
        assert validation.ipv4_address("ip_address", value) == value
        accepted = True
    except InvalidParameter:
        accepted = False
    assert accepted == valid
