"""SIP messages the parser and responder tests share."""

from __future__ import annotations

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def invite(
    uri: str = "sip:+15551230000@127.0.0.1:5060",
    via: str = "SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1;rport",
    extra: str = "",
    to_tag: str = "",
    method: str = "INVITE",
    cseq: str = "1",
    body: bytes = SDP,
) -> bytes:
    head = crlf(
        f"{method} {uri} SIP/2.0\n"
        f"Via: {via}\n"
        "Max-Forwards: 70\n"
        "From: <sip:alice@127.0.0.2:5061>;tag=abc\n"
        f"To: <{uri}>{to_tag}\n"
        "Call-ID: call-1@127.0.0.2\n"
        f"CSeq: {cseq} {method}\n"
        "Contact: <sip:alice@127.0.0.2:5061>\n"
        f"{extra}"
        "Content-Type: application/sdp\n"
        f"Content-Length: {len(body)}\n\n"
    )
    return head + body


OPTIONS_COMPACT = crlf(
    "OPTIONS sip:127.0.0.1 SIP/2.0\n"
    "v: SIP/2.0/TCP 127.0.0.2:40000;branch=z9hG4bK-o1\n"
    "f: <sip:probe@127.0.0.2>;tag=1\n"
    "t: <sip:127.0.0.1>\n"
    "i: opt-1\n"
    "CSeq: 7 OPTIONS\n"
    "m: <sip:probe@127.0.0.2:40000>\n"
    "Subject:\n"
    "  folded\n"
    "l: 0\n\n"
)

RESPONSE = crlf(
    "SIP/2.0 200 OK\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsmabc, SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1;received=127.0.0.2;rport=5061\n"
    "From: <sip:alice@127.0.0.2:5061>;tag=abc\n"
    "To: <sip:+15551230000@acme.sip.twilio.com>;tag=uas\n"
    "Call-ID: call-1@127.0.0.2\n"
    "CSeq: 1 INVITE\n"
    "Content-Length: 0\n\n"
)

ALL = (invite(), OPTIONS_COMPACT, RESPONSE, invite(method="BYE", cseq="2", body=b""))
