"""The pure responder, one test per rule (CONTRACT §7, issue 8)."""

from __future__ import annotations

from sipmap import __version__
from sipmap.recognize.recognizer import (
    ALLOWED,
    NO_ACL_MAPPED,
    NO_SOURCE_MAPPING,
    NOT_IN_ACL,
    UNKNOWN_DOMAIN,
    Recognition,
)
from sipmap.sip.message import Request, Response, Via, split_commas, tag_of
from sipmap.sip.parser import ParseError, parse_datagram
from sipmap.sip.responder import (
    NOT_IN_ACL_ERROR,
    Action,
    Drop,
    EdgeConfig,
    Forward,
    Reply,
    Responder,
    Source,
    Target,
)

from .samples import invite

DOMAIN = "acme.sip.twilio.com"
ALLOWED_IP, UNMAPPED_IP, OUTSIDE_IP, NO_ACL_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
UPSTREAM = Target("127.0.0.9", 5080, "udp")
ACCEPTED = Recognition(
    True, True, ALLOWED, "source_ip", "SD" + "1" * 32, DOMAIN, "AC" + "1" * 32,
    "IL" + "1" * 32, "IB" + "1" * 32, "127.0.0.0/24",
)  # fmt: skip
BY_NAME = Recognition(True, True, ALLOWED, "request_uri", "SD" + "1" * 32, DOMAIN, "AC" + "1" * 32)


def recognize(ip: str, uri: str | None) -> Recognition:
    if uri and DOMAIN in uri:
        return BY_NAME
    if ip == ALLOWED_IP or ip == UPSTREAM.host:
        return ACCEPTED
    if ip == OUTSIDE_IP:
        return Recognition(True, False, NOT_IN_ACL, "source_ip", "SD" + "1" * 32, DOMAIN)
    if ip == NO_ACL_IP:
        return Recognition(True, False, NO_ACL_MAPPED, "source_ip", "SD" + "1" * 32, DOMAIN)
    if uri and "example.com" in uri:
        return Recognition(False, False, UNKNOWN_DOMAIN)
    return Recognition(False, False, NO_SOURCE_MAPPING)


def responder(**options: object) -> Responder:
    config = EdgeConfig("127.0.0.1", 5060, **options)  # type: ignore[arg-type]
    return Responder(config, recognize)


def handle(data: bytes, ip: str = ALLOWED_IP, port: int = 5061, transport: str = "udp",
           **options: object) -> list[Action]:  # fmt: skip
    message = parse_datagram(data)
    assert message is not None
    return responder(**options).handle(message, Source(ip, port, transport))


def reply_of(action: Action) -> Response:
    assert isinstance(action, Reply), action
    message = parse_datagram(action.data)
    assert isinstance(message, Response)
    assert message.status == action.status
    return message


def request_of(action: Action) -> Request:
    assert isinstance(action, Forward), action
    message = parse_datagram(action.data)
    assert isinstance(message, Request)
    return message


def statuses(actions: list[Action]) -> list[int | str]:
    return [a.status if isinstance(a, Reply) else type(a).__name__ for a in actions]


def test_accepted_options_is_200_with_the_copied_headers() -> None:
    [action] = handle(invite(method="OPTIONS", body=b""))
    response = reply_of(action)
    assert response.status == 200
    via = Via.parse(response.get("Via") or "")
    assert via is not None
    assert via.param("rport") == "5061" and via.param("received") == "127.0.0.2"
    assert response.get("Call-ID") == "call-1@127.0.0.2"
    assert response.get("CSeq") == "1 OPTIONS"
    assert response.get("From") == "<sip:alice@127.0.0.2:5061>;tag=abc"
    assert tag_of(response.get("To")) is not None
    assert response.get("Server") == f"sipmap/{__version__}"
    assert response.get("Content-Length") == "0"
    assert isinstance(action, Reply) and action.address == ("127.0.0.2", 5061)


