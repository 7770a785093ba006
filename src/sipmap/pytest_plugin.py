"""pytest fixtures for a user's own suite, loaded through the `pytest11` entry point:

    def test_provisioning(twilio_client):
        record = twilio_client.voice.v1.ip_records.create(ip_address="192.0.2.10")
        assert twilio_client.voice.v1.ip_records(record.sid).fetch().ip_address == "192.0.2.10"

`sipmap_server`: a real `sipmap serve` process on a free loopback port and a fresh SQLite
file, for one test (sipmap.testing.RunningServer). `twilio_client`: the official SDK
pointed at it, as its bootstrap account. Only `twilio_client` needs the `twilio`
package; importing this module imports neither it nor anything beyond sipmap.testing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import testing


@pytest.fixture
def sipmap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.RunningServer]:
    """A throwaway sipmap server with its own database, stopped after the test."""
    folder: Path = tmp_path_factory.mktemp("sipmap")
    with testing.sipmap_server(folder / "sipmap.db") as server:
        yield server


@pytest.fixture
def twilio_client(sipmap_server: testing.RunningServer) -> Any:
    """The official `twilio.rest.Client`, talking to `sipmap_server`."""
    return testing.twilio_client(sipmap_server)
