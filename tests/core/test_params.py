"""Decoding form bodies and query strings (src/sipmap/api/params.py)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipmap.api.call import Call
from sipmap.api.params import (
    FORM_TYPE,
    MAX_BODY_BYTES,
    BodyTooLarge,
    Params,
    parse_pairs,
    snake_name,
    wire_name,
)
from sipmap.core.errors import InvalidParameter, ServiceError


@pytest.mark.parametrize(
    ("snake", "wire"),
    [
        ("ip_address", "IpAddress"),
        ("cidr_prefix_length", "CidrPrefixLength"),
        ("sip_domain_sid", "SipDomainSid"),
        ("page_size", "PageSize"),
        ("page", "Page"),
        ("voice_status_callback_method", "VoiceStatusCallbackMethod"),
    ],
)
def test_names_round_trip(snake: str, wire: str) -> None:
    assert wire_name(snake) == wire
    assert snake_name(wire) == snake


def test_decode_form() -> None:
    params = Params.decode(b"IpAddress=10.0.0.1&FriendlyName=a+b%20c&Empty=")
    assert params.text("IpAddress") == "10.0.0.1"
    assert params.text("FriendlyName") == "a b c"
    assert params.text("Empty") == ""
    assert "Empty" in params
    assert params.text("Missing") is None
    assert "Missing" not in params


def test_decode_utf8_escapes() -> None:
    assert Params.decode("FriendlyName=%C3%A9t%C3%A9").text("FriendlyName") == "été"
    assert Params.decode("FriendlyName=été".encode()).text("FriendlyName") == "été"


@pytest.mark.parametrize("raw", [b"FriendlyName=\xff", b"FriendlyName=%FF", b"A=%ED%A0%80"])
def test_non_utf8_is_an_error(raw: bytes) -> None:
    with pytest.raises(ServiceError) as info:
        Params.decode(raw)
    assert (info.value.status, info.value.code) == (400, 20001)
    assert "UTF-8" in info.value.message


def test_a_repeated_key_is_an_error_when_read() -> None:
    params = Params.decode(b"IpAddress=1.1.1.1&IpAddress=2.2.2.2")
    for read in (params.text, lambda name: name in params):
        with pytest.raises(InvalidParameter) as info:
            read("IpAddress")
        assert info.value.field == "ip_address"
        assert "more than once" in info.value.rule


def test_a_repeated_unknown_key_is_ignored_like_any_unknown_key() -> None:
    params = Params.decode(b"Foo=1&Foo=2&IpAddress=1.1.1.1")
    assert params.text("IpAddress") == "1.1.1.1"
    assert params.integer("Other", "rule") is None


@pytest.mark.parametrize(
    ("content_type", "has_params"),
    [
        (FORM_TYPE, True),
        (f"{FORM_TYPE}; charset=utf-8", True),
        ("Application/X-WWW-Form-URLEncoded", True),
        (None, False),
        ("application/json", False),
        ("multipart/form-data; boundary=x", False),
        ("text/plain", False),
    ],
)
def test_only_form_bodies_carry_parameters(content_type: str | None, has_params: bool) -> None:
    params = Params.from_body(content_type, b"IpAddress=10.0.0.1")
    assert (params.text("IpAddress") == "10.0.0.1") is has_params


def test_other_content_types_are_not_even_decoded() -> None:
    # A JSON body with bytes that are not UTF-8 must not fail as a form would.
    assert Params.from_body("application/json", b"\xff\xfe").text("IpAddress") is None


@pytest.mark.parametrize(
    ("raw", "value"),
    [("0", 0), ("32", 32), (" 7 ", 7), ("-1", -1), ("007", 7), ("999999999999", 999999999999)],
)
def test_integer(raw: str, value: int) -> None:
    assert Params([("N", raw)]).integer("N", "rule") == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "-",
        "--5",
        "+5",
        "1.0",
        "1e3",
        "0x10",
        "1_0",
        "ten",
        "1000000000000",  # 13 digits: longer than any value we accept
        "\u00b2",  # superscript two: isdigit() but not int()
        "\u0661",  # ARABIC-INDIC DIGIT ONE: int() accepts it, we don't
        "\uff11",  # FULLWIDTH DIGIT ONE
        "3\u0000",
    ],
)
def test_integer_rejects(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Params([("CidrPrefixLength", raw)]).integer("CidrPrefixLength", "must be an integer")
    assert info.value.field == "cidr_prefix_length"
    assert info.value.rule == "must be an integer"


def test_integer_absent() -> None:
    assert Params([]).integer("PageSize", "rule") is None


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("false", False), ("True", True), (" FALSE ", False)]
)
def test_boolean(raw: str, value: bool) -> None:
    assert Params([("Secure", raw)]).boolean("Secure") is value


@pytest.mark.parametrize("raw", ["", "1", "0", "yes", "on", "tru"])
def test_boolean_rejects(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        Params([("SipRegistration", raw)]).boolean("SipRegistration")
    assert info.value.field == "sip_registration"


def test_boolean_absent() -> None:
    assert Params([]).boolean("Secure") is None


# -- reading the body (src/sipmap/api/call.py) ------------------------------------------


def form_of(messages: list[dict[str, Any]], content_type: bytes = FORM_TYPE.encode()) -> Params:
    scope = {"type": "http", "path": "/v1/IpRecords", "headers": [(b"content-type", content_type)]}
    pending = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(pending)

    call = Call(scope, receive, None, "http://testserver", {})  # type: ignore[arg-type]
    return asyncio.run(call.form())


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_body_in_chunks() -> None:
    body = b"IpAddress=10.0.0.1&CidrPrefixLength=24&FriendlyName=%C3%A9"
    params = form_of([chunk(body[:5], True), chunk(body[5:31], True), chunk(body[31:], False)])
    assert params.text("IpAddress") == "10.0.0.1"
    assert params.integer("CidrPrefixLength", "rule") == 24
    assert params.text("FriendlyName") == "é"


def test_client_gone_mid_body() -> None:
    # "CidrPrefixLength=24" cut to "=2": acting on what arrived would create a /2 record.
    with pytest.raises(ServiceError) as info:
        form_of(
            [
                chunk(b"IpAddress=10.0.0.1&CidrPrefixLength=2", True),
                {"type": "http.disconnect"},
            ]
        )
    assert (info.value.status, info.value.code) == (400, 20001)


def test_body_too_large_in_chunks() -> None:
    with pytest.raises(BodyTooLarge) as info:
        form_of([chunk(b"x" * 10_000, True) for _ in range(7)] + [chunk(b"", False)])
    assert info.value.status == 413
    at_limit = form_of([chunk(b"A=" + b"x" * (MAX_BODY_BYTES - 2), False)])
    assert at_limit.text("A") == "x" * (MAX_BODY_BYTES - 2)


_FORM_ALPHABET = st.sampled_from(
    ["a", "B", "=", "&", "+", "%", "%2", "%41", "%C3%A9", "%FF", "é", " "]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_FORM_ALPHABET, max_size=24).map("".join))
def test_parse_pairs_is_parse_qsl(text: str) -> None:
    try:
        expected: list[tuple[str, str]] | type[Exception] = parse_qsl(
            text, keep_blank_values=True, errors="strict"
        )
    except UnicodeDecodeError:
        expected = UnicodeDecodeError
    try:
        got: list[tuple[str, str]] | type[Exception] = parse_pairs(text)
    except UnicodeDecodeError:
        got = UnicodeDecodeError
    assert got == expected
