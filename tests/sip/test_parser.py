"""The sans-I/O parser: datagrams, TCP framing split at every byte, and every error."""

from __future__ import annotations

import pytest

from sipmap.sip.message import Request, Response, SipUri, Via, split_commas, tag_of
from sipmap.sip.parser import ParseError, StreamParser, parse_datagram
from sipmap.sip.serializer import serialize

from .samples import ALL, OPTIONS_COMPACT, RESPONSE, SDP, crlf, invite


def test_invite_datagram() -> None:
    message = parse_datagram(invite())
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == "sip:+15551230000@127.0.0.1:5060"
    assert message.get("Call-ID") == "call-1@127.0.0.2"
    assert message.get("CSeq") == "1 INVITE"
    assert message.body == SDP


def test_compact_forms_and_folding() -> None:
    message = parse_datagram(OPTIONS_COMPACT)
    assert isinstance(message, Request)
    names = [name for name, _ in message.headers]
    assert names == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Subject", "Content-Length",
    ]  # fmt: skip
    assert message.get("Subject") == "folded"
    assert message.body == b""


def test_response() -> None:
    message = parse_datagram(RESPONSE)
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (200, "OK")
    vias = split_commas(message.get("Via") or "")
    assert len(vias) == 2
    via = Via.parse(vias[1])
    assert via is not None
    assert (via.host, via.port, via.param("rport"), via.param("received")) == (
        "127.0.0.2", 5061, "5061", "127.0.0.2",
    )  # fmt: skip


def test_round_trip() -> None:
    for sample in ALL:
        message = parse_datagram(sample)
        assert message is not None
        again = parse_datagram(serialize(message))
        assert again == message


def test_keepalive_datagram_is_nothing() -> None:
    assert parse_datagram(b"\r\n\r\n") is None


def test_datagram_body_cut_at_content_length() -> None:
    message = parse_datagram(invite() + b"trailing junk")
    assert message is not None and message.body == SDP


def test_stream_split_at_every_byte() -> None:
    stream = b"\r\n\r\n".join(ALL) + b"\r\n"
    expected = [parse_datagram(sample) for sample in ALL]
    for cut in range(len(stream) + 1):
        parser = StreamParser()
        got = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert got == expected, cut
        assert len(parser) == 0


def test_each_message_split_at_every_pair_of_bytes() -> None:
    for sample in ALL:
        expected = [parse_datagram(sample)]
        for a in range(0, len(sample), 7):
            for b in range(a, len(sample) + 1):
                parser = StreamParser()
                got = parser.feed(sample[:a]) + parser.feed(sample[a:b]) + parser.feed(sample[b:])
                assert got == expected, (a, b)


def test_stream_byte_by_byte() -> None:
    parser = StreamParser()
    got = []
    for byte in b"".join(ALL):
        got += parser.feed(bytes([byte]))
    assert got == [parse_datagram(sample) for sample in ALL]


def error_of(data: bytes, stream: bool = False, max_message: int = 65536) -> ParseError:
    with pytest.raises(ParseError) as caught:
        if stream:
            StreamParser(max_message).feed(data)
        else:
            parse_datagram(data, max_message)
    return caught.value


def has_via(error: ParseError) -> bool:
    return any(name == "Via" for name, _ in error.headers)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (invite(extra="NoColonHere\n"), "malformed_header"),
        (invite().replace(b"CSeq: 1 INVITE\r\n", b""), "missing_header"),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), "malformed_cseq"),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1"), "malformed_cseq"),
        (invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "malformed_cseq"),
        (invite().replace(b"Call-ID: call-1@127.0.0.2\r\n", b""), "missing_header"),
        (invite().replace(b"From: <sip:alice@127.0.0.2:5061>;tag=abc\r\n", b""), "missing_header"),
        (invite().replace(b"To: ", b"X-To: "), "missing_header"),
        (invite().replace(b"Content-Length: ", b"Content-Length: x"), "malformed_content_length"),
        (invite()[:-5], "content_length_past_datagram"),
        (invite().replace(b"\r\n\r\n", b"\r\n"), "truncated"),
        (invite().replace(b"INVITE sip", b"INVITE  sip", 1), "malformed_start_line"),
        (invite().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), "malformed_start_line"),
        (invite().replace(b"Max-Forwards: 70", b"Max-Forwards: \xff"), "not_utf8"),
        (invite(extra="A: b\n" * 300), "too_many_headers"),
        (invite().replace(b"CSeq: 1", "CSeq: ²".encode()), "malformed_cseq"),
        (invite().replace(b"Length: 87", "Length: ²".encode()), "malformed_content_length"),
    ],
)
def test_malformed_with_via_is_answerable(data: bytes, reason: str) -> None:
    error = error_of(data)
    assert error.reason == reason
    assert error.status == 400
    assert has_via(error)
    assert error.method in ("INVITE", None)
    assert not error.is_response


