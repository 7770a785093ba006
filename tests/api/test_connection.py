"""The connection limits without sockets: bytes in, a response out, for a request split
at every byte boundary (api/connection.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from sipmap.api.connection import CoalescingTransport, LimitedProtocol, Limits, protocol_class

pytestmark = pytest.mark.anyio

LIMITS = Limits(max_header_bytes=300, max_headers=5, header_timeout=60, keep_alive_timeout=60)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def app(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps({"path": scope["path"], "headers": len(scope["headers"])}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def connect(limits: Limits = LIMITS) -> tuple[LimitedProtocol, Transport]:
    config = Config(app, http=protocol_class(limits), ws="none", lifespan="off", access_log=False)
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[call-arg]
        config=config, server_state=ServerState(), app_state={}
    )
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport  # type: ignore[return-value]


async def feed(pieces: list[bytes], limits: Limits = LIMITS) -> Transport:
    protocol, transport = connect(limits)
    for piece in pieces:
        if transport.closed:
            break
        protocol.data_received(piece)
    for _ in range(10):  # let the application task run
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


def splits(data: bytes) -> list[list[bytes]]:
    return [[data[:i], data[i:]] for i in range(1, len(data))] + [[bytes([b]) for b in data]]


def status(transport: Transport) -> int:
    return int(transport.written.split(b" ", 2)[1])


REQUEST = b"GET /v1/IpRecords HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-B: 2\r\n\r\n"


@pytest.mark.parametrize("pieces", splits(REQUEST))
async def test_a_request_within_the_limits_is_served_however_it_is_split(
    pieces: list[bytes],
) -> None:
    transport = await feed(pieces)
    assert status(transport) == 200
    assert b'{"path": "/v1/IpRecords", "headers": 3}' in transport.written


BIG = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300 + b"\r\n\r\n"
MANY = b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(6)) + b"\r\n"


@pytest.mark.parametrize("pieces", splits(BIG) + splits(MANY))
async def test_a_head_over_the_limits_gets_431_however_it_is_split(pieces: list[bytes]) -> None:
    transport = await feed(pieces)
    assert status(transport) == 431
    assert transport.closed
    body = json.loads(transport.written.partition(b"\r\n\r\n")[2])
    assert body["status"] == 431 and body["code"] == 20001


async def test_a_malformed_request_gets_a_twilio_body() -> None:
    transport = await feed([b"GET /health HTTP/1.1\r\nX-Bad: a\x00b\r\n\r\n"])
    assert status(transport) == 400
    assert b"application/json" in transport.written
    assert transport.closed


async def test_the_oldest_waiting_connection_makes_room() -> None:
    limits = Limits(max_connections=2)
    cls = protocol_class(limits)
    config = Config(app, http=cls, ws="none", lifespan="off", access_log=False)
    config.load()
    state = ServerState()
    made = []
    for _ in range(3):
        protocol = cls(config=config, server_state=state, app_state={})
        transport = Transport()
        protocol.connection_made(transport)
        made.append((protocol, transport))
    assert [t.closed for _, t in made] == [True, False, False]
    for protocol, _ in made:
        protocol.connection_lost(None)
    assert not cls.evictable


async def test_each_response_is_one_write_and_pipelined_ones_keep_their_order() -> None:
    protocol, transport = connect()
    writes: list[bytes] = []
    write = transport.write

    def recording(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data))
        write(data)

    transport.write = recording  # type: ignore[method-assign]
    protocol.data_received(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    for _ in range(10):
        await asyncio.sleep(0)
    # Head and body together, once per response, in the order asked; the second
    # response is all sent before the connection closes.
    assert len(writes) == 2
    for data, path in zip(writes, (b"/a", b"/b"), strict=True):
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b'"path": "' + path + b'"' in data
        assert data.endswith(b"\r\n0\r\n\r\n")  # the chunked body's last chunk
    assert transport.closed


async def test_the_coalescing_transport_sends_in_order_and_before_closing() -> None:
    real = Transport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"a")
    transport.writelines([b"b", b"", b"c"])
    assert real.written == b""  # held until the end of the turn
    await asyncio.sleep(0)
    assert real.written == b"abc"
    transport.write(b"d")
    transport.close()  # sends first, then closes
    assert real.written == b"abcd" and real.closed
    await asyncio.sleep(0)
    assert real.written == b"abcd"

    real = Transport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"lost")
    real.closed = True  # the connection went away before the end of the turn
    await asyncio.sleep(0)
    assert real.written == b""
