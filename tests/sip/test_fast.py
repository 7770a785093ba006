"""The UDP fast path (sip_scan.c, _fast.c, udp.py) against the Python path.

The property: for any datagram, source and recognition, the edge sends the same
bytes to the same addresses and counts the same, whether the datagram goes through
the fast path (as `UdpEndpoint` runs it) or through `Edge.datagram` alone. Datagrams
the fast path does not understand go to `Edge.datagram` there too, so the property
covers every datagram; `test_common_requests_take_the_fast_path` checks that the
common ones really are answered in C, so the property is not met by handing
everything to Python.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from sipmap.sip._fast import FastPath
from sipmap.sip.counters import SipCounters
from sipmap.sip.responder import EdgeConfig, Responder, Target
from sipmap.sip.transport import Edge
from sipmap.sip.udp import BATCH, HANDLED, UdpEndpoint

from .samples import SDP, invite
from .test_responder import ALLOWED_IP, NO_ACL_IP, OUTSIDE_IP, UNMAPPED_IP, recognize

UPSTREAM = Target("127.0.0.9", 5080, "udp")
SIP_SOURCES = Path(__file__).resolve().parents[2] / "src" / "sipmap" / "sip"
SIPP_OPTIONS = (
    b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1234-1-0;rport\r\n"
    b"From: <sip:bench@127.0.0.2:5061>;tag=1234-1\r\n"
    b"To: <sip:127.0.0.1:5060>\r\n"
    b"Call-ID: 1-1234@127.0.0.2\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Accept: application/sdp\r\n"
    b"Content-Length: 0\r\n\r\n"
)


class Capture:
    """Stands where the edge's UDP endpoint is, for what the Python path sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent.append((data, (address[0], address[1])))


class Recognizer:
    """`recognize` above, versioned as the fast path's cache needs."""

    def __init__(self) -> None:
        self.generation = 0
        self.recognize = recognize


def make_edge(
    options: dict[str, Any], unrecognized_answers: int, recognizer: Recognizer | None = None
) -> tuple[Edge, Capture, CollectorRegistry]:
    registry = CollectorRegistry()
    counters = SipCounters(registry)
    config = EdgeConfig("127.0.0.1", 5060, **options)
    recognizer = recognizer or Recognizer()
    edge = Edge(
        Responder(config, counters.timed(lambda ip, uri: recognizer.recognize(ip, uri))),
        counters, max_message=4096, idle_timeout=30, max_connections=10,
        unrecognized_answers=unrecognized_answers, recognizer=recognizer,
    )  # fmt: skip
    capture = Capture()
    edge._udp = {socket.AF_INET: capture, socket.AF_INET6: capture}  # type: ignore[dict-item]
    return edge, capture, registry