def test_malformed_without_via_cannot_be_answered() -> None:
    data = invite(extra="NoColon\n").replace(b"Via: ", b"Vxa: ")
    error = error_of(data)
    assert error.status == 400 and not has_via(error)


def test_oversized_datagram() -> None:
    error = error_of(invite(extra="X-Pad: " + "a" * 2000 + "\n"), max_message=1024)
    assert (error.reason, error.status) == ("too_large", 513)
    assert has_via(error)
    garbage = error_of(b"\x00" * 2000, max_message=1024)
    assert garbage.status == 513 and not has_via(garbage)


def test_stream_oversized_by_content_length() -> None:
    data = invite().replace(b"Content-Length: 87", b"Content-Length: 999999")
    error = error_of(data, stream=True)
    assert (error.reason, error.status) == ("too_large", 513) and has_via(error)


def test_stream_never_buffers_past_the_limit() -> None:
    parser = StreamParser(1024)
    parser.feed(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2;branch=z9hG4bK1\r\n")
    with pytest.raises(ParseError) as caught:
        for _ in range(100):
            parser.feed(b"X-Slow: " + b"a" * 50 + b"\r\n")
            assert len(parser) <= 1024 + 60
    assert caught.value.status == 513 and has_via(caught.value)


def test_stream_requires_content_length() -> None:
    data = crlf(
        "OPTIONS sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\nFrom: <sip:a@h>;tag=1\n"
        "To: <sip:b@h>\nCall-ID: 1\nCSeq: 1 OPTIONS\n\n"
    )
    assert error_of(data, stream=True).reason == "missing_content_length"
    assert parse_datagram(data) is not None  # optional over UDP


def test_a_response_error_is_marked() -> None:
    error = error_of(RESPONSE.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"))
    assert error.is_response


def test_via_and_uri_helpers() -> None:
    via = Via.parse("SIP/2.0/tcp [::1]:5070;branch=z9hG4bK1;rport")
    assert via is not None
    assert (via.transport, via.host, via.port, via.param("rport")) == ("TCP", "::1", 5070, "")
    via.set_param("rport", "4000")
    assert str(via) == "SIP/2.0/TCP [::1]:5070;branch=z9hG4bK1;rport=4000"
    assert Via.parse("garbage") is None
    assert Via.parse("SIP/2.0/UDP host:99999") is None
    uri = SipUri.parse("<sip:+1555@10.0.0.1:5060;transport=tcp?x=y>")
    assert uri is not None
    assert (uri.user, uri.host, uri.port, uri.param("transport")) == (
        "+1555",
        "10.0.0.1",
        5060,
        "tcp",
    )
    uri.host, uri.port = "acme.sip.twilio.com", None
    assert str(uri) == "sip:+1555@acme.sip.twilio.com;transport=tcp?x=y"
    assert SipUri.parse("tel:+1555") is None
    assert tag_of('"A, B" <sip:a@h;tag=no>;tag=yes') == "yes"
    assert tag_of("<sip:a@h>") is None
    assert split_commas('"a,b" <sip:x>, <sip:y,z>') == ['"a,b" <sip:x>', "<sip:y,z>"]
    assert split_commas(",") == split_commas(" , ,") == [""]
