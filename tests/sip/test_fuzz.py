"""Fuzzing the parser (and the responder behind it): whatever the bytes, the parser
raises nothing but its own ParseError, and the responder raises nothing at all.

About a minute in all on CI (`FUZZ` examples per test; deadline off since the
machine is shared). atheris (optional: `pip install -e '.[fuzz]'`) drives the
same `one_input` in `atheris_fuzz.py`; what it found is kept in test_found_by_atheris.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipmap.recognize.recognizer import ALLOWED, NO_SOURCE_MAPPING, Recognition
from sipmap.sip._fast import FastPath
from sipmap.sip.counters import BUCKET_BOUNDS
from sipmap.sip.message import Response
from sipmap.sip.parser import ParseError, StreamParser, parse_datagram
from sipmap.sip.responder import EdgeConfig, Responder, Source, Target
from sipmap.sip.udp import wire_answers

from .samples import ALL

FUZZ = settings(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ACCEPT = Recognition(
    True, True, ALLOWED, "source_ip", "SD1", "a.sip.twilio.com", "AC1", "IL1", "IB1"
)
REJECT = Recognition(False, False, NO_SOURCE_MAPPING)
RESPONDERS = (
    Responder(EdgeConfig("127.0.0.1", 5060), lambda ip, uri: ACCEPT),
    Responder(
        EdgeConfig("127.0.0.1", 5060, Target("127.0.0.9", 5080, "udp")), lambda ip, uri: ACCEPT
    ),
    Responder(EdgeConfig("127.0.0.1", 5060), lambda ip, uri: REJECT),
)
SOURCES = (Source("127.0.0.2", 5061, "udp"), Source("127.0.0.9", 5080, "tcp"))


class Versioned:
    generation = 0


# The C fast path over the same bytes: every answer in turn, cached or not.
FAST = FastPath(wire_answers(RESPONDERS[0]), 4096, recognizer=Versioned(), bounds=BUCKET_BOUNDS)
ANSWERS = len(RESPONDERS[0].answers)


def fast_decide(
    data: bytes, address: object, uri: str, method: str
) -> int | tuple[int, tuple[int, ...]]:
    index = len(data) % (ANSWERS + 1) - 1  # HANDLED, or an answer
    return (index, (len(uri) % 4,)) if len(method) % 2 else index


def one_input(data: bytes) -> None:
    """Datagram and stream parsing of `data`, and every responder over the result;
    the fast path's answers to `data` are well-formed responses."""
    for ip in ("127.0.0.2", "::1"):
        replies = FAST.respond(data, ip, 5061, fast_decide)
        for reply, _ in replies or []:
            assert isinstance(parse_datagram(reply, 1 << 20), Response)
        if replies is not None and replies:
            assert parse_datagram(data, 4096) is not None  # the Python parser agrees
    for responder in RESPONDERS:
        responder.recognise_first_line(data, SOURCES[0])
    try:
        messages = [parse_datagram(data, 4096)]
    except ParseError as error:
        for responder in RESPONDERS:
            for source in SOURCES:
                responder.handle_error(error, source)
        messages = []
    parser = StreamParser(4096)
    try:
        for cut in range(0, len(data), max(1, len(data) // 3)):
            messages += parser.feed(data[cut : cut + max(1, len(data) // 3)])
    except ParseError:
        pass
    for message in messages:
        if message is None:
            continue
        for responder in RESPONDERS:
            for source in SOURCES:
                responder.handle(message, source)


def test_found_by_atheris() -> None:
    for data in (b"'\nV:,",):
        one_input(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    one_input(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real message with bytes replaced, inserted, removed or duplicated."""
    data = bytearray(draw(st.sampled_from(ALL)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        choice = draw(st.integers(0, 3))
        chunk = draw(st.sampled_from([b":", b"\r\n", b" ", b";", b",", b"<", b"[", b"\x00", b"\xff",
                                      b"Via: ", b"l: 9", b"tag=", b"rport", b"\r\n\r\n", b"99999", "²".encode()]))  # fmt: skip
        if choice == 0:
            data[at:at] = chunk
        elif choice == 1:
            del data[at : at + draw(st.integers(1, 40))]
        elif choice == 2:
            data[at : at + len(chunk)] = chunk
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    one_input(data)


@FUZZ
@given(st.lists(st.sampled_from(ALL), max_size=4), st.binary(max_size=64))
def test_streams_of_valid_messages_with_garbage_after(parts: list[bytes], tail: bytes) -> None:
    one_input(b"".join(parts) + tail)
