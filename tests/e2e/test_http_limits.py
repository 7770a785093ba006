"""What a client can make the HTTP server hold, over raw sockets: header size and
count, the header and body deadlines, idle connections, the connection cap, and
Twilio's error body for requests the parser rejects (issue 10, items 3, 4 and 11).

Timeouts in these tests only bound a failure; nothing asserts how fast anything is.
"""

from __future__ import annotations

import base64
import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import oai
from ..conftest import Server, start_server

WAIT = 30.0  # seconds a test waits for something that must happen before it fails


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with short deadlines, so each test sees them pass."""
    server = start_server(
        tmp_path_factory.mktemp("limits") / "db",
        "--header-timeout", "1", "--keep-alive-timeout", "1", "--body-timeout", "1",
    )  # fmt: skip
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    return conn


def read_all(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_twilio_error(response: bytes, status: int) -> dict[str, object]:
    code, headers, body = parse(response)
    assert code == status, response[:300]
    assert headers["content-type"] == "application/json"
    error: dict[str, object] = json.loads(body)
    oai.validate_error(status, error)
    return error


def basic(server: Server) -> bytes:
    return base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode())


def health(server: Server) -> int:
    with server.http() as http:
        return http.get("/health").status_code


# -- header size and count --------------------------------------------------------------------


def test_a_header_of_32_mib_is_refused_before_it_is_read(limited: Server) -> None:
    conn = connect(limited)
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    chunk = b"a" * (1024 * 1024)
    try:
        while sent < 32 * len(chunk):
            conn.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    # The server closed the connection long before the header ended (it reads at
    # most the limit and a read's worth; the rest is in socket buffers or refused).
    assert sent < 32 * len(chunk)
    conn.close()
    assert health(limited) == 200


def test_a_head_over_the_size_limit_gets_431(limited: Server) -> None:
    with connect(limited) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n")
        error = assert_twilio_error(read_all(conn), 431)
    assert error["message"] == "Request header fields too large"


def test_a_head_under_the_size_limit_is_served(limited: Server) -> None:
    with connect(limited) as conn:
        conn.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-Big: " + b"a" * 15_000 + b"\r\n\r\n"
        )
        assert parse(read_all(conn))[0] == 200


@pytest.mark.parametrize(("count", "status"), [(98, 200), (99, 431), (5000, 431)])
def test_header_count(limited: Server, count: int, status: int) -> None:
    """`count` headers besides Host and Connection: 100 in all is the limit."""
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(count))
    with connect(limited) as conn:
        conn.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"
        )
        response = read_all(conn)
    if status == 200:
        assert parse(response)[0] == 200
    else:
        assert_twilio_error(response, 431)


def test_a_nul_byte_in_a_header_gets_a_twilio_error(limited: Server) -> None:
    with connect(limited) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
        error = assert_twilio_error(read_all(conn), 400)
    assert error["code"] == 20001


def test_garbage_gets_a_twilio_error(limited: Server) -> None:
    with connect(limited) as conn:
        conn.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        assert_twilio_error(read_all(conn), 400)


# -- deadlines and idle connections ------------------------------------------------------------


def test_headers_trickled_a_byte_at_a_time_are_cut_off(limited: Server) -> None:
    """Slowloris: each byte would re-arm a per-read timer; the head has one deadline."""
    with connect(limited) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\n")
        received = b""
        for _ in range(int(WAIT / 0.1)):
            try:
                conn.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            conn.settimeout(0.1)
            try:
                received += conn.recv(65536)
            except TimeoutError:
                continue
            if received:
                break
        conn.settimeout(WAIT)
        assert received, "the server never cut off the trickled head"
        assert_twilio_error(received + read_all(conn), 408)


def test_a_connection_that_sends_nothing_is_closed(limited: Server) -> None:
    with connect(limited) as conn:
        assert read_all(conn) == b""


def test_a_kept_alive_connection_is_closed_when_idle(limited: Server) -> None:
    with connect(limited) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        code, headers, _ = parse(read_all(conn))
    assert code == 200 and "close" not in headers.get("connection", "")


def test_a_body_trickled_past_its_deadline_gets_408(limited: Server) -> None:
    with connect(limited) as conn:
        conn.sendall(
            b"POST /v1/IpRecords HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic(limited)
            + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"IpAddress=10."
        )  # fmt: skip
        error = assert_twilio_error(read_all(conn), 408)
    assert error["message"] == "Request body not received in time"
    with limited.http() as http:
        assert http.get("/v1/IpRecords").json()["ip_records"] == []


def test_a_body_trickled_after_an_early_answer_is_cut_off_at_its_deadline(
    limited: Server,
) -> None:
    with connect(limited) as conn:
        conn.sendall(
            b"POST /v1/IpRecords HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nIpAddress="
        )
        # 401 at once (no credentials), then the connection closes at the body
        # deadline: the rest of the body never came.
        assert_twilio_error(read_all(conn), 401)


# -- the connection cap ------------------------------------------------------------------------


def test_idle_connections_beyond_the_open_file_limit_do_not_stop_new_clients(
    tmp_path: Path,
) -> None:
    """1,100 silent connections to a server limited to 1,024 open files: a new client is
    still served at once (the longest-waiting silent connection makes room for it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500:  # this process holds the 1,100 connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    server = start_server(
        tmp_path / "db",
        "--keep-alive-timeout", "3600", "--header-timeout", "3600",
        command_prefix=("prlimit", "--nofile=1024:1024", "--"),
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(connect(server))
        # Half-sent heads hold their connections too (a slowloris that never finishes).
        for conn in idle[-50:]:
            conn.sendall(b"GET /health HTTP/1.1\r\n")
        for _ in range(20):
            with server.http() as http:
                assert http.get("/health").status_code == 200
        # The server's own descriptors stayed below the limit.
        assert len(list(Path(f"/proc/{server.process.pid}/fd").iterdir())) < 1024
        # The oldest silent connections were closed to make room.
        idle[0].settimeout(WAIT)
        assert idle[0].recv(1) == b""
    finally:
        for conn in idle:
            conn.close()
        server.stop()


def test_idle_sip_connections_do_not_use_up_the_descriptors_http_needs(tmp_path: Path) -> None:
    """The SIP edge's TCP connections share the open-file budget with HTTP: 1,100 silent
    SIP connections to a server limited to 1,024 open files leave the API serving."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    server = start_server(
        tmp_path / "db", "--sip-tcp-idle-timeout", "3600",
        command_prefix=("prlimit", "--nofile=1024:1024", "--"),
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        for n in range(1100):  # from 110 addresses: the edge also caps each source's share
            source = (f"127.0.1.{n % 110 + 1}", 0)
            idle.append(
                socket.create_connection(
                    ("127.0.0.1", server.sip_port), timeout=WAIT, source_address=source
                )
            )
        for _ in range(20):
            with server.http() as http:
                assert http.get("/health").status_code == 200
        assert len(list(Path(f"/proc/{server.process.pid}/fd").iterdir())) < 1024
    finally:
        for conn in idle:
            conn.close()
        server.stop()


def test_requests_in_the_application_are_not_evicted(tmp_path: Path) -> None:
    """With every connection busy in the application, a new connection is refused
    instead of cutting off a request in progress."""
    server = start_server(tmp_path / "db", "--max-connections", "2", "--body-timeout", "60")
    try:
        held = []
        for _ in range(2):
            conn = connect(server)
            conn.sendall(
                b"POST /v1/IpRecords HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic(server)
                + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 18\r\n\r\nIpAddress="
            )  # fmt: skip
            held.append(conn)
        time.sleep(2)  # not a timing assertion: lets the server take both requests in
        with connect(server) as extra:
            assert read_all(extra) == b""  # closed without a request being read
        for conn in held:
            conn.sendall(b"10.0.0.1")
            code, _, body = parse(conn.recv(65536))
            assert code == 201, body
            conn.close()
    finally:
        server.stop()