def test_to_tag_is_stable_across_retransmissions() -> None:
    first = reply_of(handle(invite(method="OPTIONS", body=b""))[0])
    again = reply_of(handle(invite(method="OPTIONS", body=b""))[0])
    assert first.get("To") == again.get("To")


def test_existing_to_tag_is_kept() -> None:
    [action] = handle(invite(method="OPTIONS", body=b"", to_tag=";tag=theirs"))
    assert tag_of(reply_of(action).get("To")) == "theirs"


def test_received_without_rport_goes_to_the_via_port() -> None:
    via = "SIP/2.0/UDP pbx.example.net:5070;branch=z9hG4bK-2"
    [action] = handle(invite(method="OPTIONS", body=b"", via=via), port=40000)
    response = reply_of(action)
    stamped = Via.parse(response.get("Via") or "")
    assert stamped is not None
    assert stamped.param("received") == ALLOWED_IP and stamped.param("rport") is None
    assert isinstance(action, Reply) and action.address == (ALLOWED_IP, 5070)


def test_no_received_when_sent_by_is_the_source() -> None:
    via = "SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-2"
    [action] = handle(invite(method="OPTIONS", body=b"", via=via))
    assert reply_of(action).get("Via") == via


def test_unrecognised_source_is_403_without_twilio_error() -> None:
    [action] = handle(invite(), ip=UNMAPPED_IP)
    response = reply_of(action)
    assert response.status == 403 and response.get("X-Twilio-Error") is None


def test_no_100_trying_before_403_or_404() -> None:
    assert statuses(handle(invite(), ip=UNMAPPED_IP)) == [403]
    assert statuses(handle(invite(uri="sip:bob@example.com"), ip=UNMAPPED_IP)) == [404]
    assert statuses(handle(invite(), ip=OUTSIDE_IP)) == [403]


def test_unknown_domain_name_is_404_but_our_own_host_is_403() -> None:
    assert statuses(handle(invite(uri="sip:bob@example.com"), ip=UNMAPPED_IP)) == [404]
    own = {"own_hosts": frozenset({"example.com"})}
    assert statuses(handle(invite(uri="sip:bob@example.com"), ip=UNMAPPED_IP, **own)) == [403]


def test_drop_unrecognized() -> None:
    assert handle(invite(), ip=UNMAPPED_IP, drop_unrecognized=True) == [Drop("unrecognized")]
    uri = "sip:bob@example.com"
    assert handle(invite(uri=uri), ip=UNMAPPED_IP, drop_unrecognized=True) == [Drop("unrecognized")]
    assert statuses(handle(invite(), ip=OUTSIDE_IP, drop_unrecognized=True)) == [403]


def test_not_in_acl_and_no_acl_carry_32201() -> None:
    for ip in (OUTSIDE_IP, NO_ACL_IP):
        response = reply_of(handle(invite(), ip=ip)[0])
        assert response.status == 403
        assert response.get("X-Twilio-Error") == NOT_IN_ACL_ERROR


def test_ack_is_never_answered() -> None:
    for ip in (ALLOWED_IP, UNMAPPED_IP, OUTSIDE_IP):
        for options in ({}, {"upstream": None}):
            actions = handle(invite(method="ACK", body=b""), ip=ip, **options)
            assert all(isinstance(a, Drop) for a in actions), actions


def test_accepted_invite_without_upstream_is_100_then_the_final_response() -> None:
    actions = handle(invite())
    assert statuses(actions) == [100, 480]
    assert tag_of(reply_of(actions[0]).get("To")) is None
    assert tag_of(reply_of(actions[1]).get("To")) is not None
    assert statuses(handle(invite(), final_response=503)) == [100, 503]


def test_cancel_and_bye_without_upstream() -> None:
    assert statuses(handle(invite(method="CANCEL", body=b""))) == [481]
    assert statuses(handle(invite(method="BYE", body=b""))) == [480]


