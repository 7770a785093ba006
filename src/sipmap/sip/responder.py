"""The pure SIP responder: (message, source, recognise) → actions. No sockets, no clock.

Rules: CONTRACT §7 and issue 8. A request is recognised by source IP and Request-URI
(`Recognizer.recognize`); unrecognised → 404 (a host name we don't serve) or 403 (or
silence with `drop_unrecognized`); recognised but outside the domain's ACLs → 403 with
X-Twilio-Error 32201; accepted → answered here (OPTIONS 200, or the configured final
response without an upstream) or proxied statelessly to the upstream (RFC 3261 §16.11).

Stateless proxying keeps no memory between messages: our Via's branch is a keyed hash
(`EdgeConfig.secret`) of the request's top Via as we stamped it, its Call-ID and CSeq
number, so a CANCEL (and the ACK of a non-2xx answer) gets the INVITE's branch; a
response is relayed, by the Vias alone, only when its branch is that hash of the Via
below ours, so nobody can use the edge to bounce forged responses at third parties;
and the To tag we add to our own final responses is a hash too, equal on
retransmissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b
from ipaddress import ip_address

from .. import __version__
from ..recognize.recognizer import UNKNOWN_DOMAIN, Recognition
from ..recognize.uri import request_uri_host
from .message import (
    Header,
    Request,
    Response,
    SipUri,
    Via,
    first,
    is_number,
    join_host_port,
    pop_first_value,
    split_commas,
    tag_of,
    uri_of_name_addr,
)
from .parser import ParseError
from .serializer import reason_phrase, serialize

BRANCH_PREFIX = "z9hG4bKsm"  # RFC 3261 magic cookie, then ours
NOT_IN_ACL_ERROR = "32201 Authentication failure - source IP Address not in ACL"
SERVER = f"sipmap/{__version__}"
DEFAULT_MAX_FORWARDS = 70
_SIPMAP_HEADER = "x-sipmap-"
_COPIED = ("From", "To", "Call-ID", "CSeq")  # into our responses, after the Vias

Recognize = Callable[[str, "str | None"], Recognition]


@dataclass(frozen=True, slots=True)
class Source:
    ip: str
    port: int
    transport: str  # "udp" | "tcp"


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # an IP address
    port: int
    transport: str  # "udp" | "tcp"


@dataclass(frozen=True, slots=True)
class Reply:
    """Send our response back the way the request came."""

    data: bytes
    status: int
    address: tuple[str, int]


@dataclass(frozen=True, slots=True)
class Forward:
    data: bytes
    target: Target
    kind: str  # "request" | "response"


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


Action = Reply | Forward | Drop


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    host: str  # our address as written in Via and Record-Route
    port: int
    upstream: Target | None = None
    final_response: int = 480
    drop_unrecognized: bool = False
    # Request-URI / Route hosts that mean this edge (besides `host`)
    own_hosts: frozenset[str] = field(default_factory=frozenset)
    secret: bytes = b""  # keys the Via branch hash (random per process in `serve`)


def _digest(*parts: str) -> str:
    return blake2b("\x00".join(parts).encode(), digest_size=8).hexdigest()


def _vias(headers: list[Header]) -> list[str]:
    values: list[str] = []
    for name, value in headers:
        if name == "Via":
            values.extend(split_commas(value))
    return values


def _stamp(via: Via, source: Source) -> Via:
    """received= and rport= on the top Via (RFC 3261 §18.2.1, RFC 3581)."""
    rport = via.param("rport")
    if via.host != source.ip or rport is not None:
        via.set_param("received", source.ip)
    if rport == "":
        via.set_param("rport", str(source.port))
    return via


@dataclass(frozen=True, slots=True)
class Answer:
    """Our own responses to a request, in order, each with these extra headers."""

    statuses: tuple[int, ...]
    extra: tuple[Header, ...] = ()


_ACK_UNRECOGNIZED = Drop("ack_unrecognized")
_UNRECOGNIZED = Drop("unrecognized")
_ACK_NOT_ALLOWED = Drop("ack_not_allowed")
_ACK_ABSORBED = Drop("ack_absorbed")


class Responder:
    def __init__(self, config: EdgeConfig, recognize: Recognize) -> None:
        self.config = config
        self.recognize = recognize
        final = config.final_response
        self.forbidden = Answer((403,))
        self.not_found = Answer((404,))
        self.not_in_acl = Answer((403,), (("X-Twilio-Error", NOT_IN_ACL_ERROR),))
        self.options = Answer(
            (200,), (("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"), ("Accept", "application/sdp"))
        )
        self.no_transaction = Answer((481,))
        self.final = Answer((final,))
        self.trying_then_final = Answer((100, final))
        # Every answer `verdict` gives, in a fixed order (the fast path indexes them).
        self.answers = (
            self.forbidden, self.not_found, self.not_in_acl, self.options,
            self.no_transaction, self.final, self.trying_then_final,
        )  # fmt: skip
        self._own = frozenset({config.host.lower(), *(h.lower() for h in config.own_hosts)})
        self._sent_by = join_host_port(config.host, config.port)
        self._record_route = f"<sip:{join_host_port(config.host, config.port)};lr>"

    # -- entry points -------------------------------------------------------------

    def handle(
        self, message: Request | Response, source: Source, recognition: Recognition | None = None
    ) -> list[Action]:
        """`recognition`: the request's, if already known (`recognise_first_line`)."""
        if isinstance(message, Response):
            return [self._relay(message, source)]
        return self._request(message, source, recognition)

    def recognise_first_line(self, data: bytes, source: Source) -> Recognition | None:
        """A datagram's recognition from its first line alone (None for a response or
        an unreadable line). The transport can then drop an unrecognised request
        without parsing it (`drop_unrecognized`, or too many answers to unrecognised
        sources this second), and hands the result to `handle` so it is not repeated."""
        start = data[: data.find(b"\r\n", 0, 4096)].split(b" ")
        if len(start) != 3 or start[0] == b"SIP/2.0":
            return None
        try:
            uri = start[1].decode()
        except UnicodeDecodeError:
            return None
        return self.recognize(source.ip, uri)

    def handle_error(self, error: ParseError, source: Source) -> list[Action]:
        """A message the parser refused: answered (400/513) only if a Via is readable."""
        if error.is_response or error.status is None or error.method == "ACK":
            return [Drop(error.reason)]
        reply = self._reply(error.headers, error.status, source)
        return [reply if reply is not None else Drop(f"{error.reason}_no_via")]

    # -- requests -------------------------------------------------------------------

    def _request(
        self, request: Request, source: Source, recognition: Recognition | None
    ) -> list[Action]:
        config = self.config
        route = request.get("Route")
        in_dialog = (
            route is not None
            and tag_of(request.get("To")) is not None
            and self._names_us(uri_of_name_addr(split_commas(route)[0]))
        )
        upstream = config.upstream
        if in_dialog and upstream is not None and source.ip == upstream.host:
            return [self._forward_by_uri(request, source)]
        if recognition is None:
            recognition = self.recognize(source.ip, request.uri)
        verdict = self.verdict(request.method, request.uri, in_dialog, recognition)
        if isinstance(verdict, Drop):
            return [verdict]
        if verdict is not None:
            extra = list(verdict.extra)
            return [self._answer(request, status, source, extra) for status in verdict.statuses]
        assert upstream is not None  # a verdict of None means: proxy it
        forward = self._forward(request, source, recognition, upstream, in_dialog)
        if request.method == "INVITE" and isinstance(forward, Forward):
            return [self._answer(request, 100, source), forward]
        return [forward]

    def verdict(
        self, method: str, uri: str, in_dialog: bool, recognition: Recognition
    ) -> Answer | Drop | None:
        """What the rules say to a request (one of `self.answers`, a Drop, or None: proxy
        it to the upstream), from its method, Request-URI and recognition alone. The
        UDP fast path asks this too, so both paths follow the same rules."""
        if not recognition.recognized:
            if method == "ACK":
                return _ACK_UNRECOGNIZED
            if self.config.drop_unrecognized:
                return _UNRECOGNIZED
            host = request_uri_host(uri)
            foreign = recognition.reason == UNKNOWN_DOMAIN and host not in self._own
            return self.not_found if foreign else self.forbidden
        if not recognition.allowed:
            return _ACK_NOT_ALLOWED if method == "ACK" else self.not_in_acl
        if method == "OPTIONS" and not in_dialog:
            return self.options
        if self.config.upstream is None:
            if method == "ACK":
                return _ACK_ABSORBED
            if in_dialog or method == "CANCEL":
                return self.no_transaction
            return self.trying_then_final if method == "INVITE" else self.final
        return None

    def _names_us(self, uri_text: str) -> bool:
        uri = SipUri.parse(uri_text)
        return uri is not None and uri.host in self._own and (uri.port or 5060) == self.config.port

    def _answer(
        self, request: Request, status: int, source: Source, extra: list[Header] | None = None
    ) -> Action:
        reply = self._reply(request.headers, status, source, extra)
        return reply if reply is not None else Drop("no_via")

    def _reply(
        self,
        headers: list[Header],
        status: int,
        source: Source,
        extra: list[Header] | None = None,
    ) -> Reply | None:
        # One pass: every Via line, and the first value of the other headers copied.
        via_lines: list[str] = []
        copied: dict[str, str] = {}
        for name, value in headers:
            if name == "Via":
                via_lines.append(value)
            elif name in _COPIED and name not in copied:
                copied[name] = value
        if not via_lines:
            return None
        vias = split_commas(via_lines[0]) if "," in via_lines[0] else [via_lines[0]]
        top = Via.parse(vias[0])
        if top is None:
            return None
        _stamp(top, source)
        out: list[Header] = [("Via", str(top))]
        out.extend(("Via", value) for value in vias[1:])
        out.extend(("Via", value) for value in via_lines[1:])
        for name in _COPIED:
            found = copied.get(name)
            if found is None:
                continue
            if name == "To" and status >= 200 and tag_of(found) is None:
                seed = _digest(copied.get("Call-ID") or "", vias[0])
                found = f"{found};tag=sm{seed[:12]}"
            out.append((name, found))
        out.append(("Server", SERVER))
        if extra:
            out.extend(extra)
        data = serialize(Response(status, reason_phrase(status), out))
        # RFC 3261 §18.2.2 / RFC 3581: to the source address; the port is the source
        # port when rport was asked for (TCP: the connection), else the Via's port.
        port = source.port
        if source.transport == "udp" and top.param("rport") is None:
            port = top.port or 5060
        return Reply(data, status, (source.ip, port))

    # -- proxying ---------------------------------------------------------------------

    def _branch(self, below: str, call_id: str, cseq: str) -> str:
        """Our branch over the Via below ours, the Call-ID and the CSeq number."""
        number = cseq.split(" ", 1)[0]
        digest = blake2b(
            "\x00".join((below, call_id, number)).encode(), digest_size=10, key=self.config.secret
        )
        return BRANCH_PREFIX + digest.hexdigest()

    def _prepare(
        self, request: Request, source: Source, transport: str
    ) -> tuple[list[Header], str] | Action:
        """The request's headers with the top Via stamped, our Via (for `transport`) on
        top and Max-Forwards decremented; or the 483/400 answer instead."""
        max_forwards = request.get("Max-Forwards")
        if max_forwards is None:
            hops = DEFAULT_MAX_FORWARDS
        elif is_number(max_forwards) and len(max_forwards) < 4:
            hops = int(max_forwards)
        else:
            return self._answer(request, 400, source)
        if hops <= 0:
            return (
                Drop("too_many_hops")
                if request.method == "ACK"
                else self._answer(request, 483, source)
            )
        headers = list(request.headers)
        stamped = ""
        for index, (name, value) in enumerate(headers):
            if name == "Via":
                values = split_commas(value)
                top = Via.parse(values[0])
                if top is None:
                    return Drop("malformed_via")
                stamped = str(_stamp(top, source))
                headers[index] = ("Via", ", ".join([stamped, *values[1:]]))
                break
        branch = self._branch(stamped, request.get("Call-ID") or "", request.get("CSeq") or "")
        headers = [(n, v) for n, v in headers if n != "Max-Forwards"]
        headers.insert(0, ("Max-Forwards", str(hops - 1)))
        ours = f"SIP/2.0/{transport.upper()} {self._sent_by};branch={branch}"
        headers.insert(0, ("Via", ours))
        return headers, branch

    def _forward(
        self,
        request: Request,
        source: Source,
        recognition: Recognition,
        upstream: Target,
        in_dialog: bool,
    ) -> Action:
        prepared = self._prepare(request, source, upstream.transport)
        if not isinstance(prepared, tuple):
            return prepared
        headers, _ = prepared
        # Identification comes from us only: whatever a peer sent under our names goes.
        headers = [(n, v) for n, v in headers if not n.lower().startswith(_SIPMAP_HEADER)]
        uri = request.uri
        if in_dialog:
            pop_first_value(headers, "Route")
        else:
            parsed = SipUri.parse(uri)
            if parsed is not None and recognition.domain_name:
                parsed.host, parsed.port = recognition.domain_name, None
                uri = str(parsed)
            if request.method == "INVITE":
                headers.insert(2, ("Record-Route", self._record_route))
        headers.append(("X-Sipmap-Account-Sid", recognition.account_sid or ""))
        headers.append(("X-Sipmap-Sip-Domain-Sid", recognition.sip_domain_sid or ""))
        if recognition.source_ip_mapping_sid:
            headers.append(("X-Sipmap-Source-Ip-Mapping-Sid", recognition.source_ip_mapping_sid))
        data = serialize(Request(request.method, uri, headers, request.body))
        return Forward(data, upstream, "request")

    def _forward_by_uri(self, request: Request, source: Source) -> Action:
        """An in-dialog request from the upstream: our Route popped, on to the next
        Route (loose routing) or else the Request-URI."""
        rest = list(request.headers)
        pop_first_value(rest, "Route")
        route = first(rest, "Route")
        next_hop = uri_of_name_addr(split_commas(route)[0]) if route else request.uri
        uri = SipUri.parse(next_hop)
        if uri is None or not _is_ip(uri.host):
            return Drop("unroutable")
        transport = "tcp" if (uri.param("transport") or "").lower() == "tcp" else "udp"
        target = Target(uri.host, uri.port or 5060, transport)
        prepared = self._prepare(request, source, transport)
        if not isinstance(prepared, tuple):
            return prepared
        headers, _ = prepared
        pop_first_value(headers, "Route")
        data = serialize(Request(request.method, request.uri, headers, request.body))
        return Forward(data, target, "request")

    # -- responses -------------------------------------------------------------------

    def _relay(self, response: Response, source: Source) -> Action:
        """A response to a request we proxied, from whoever answered it (the upstream,
        or a caller answering an in-dialog request): on along the Via below ours."""
        headers = list(response.headers)
        ours = Via.parse(pop_first_value(headers, "Via") or "")
        vias = _vias(headers)
        after = Via.parse(vias[0]) if vias else None
        if ours is None or after is None:
            return Drop("response_not_ours")
        expected = self._branch(vias[0], response.get("Call-ID") or "", response.get("CSeq") or "")
        if ours.param("branch") != expected or ours.host.lower() not in self._own:
            return Drop("response_not_ours")
        host = after.param("received") or after.host
        rport = after.param("rport")
        port = int(rport) if rport and is_number(rport) else (after.port or 5060)
        if not _is_ip(host) or not 0 < port < 65536:
            return Drop("unroutable")
        transport = "tcp" if after.transport == "TCP" else "udp"
        data = serialize(Response(response.status, response.reason, headers, response.body))
        return Forward(data, Target(host, port, transport), "response")


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True
