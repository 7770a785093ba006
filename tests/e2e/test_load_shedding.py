"""More requests in flight than --max-concurrent-requests: 429/20429 at once."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

from ..conftest import start_server
from ..oai import validate_error


def test_requests_beyond_the_limit_get_429(tmp_path: Path) -> None:
    server = start_server(tmp_path / "db", "--max-concurrent-requests", "1")
    try:
        # Hold the only slot: a POST whose body never finishes arriving.
        auth = base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode())
        held = socket.create_connection(("127.0.0.1", server.port))
        held.sendall(
            b"POST /v1/IpRecords HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"IpAddress=10."
        )
        with server.http() as http:
            for _ in range(50):  # until the server has taken the held request in
                response = http.get("/v1/IpRecords")
                if response.status_code == 429:
                    break
            assert response.status_code == 429
            validate_error(429, response.json())
            assert response.json()["code"] == 20429
            held.close()
            for _ in range(50):
                response = http.get("/v1/IpRecords")
                if response.status_code == 200:
                    break
            assert response.status_code == 200
            assert response.json()["ip_records"] == []
    finally:
        server.stop()