def test_accepted_invite_is_forwarded_statelessly() -> None:
    data = invite(extra="X-Sipmap-Account-Sid: ACforged\nx-sipmap-evil: 1\n")
    actions = handle(data, upstream=UPSTREAM)
    assert statuses(actions) == [100, "Forward"]
    forward = actions[1]
    assert isinstance(forward, Forward) and forward.target == UPSTREAM
    request = request_of(forward)
    assert request.uri == "sip:+15551230000@acme.sip.twilio.com"
    assert request.get("Max-Forwards") == "69"
    assert request.get("Record-Route") == "<sip:127.0.0.1:5060;lr>"
    vias = [v for n, v in request.headers if n == "Via"]
    assert vias[0].startswith("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsm")
    assert vias[1] == "SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1;rport=5061;received=127.0.0.2"
    sipmap = [(n, v) for n, v in request.headers if n.lower().startswith("x-sipmap")]
    assert sipmap == [
        ("X-Sipmap-Account-Sid", ACCEPTED.account_sid),
        ("X-Sipmap-Sip-Domain-Sid", ACCEPTED.sip_domain_sid),
        ("X-Sipmap-Source-Ip-Mapping-Sid", ACCEPTED.source_ip_mapping_sid),
    ]
    assert request.body == parse_datagram(data).body  # type: ignore[union-attr]


def test_matched_by_name_has_no_mapping_header() -> None:
    actions = handle(invite(uri=f"sip:bob@{DOMAIN}"), ip=UNMAPPED_IP, upstream=UPSTREAM)
    request = request_of(actions[1])
    assert request.get("X-Sipmap-Sip-Domain-Sid") == BY_NAME.sip_domain_sid
    assert request.get("X-Sipmap-Source-Ip-Mapping-Sid") is None


def test_cancel_gets_the_branch_of_its_invite() -> None:
    forwarded = request_of(handle(invite(), upstream=UPSTREAM)[1])
    [cancel] = handle(invite(method="CANCEL", body=b""), upstream=UPSTREAM)
    assert request_of(cancel).get("Via") == forwarded.get("Via")
    other = request_of(handle(invite(cseq="2"), upstream=UPSTREAM)[1])
    assert other.get("Via") != forwarded.get("Via")
    assert request_of(cancel).uri == forwarded.uri


def test_max_forwards() -> None:
    zero = invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert statuses(handle(zero, upstream=UPSTREAM)) == [483]
    ack = invite(method="ACK", body=b"").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert handle(ack, upstream=UPSTREAM) == [Drop("too_many_hops")]
    bad = invite().replace(b"Max-Forwards: 70", b"Max-Forwards: many")
    assert statuses(handle(bad, upstream=UPSTREAM)) == [400]
    # OPTIONS is answered here, so Max-Forwards 0 does not matter
    options = invite(method="OPTIONS", body=b"").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert statuses(handle(options, upstream=UPSTREAM)) == [200]


IN_DIALOG = {
    "to_tag": ";tag=uas",
    "extra": "Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.7:5090;lr>\n",
}


def test_in_dialog_from_upstream_goes_to_the_next_route_then_the_request_uri() -> None:
    uri = "sip:alice@127.0.0.2:5061"
    bye = invite(method="BYE", uri=uri, body=b"", **IN_DIALOG)
    [action] = handle(bye, ip=UPSTREAM.host, port=5080, upstream=UPSTREAM)
    assert isinstance(action, Forward) and action.target == Target("127.0.0.7", 5090, "udp")
    request = request_of(action)
    assert request.get("Route") == "<sip:127.0.0.7:5090;lr>"
    assert request.uri == uri
    direct = invite(method="BYE", uri=uri + ";transport=tcp", body=b"", to_tag=";tag=uas",
                    extra="Route: <sip:127.0.0.1:5060;lr>\n")  # fmt: skip
    [action] = handle(direct, ip=UPSTREAM.host, upstream=UPSTREAM)
    assert isinstance(action, Forward) and action.target == Target("127.0.0.2", 5061, "tcp")
    assert request_of(action).get("Route") is None


