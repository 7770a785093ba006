"""SIGINT and SIGTERM stop a loaded server cleanly: exit 0, one log line, every
acknowledged write kept, the WAL checkpointed into the database file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from sipmap import testing

WRITERS = 6
BEFORE_SIGNAL = 150  # acknowledged creates before the signal is sent


def _start(db: Path, stderr: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = testing.free_port()
    env = {**os.environ, "SIPMAP_ACCOUNT_SID": testing.DEFAULT_ACCOUNT_SID,
           "SIPMAP_AUTH_TOKEN": testing.DEFAULT_AUTH_TOKEN}  # fmt: skip
    with stderr.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sipmap.cli",
                "serve",
                "--port",
                str(port),
                "--db",
                str(db),
                "--sip-port",
                str(testing.free_sip_port()),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            pass
        assert process.poll() is None, stderr.read_text()
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the server did not start")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_stop_signal_under_load(sig: signal.Signals, tmp_path: Path) -> None:
    db, log = tmp_path / "stop.db", tmp_path / "stderr.log"
    process, base_url = _start(db, log)
    acknowledged: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    enough = threading.Event()

    def write(worker: int) -> None:
        auth = (testing.DEFAULT_ACCOUNT_SID, testing.DEFAULT_AUTH_TOKEN)
        with httpx.Client(base_url=base_url, auth=auth, timeout=30) as http:
            for n in range(100_000):
                try:
                    response = http.post(
                        "/v1/IpRecords", data={"IpAddress": f"10.{worker}.{n // 256 % 256}.1"}
                    )
                except httpx.TransportError:
                    return  # the server stopped accepting: expected
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        acknowledged.append(response.json()["sid"])
                    if len(acknowledged) >= BEFORE_SIGNAL:
                        enough.set()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(60), "the load never got going"
        process.send_signal(sig)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        for thread in threads:
            thread.join(60)
    output = log.read_text()
    assert "Traceback" not in output, output
    # One line when it started listening, one when it stopped.
    assert output.splitlines()[0].startswith("INFO: sipmap listening on http://127.0.0.1:")
    assert output.splitlines()[1:] == [f"INFO: sipmap stopped ({sig.name}); the store is closed"]
    # Requests in flight were finished, not failed.
    assert set(statuses) == {201}, sorted(set(statuses))
    # Closed: the write-ahead log was checkpointed into the file and removed.
    assert not Path(f"{db}-wal").exists()
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT sid FROM ip_records")}
    assert set(acknowledged) <= stored
    assert len(acknowledged) >= BEFORE_SIGNAL
