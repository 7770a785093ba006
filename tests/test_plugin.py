"""The pytest plugin (entry point `pytest11`), as a user's own suite meets it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_SUITE = """
from twilio.base.exceptions import TwilioRestException


def test_provisioning(twilio_client):
    record = twilio_client.voice.v1.ip_records.create(ip_address="192.0.2.10")
    assert twilio_client.voice.v1.ip_records(record.sid).fetch().ip_address == "192.0.2.10"


def test_each_test_gets_a_fresh_server(sipmap_server, twilio_client):
    assert twilio_client.voice.v1.ip_records.list() == []
    assert sipmap_server.base_url.startswith("http://127.0.0.1:")
    assert sipmap_server.process.poll() is None


def test_errors_are_twilios(twilio_client):
    try:
        twilio_client.voice.v1.ip_records("IL" + "0" * 32).fetch()
    except TwilioRestException as error:
        assert (error.status, error.code) == (404, 20404)
    else:
        raise AssertionError("no error")
"""


def test_a_user_suite_gets_the_fixtures_without_glue_code(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_SUITE)
    # No conftest.py, no imports of sipmap: the installed entry point provides the fixtures.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_loading_the_plugin_does_not_import_twilio() -> None:
    code = "import sys, sipmap.pytest_plugin; print('twilio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