def counted(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter's samples; of the recognition histogram only its count (its
    buckets and sum are times)."""
    samples = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name.endswith(("_created", "_sum", "_bucket")):
                continue
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def both_ways(
    loop: asyncio.AbstractEventLoop, data: bytes, address: tuple[str, int],
    options: dict[str, Any], unrecognized_answers: int = 1000,
) -> tuple[str, list[tuple[bytes, tuple[str, int]]]]:  # fmt: skip
    """Run `data` through both paths, twice (the second time from the fast path's
    cache, where it may be cached); assert they agree; say which path answered."""
    return in_turn(loop, [(data, address)] * 2, options, unrecognized_answers)[-1]


def in_turn(
    loop: asyncio.AbstractEventLoop, datagrams: list[tuple[bytes, tuple[str, int]]],
    options: dict[str, Any], unrecognized_answers: int = 1000,
) -> list[tuple[str, list[tuple[bytes, tuple[str, int]]]]]:  # fmt: skip
    """Run the datagrams in turn through one edge of each kind (so later ones may be
    answered from the cache earlier ones filled); assert that each is answered and
    counted the same; say which path answered each."""

    async def run() -> list[tuple[str, list[tuple[bytes, tuple[str, int]]]]]:
        python, python_sent, python_counts = make_edge(options, unrecognized_answers)
        fast, fast_sent, fast_counts = make_edge(options, unrecognized_answers)
        paths = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            endpoint = UdpEndpoint(fast, sock)
            for data, address in datagrams:
                del python_sent.sent[:], fast_sent.sent[:]
                python.datagram(data, address)
                replies = endpoint.fast.respond(data, address[0], address[1], endpoint._decide)
                if replies is None:  # what pump() does with a datagram it does not understand
                    endpoint._slow(data, address)
                    path = "python"
                else:
                    path = "fast" if replies else "fast-handled"
                sent = (replies or []) + fast_sent.sent
                assert sent == python_sent.sent
                assert counted(fast_counts) == counted(python_counts)
                paths.append((path, sent))
        return paths

    return loop.run_until_complete(run())


# -- generated requests -------------------------------------------------------------

NAMES = {
    "Via": ["Via", "via", "v", "VIA"],
    "From": ["From", "f", "FROM"],
    "To": ["To", "t", "tO"],
    "Call-ID": ["Call-ID", "i", "call-id"],
    "CSeq": ["CSeq", "cseq"],
    "Content-Length": ["Content-Length", "l", "content-length"],
}


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, tuple[str, int]]:
    """Requests varied where the fast path reads or writes; half of them `plain`, with
    only the variations a fast path answer must get right, the rest with oddities
    (which the fast path must leave to Python, or get right too)."""
    plain = draw(st.booleans())

    def pick(usual: list[Any], odd: list[Any] | None = None) -> Any:
        return draw(st.sampled_from(usual if plain or not odd else usual + odd))

    ip = pick([ALLOWED_IP, UNMAPPED_IP, OUTSIDE_IP, NO_ACL_IP, "127.0.0.9"])
    port = pick([5061, 5060, 40000])
    method = pick(["OPTIONS", "INVITE", "ACK", "BYE", "CANCEL", "REGISTER"],
                  ["x-1.2", "SIP/2.0", "-", "IN VITE"])  # fmt: skip
    uri = pick(
        ["sip:127.0.0.1:5060", "sip:+15551230000@127.0.0.1", "sip:acme.sip.twilio.com",
         "sip:bob@example.com", "sip:[::1]:5060", "tel:+15551230000", "sip:x@localhost",
         "sip:X@Acme.sip.twilio.com;transport=udp", "sip:alice@127.0.0.1:5060",
         "SIPS:bob@127.0.0.1:5060", "sip:carol@acme.sip.twilio.com", "sip:a@b@example.com"],
        ["", "sip:a b", "sip:\u00e9@x"],
    )  # fmt: skip
    host = pick([ip, "127.0.0.2", "pbx.example.com", "h_o-st"], ["[::1]", "", "a:b:c"])
    via_port = pick(["", f":{port}", ":5061"], [":05061", ":0", ":65536", ":", ":1234567"])
    params = draw(st.lists(st.sampled_from(
        [";branch=z9hG4bK-1", ";rport", ";rport=7000", ";received=1.2.3.4", ";received",
         ";maddr=10.0.0.1", ";lr", ';a="q"']
        + ([] if plain else [";RPORT", ";x=y=z", ";", "; ttl=1", ";rport=", ";b =c"])
    ), max_size=4))  # fmt: skip
    transport = pick(["UDP", "TCP"], ["udp", "TLS", ""])
    version = pick(["SIP/2.0/"], ["sip/2.0/", "SIP/3.0/", "SIP/2.0 /", "SIP/"])
    vias = [f"{version}{transport} {host}{via_port}{''.join(params)}"]
    vias += draw(st.lists(st.sampled_from(
        ["SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a", "SIP/2.0/TCP [2001:db8::1]:5060"]
        + ([] if plain else ["SIP/2.0/UDP a, SIP/2.0/UDP b"])
    ), max_size=2))  # fmt: skip
    to = pick(
        ["<sip:127.0.0.1>", "<sip:127.0.0.1>;tag=x", "<sip:127.0.0.1>;tag=", "sip:a@b;TAG=1",
         '"A>B" <sip:x>;tag = y', "", "<sip:a;tag=1>", "<sip:b>;x;tag", "<sip:c>; tag =  "],
    )  # fmt: skip
    call_id = pick(["1-1234@127.0.0.2", "", "c" * 200, "a b", "x,y", "é".encode().decode()])
    cseq_number = pick(["1", "4294967295", "007"], ["12345678901", "", "x"])
    cseq_method = pick([method], ["INVITE", f" {method}", f"{method} "])
    body = pick([b"", SDP])
    length = pick([str(len(body)), None], ["0", "", "x", "99999", "0" * 10])
    headers = [("Via", v) for v in vias] + [
        ("From", "<sip:alice@127.0.0.2:5061>;tag=abc"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq_number} {cseq_method}"),
        ("Max-Forwards", "70"),
    ]
    if length is not None:
        headers.append(("Content-Length", length))
    headers += draw(st.lists(st.sampled_from(
        [("From", "<sip:other@x>;tag=2"), ("Subject", "hi"), ("Accept", ""),
         ("X-Sipmap-Account-Sid", "AC0"), ("Via", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK-c")]
        + ([] if plain else [("Route", "<sip:127.0.0.1:5060;lr>"), ("X Bad", "1"),
                             ("Bad\x01", "1"), ("Contact", "<sip:\u00e9@b>")])
    ), max_size=3))  # fmt: skip
    if draw(st.booleans()):
        headers = draw(st.permutations(headers))
    rendered = []
    for name, value in headers:
        spelled = pick(NAMES.get(name, [name]))
        separator = pick([": ", ":", ":  "], [" : ", ":\t"])
        trailer = pick(["", " "], ["\t"])
        rendered.append(f"{spelled}{separator}{value}{trailer}")
    if not plain and draw(st.integers(0, 5)) == 0:
        rendered.insert(draw(st.integers(0, len(rendered))), " folded")
    newline = pick(["\r\n"], ["\n"])
    start = f"{method} {uri} SIP/2.0"
    data = (newline.join([start, *rendered]) + newline + newline).encode() + body
    if not plain and draw(st.integers(0, 3)) == 0:  # a byte replaced anywhere
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data, (ip, port)


OPTIONS = st.fixed_dictionaries({
    "upstream": st.sampled_from([None, UPSTREAM]),
    "drop_unrecognized": st.booleans(),
    "final_response": st.sampled_from([480, 486, 603]),
})  # fmt: skip


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), OPTIONS, st.sampled_from([0, 1000]))
def test_fast_path_equals_python_path(
    loop: asyncio.AbstractEventLoop,
    request: tuple[bytes, tuple[str, int]],
    options: dict[str, Any],
    budget: int,
) -> None:
    data, address = request
    path, _ = both_ways(loop, data, address, options, budget)
    event(path)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=2, max_size=4), OPTIONS, st.sampled_from([0, 1000]))
def test_requests_in_turn_are_answered_as_by_python(
    loop: asyncio.AbstractEventLoop,
    batch: list[tuple[bytes, tuple[str, int]]],
    options: dict[str, Any],
    budget: int,
) -> None:
    """Different requests from one source through one edge: a decision cached for one
    is only reused for another when the Python path would decide the same."""
    source = batch[0][1]
    in_turn(loop, [(data, source) for data, _ in batch], options, budget)


def test_users_at_one_host_share_a_decision(loop: asyncio.AbstractEventLoop) -> None:
    async def run() -> tuple[int, list[bytes]]:
        edge, _, _ = make_edge({}, 1000)
        asked = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            endpoint = UdpEndpoint(edge, sock)

            def decide(*args: Any) -> Any:
                asked.append(args[2])
                return endpoint._decide(*args)

            answers = []
            for user in ("+15550000001", "+15550000002", "bob"):
                data = invite(uri=f"sip:{user}@127.0.0.1:5060")
                replies = endpoint.fast.respond(data, ALLOWED_IP, 5061, decide)
                assert replies is not None
                answers += [reply.split(b" ", 2)[1] for reply, _ in replies]
        return len(asked), answers

    asked, answers = loop.run_until_complete(run())
    assert asked == 1  # the other two from the cache
    assert answers == [b"100", b"480"] * 3
    # and each is what the Python path answers, with its own To and Call-ID; from a
    # source outside the ACL, a URI naming the domain is accepted and others are not,
    # so a key that lumped hosts together would answer wrongly
    uris = [
        "sip:+15550000001@127.0.0.1:5060", "sip:a@acme.sip.twilio.com", "sip:b@127.0.0.1:5060",
        "sip:c@acme.sip.twilio.com", "sip:127.0.0.1", "tel:+1555", "sip:d@acme.sip.twilio.com",
    ]  # fmt: skip
    for ip in (ALLOWED_IP, OUTSIDE_IP):
        paths = in_turn(loop, [(invite(uri=uri), (ip, 5061)) for uri in uris], {})
        assert [path for path, _ in paths] == ["fast"] * len(uris)
    statuses = [sent[-1][0].split(b" ", 2)[1] for _, sent in paths]
    assert statuses == [b"403", b"480", b"403", b"480", b"403", b"403", b"480"]


# -- the common requests take the fast path -------------------------------------------

COMMON = {
    "SIPp OPTIONS": SIPP_OPTIONS,
    "INVITE with SDP": invite(),
    "ACK": invite(method="ACK", body=b""),
    "BYE": invite(method="BYE", cseq="2", body=b""),
    "compact form": SIPP_OPTIONS.replace(b"Via:", b"v:").replace(b"Call-ID:", b"i:"),
    "two Via lines": SIPP_OPTIONS.replace(
        b"From:", b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-x\r\nFrom:"
    ),
}


@pytest.mark.parametrize("name", COMMON)
@pytest.mark.parametrize("ip", [ALLOWED_IP, UNMAPPED_IP, OUTSIDE_IP, NO_ACL_IP])
def test_common_requests_take_the_fast_path(
    loop: asyncio.AbstractEventLoop, name: str, ip: str
) -> None:
    path, sent = both_ways(loop, COMMON[name], (ip, 5061), {})
    assert path == ("fast-handled" if name == "ACK" else "fast")
    statuses = [data.split(b" ", 2)[1] for data, _ in sent]
    expected = {
        ALLOWED_IP: [b"200"] if "OPTIONS" in name or "compact" in name or "Via" in name
        else [b"100", b"480"] if "INVITE" in name else [b"480"],
        UNMAPPED_IP: [b"403"], OUTSIDE_IP: [b"403"], NO_ACL_IP: [b"403"],
    }[ip]  # fmt: skip
    assert statuses == ([] if name == "ACK" else expected)


def test_forwarded_requests_are_left_to_python(loop: asyncio.AbstractEventLoop) -> None:
    path, sent = both_ways(loop, invite(), (ALLOWED_IP, 5061), {"upstream": UPSTREAM})
    assert path == "fast-handled"  # decided in Python, proxied by the Python path
    assert [address for _, address in sent] == [(ALLOWED_IP, 5061), ("127.0.0.9", 5080)]


def test_a_cached_decision_is_forgotten_when_the_recognizer_changes(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def run() -> list[bytes]:
        recognizer = Recognizer()
        edge, _, registry = make_edge({}, 1000, recognizer)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            endpoint = UdpEndpoint(edge, sock)
            statuses = []
            for step in range(4):
                if step == 2:  # the mapping goes: the same source is not recognised now
                    recognizer.recognize = lambda ip, uri: recognize(UNMAPPED_IP, uri)
                if step == 3:
                    recognizer.generation += 1
                replies = endpoint.fast.respond(SIPP_OPTIONS, ALLOWED_IP, 5061, endpoint._decide)
                assert replies is not None
                statuses.append(replies[0][0].split(b" ", 2)[1])
            samples = counted(registry)
        assert samples[("sipmap_sip_recognition_seconds_count", ())] == 4
        assert samples[("sipmap_sip_answered_total", (("status", "200"),))] == 3
        return statuses

    # steps 1 and 2 come from the cache (step 2 is stale: nobody said the state changed)
    assert loop.run_until_complete(run()) == [b"200", b"200", b"200", b"403"]


def test_the_to_tag_is_blake2b_as_in_python(loop: asyncio.AbstractEventLoop) -> None:
    for call_id in ("", "a", "x" * 127, "y" * 128, "z" * 129, "w" * 1000):
        data = SIPP_OPTIONS.replace(b"1-1234@127.0.0.2", call_id.encode())
        _, sent = both_ways(loop, data, (ALLOWED_IP, 5061), {})
        via = "SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1234-1-0;rport"
        seed = hashlib.blake2b(f"{call_id}\x00{via}".encode(), digest_size=8).hexdigest()
        assert f";tag=sm{seed[:12]}\r\n".encode() in sent[0][0]


# -- the socket side --------------------------------------------------------------------


def test_pump_answers_a_burst_in_batches() -> None:
    """Real sockets: a burst larger than a batch is answered whole, one batch a call."""

    def decide(data: bytes, address: tuple[Any, ...], uri: str, method: str) -> int:
        return 0 if address[0] == "127.0.0.1" else HANDLED

    slow: list[bytes] = []
    fast = FastPath([((b"SIP/2.0 200 OK\r\n", b"Server: t\r\n", True),)], 4096, BATCH)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        server.bind(("127.0.0.1", 0))
        client.bind(("127.0.0.1", 0))
        client.settimeout(5)
        total = 3 * BATCH + 5
        for i in range(total):
            data = SIPP_OPTIONS if i % 10 else b"garbage"
            client.sendto(data, server.getsockname())
        reads: list[int] = []
        while sum(reads) < total:
            read, unsent = fast.pump(server.fileno(), decide, lambda d, a: slow.append(d))
            assert unsent == 0
            reads.append(read)
        assert max(reads) == BATCH
        assert fast.pump(server.fileno(), decide, lambda d, a: None) == (0, 0)  # drained
        answers = [client.recv(4096) for _ in range(total - len(slow))]
    assert slow == [b"garbage"] * len(slow) and len(slow) == (total + 9) // 10
    assert all(a.startswith(b"SIP/2.0 200 OK\r\n") for a in answers)
    # without rport, the reply goes to the Via's port; with it, to the source port
    assert all(b";rport=" in a and b"Content-Length: 0\r\n\r\n" in a for a in answers)


def test_pump_answers_ipv6_with_the_source_address() -> None:
    seen: list[tuple[Any, ...]] = []

    def decide(data: bytes, address: tuple[Any, ...], uri: str, method: str) -> int:
        seen.append(address)
        return 0

    fast = FastPath([((b"SIP/2.0 200 OK\r\n", b"Server: t\r\n", True),)], 4096)
    request = SIPP_OPTIONS.replace(b"127.0.0.2:5061;branch", b"pbx.example.com;branch")
    with (
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as client,
    ):
        server.bind(("::1", 0))
        client.bind(("::1", 0))
        client.settimeout(5)
        client.sendto(request, server.getsockname()[:2])
        while fast.pump(server.fileno(), decide, lambda d, a: None) == (0, 0):
            pass
        answer = client.recv(4096)
        port = client.getsockname()[1]
    assert seen == [("::1", port, 0, 0)]
    via = f"Via: SIP/2.0/UDP pbx.example.com;branch=z9hG4bK-1234-1-0;rport={port};received=::1"
    assert via.encode() in answer


@pytest.mark.parametrize(
    "answers", [[()], [((b"x", b"y"),)], [((b"x", b"y", True),) * 3], ["no"], 5]
)
def test_bad_answer_tables_are_refused(answers: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        FastPath(answers, 4096)


def test_decide_must_name_an_answer() -> None:
    fast = FastPath([((b"SIP/2.0 200 OK\r\n", b"", True),)], 4096)
    with pytest.raises(ValueError, match="no such answer"):
        fast.respond(SIPP_OPTIONS, ALLOWED_IP, 5061, lambda d, a, u, m: 7)
    with pytest.raises(ZeroDivisionError):
        fast.respond(SIPP_OPTIONS, ALLOWED_IP, 5061, lambda d, a, u, m: 1 // 0)


def test_the_scanner_under_sanitizers(tmp_path: Path) -> None:
    """The C scanner, reply builder and cache over 200,000 mutated requests, built with
    AddressSanitizer and UndefinedBehaviorSanitizer (scan_fuzz.c)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler is not None, "a C compiler builds sipmap's extensions; none found"
    binary = tmp_path / "scan_fuzz"
    sources = [
        SIP_SOURCES / f"{name}.c" for name in ("sip_scan", "sip_reply", "sip_cache", "sip_blake2b")
    ]
    subprocess.run(
        [compiler, "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         f"-I{SIP_SOURCES}", str(Path(__file__).with_name("scan_fuzz.c")), *map(str, sources),
         "-o", str(binary)],
        check=True,
    )  # fmt: skip
    done = subprocess.run(
        [str(binary), "200000", "8"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    accepted = int(done.stdout.split()[0])
    assert accepted > 1000, done.stdout  # the mutations leave many requests whole