def test_in_dialog_from_others_is_recognised_then_sent_upstream() -> None:
    bye = invite(method="BYE", uri="sip:bob@127.0.0.9:5080", body=b"", **IN_DIALOG)
    [action] = handle(bye, upstream=UPSTREAM)
    assert isinstance(action, Forward) and action.target == UPSTREAM
    request = request_of(action)
    assert request.uri == "sip:bob@127.0.0.9:5080"  # not rewritten in a dialog
    assert request.get("Route") == "<sip:127.0.0.7:5090;lr>"
    assert request.get("Record-Route") is None
    assert statuses(handle(bye, ip=OUTSIDE_IP, upstream=UPSTREAM)) == [403]
    assert statuses(handle(bye, ip=UNMAPPED_IP, upstream=UPSTREAM)) == [403]


def answer_to(forwarded: Request, status: int = 180, reason: str = "Ringing") -> bytes:
    lines = [f"{n}: {v}" for n, v in forwarded.headers if n in ("Via", "From", "Call-ID", "CSeq")]
    lines.append("To: <sip:x@h>;tag=uas")
    return (
        f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_responses_are_relayed_back_by_via() -> None:
    r = responder(upstream=UPSTREAM)
    forwarded = request_of(r.handle(parse_datagram(invite()), Source(ALLOWED_IP, 5061, "udp"))[1])  # type: ignore[arg-type]
    message = parse_datagram(answer_to(forwarded))
    assert message is not None
    [action] = r.handle(message, Source(UPSTREAM.host, 5080, "udp"))
    assert isinstance(action, Forward) and action.kind == "response"
    assert action.target == Target(ALLOWED_IP, 5061, "udp")
    relayed = parse_datagram(action.data)
    assert isinstance(relayed, Response) and relayed.status == 180
    vias = [v for n, v in relayed.headers if n == "Via"]
    assert len(vias) == 1 and "z9hG4bK-1" in vias[0]


def test_forged_responses_are_not_relayed() -> None:
    r = responder(upstream=UPSTREAM)
    forwarded = request_of(r.handle(parse_datagram(invite()), Source(ALLOWED_IP, 5061, "udp"))[1])  # type: ignore[arg-type]
    genuine = answer_to(forwarded)
    upstream = Source(UPSTREAM.host, 5080, "udp")
    forgeries = [
        genuine.replace(b"branch=z9hG4bKsm", b"branch=z9hG4bKsmf", 1),  # a branch we never made
        genuine.replace(b"received=127.0.0.2", b"received=192.0.2.66"),  # a victim below us
        genuine.replace(b"Call-ID: call-1", b"Call-ID: call-2"),
        genuine.replace(b"CSeq: 1 INVITE", b"CSeq: 2 INVITE"),
    ]
    for forged in forgeries:
        assert forged != genuine
        message = parse_datagram(forged)
        assert message is not None
        assert r.handle(message, upstream) == [Drop("response_not_ours")], forged
    # keyed: another edge (another secret) does not take this edge's responses
    other = Responder(EdgeConfig("127.0.0.1", 5060, UPSTREAM, secret=b"other"), recognize)
    assert other.handle(parse_datagram(genuine), upstream) == [Drop("response_not_ours")]  # type: ignore[arg-type]


def test_bye_from_the_upstream_and_the_callers_answer() -> None:
    # The caller is a TCP client: the BYE goes to its Contact over TCP, with a TCP Via,
    # and its 200 comes back from the caller (not the upstream) and is relayed.
    r = responder(upstream=UPSTREAM)
    bye = invite(method="BYE", uri="sip:alice@127.0.0.2:5061;transport=tcp", body=b"",
                 via="SIP/2.0/UDP 127.0.0.9:5080;branch=z9hG4bK-uas-bye", to_tag=";tag=uas",
                 extra="Route: <sip:127.0.0.1:5060;lr>\n")  # fmt: skip
    [action] = r.handle(parse_datagram(bye), Source(UPSTREAM.host, 5080, "udp"))  # type: ignore[arg-type]
    assert isinstance(action, Forward) and action.target == Target("127.0.0.2", 5061, "tcp")
    request = request_of(action)
    assert (request.get("Via") or "").startswith("SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKsm")
    ok = parse_datagram(answer_to(request, 200, "OK"))
    assert ok is not None
    [relayed] = r.handle(ok, Source("127.0.0.2", 40000, "tcp"))
    assert isinstance(relayed, Forward) and relayed.target == Target("127.0.0.9", 5080, "udp")


def test_tcp_client_is_answered_on_its_connection() -> None:
    via = "SIP/2.0/TCP 127.0.0.2:5061;branch=z9hG4bK-t"
    [action] = handle(invite(method="OPTIONS", body=b"", via=via), port=40001, transport="tcp")
    assert isinstance(action, Reply) and action.address == (ALLOWED_IP, 40001)


def test_parse_errors() -> None:
    r = responder()
    source = Source(ALLOWED_IP, 5061, "udp")
    headers = [("Via", "SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKa"), ("From", "<sip:a@h>;tag=1"),
               ("To", "<sip:b@h>"), ("Call-ID", "x"), ("CSeq", "1 INVITE")]  # fmt: skip
    with_via = ParseError("malformed_cseq", 400, headers, "INVITE")
    [action] = r.handle_error(with_via, source)
    assert reply_of(action).status == 400
    assert r.handle_error(ParseError("truncated", 400, [("From", "x")]), source) == [
        Drop("truncated_no_via")
    ]
    ack = ParseError("malformed_cseq", 400, with_via.headers, "ACK")
    assert r.handle_error(ack, source) == [Drop("malformed_cseq")]
    too_large = ParseError("too_large", 513, with_via.headers, "INVITE")
    assert reply_of(r.handle_error(too_large, source)[0]).status == 513
    response = ParseError("malformed_cseq", 400, with_via.headers, None, is_response=True)
    assert r.handle_error(response, source) == [Drop("malformed_cseq")]


def test_multiple_vias_in_one_line_are_all_copied() -> None:
    via = "SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-a;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-b"
    response = reply_of(handle(invite(method="OPTIONS", body=b"", via=via))[0])
    vias = [v for n, v in response.headers if n == "Via" for v in split_commas(v)]
    assert len(vias) == 2 and vias[1] == "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-b"


def test_recognition_from_the_first_line_alone() -> None:
    r = responder()
    unmapped = Source(UNMAPPED_IP, 5061, "udp")

    def recognized(data: bytes, source: Source = unmapped) -> bool | None:
        found = r.recognise_first_line(data, source)
        return None if found is None else found.recognized

    assert recognized(b"INVITE sip:x@127.0.0.1 SIP/2.0\r\ngarbage") is False
    assert recognized(invite(uri="sip:bob@example.com")) is False
    assert recognized(invite(), Source(ALLOWED_IP, 5061, "udp")) is True
    assert recognized(invite(), Source(OUTSIDE_IP, 5061, "udp")) is True
    assert recognized(invite(uri=f"sip:bob@{DOMAIN}")) is True
    # a response, or an unreadable line: left to the full parse
    assert recognized(b"SIP/2.0 200 OK\r\n") is None
    assert recognized(b"\xff\xfe \xff x\r\n") is None
    assert recognized(b"INVITE sip:x@h\r\n") is None


def test_a_recognition_given_is_used() -> None:
    message = parse_datagram(invite())
    assert message is not None
    forbidden = Recognition(True, False, NOT_IN_ACL, "source_ip", "SD" + "1" * 32, DOMAIN)
    actions = responder().handle(message, Source(ALLOWED_IP, 5061, "udp"), forbidden)
    assert statuses(actions) == [403]
