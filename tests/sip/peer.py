"""SIPp, the real SIP peer the end-to-end tests drive (Debian package `sip-tester`).

There is no SIPp on PyPI, so it is the test suite's one system package. A missing
SIPp is never a reason to skip: as root with apt-get (CI, a fresh container) it is
installed here, once (test processes running in parallel take turns); otherwise the
tests that need it fail and say how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ..locks import machine_lock

PACKAGE = "sip-tester"


def _install() -> str | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root, or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", PACKAGE]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return None


def require_sipp() -> str:
    """The path of `sipp`, installing it if possible; fails the test if not."""
    path = shutil.which("sipp")
    if path is None:
        why = None
        with machine_lock("apt"):  # one apt-get at a time: dpkg has one lock
            if shutil.which("sipp") is None:  # not installed by another process meanwhile
                why = _install()
        path = shutil.which("sipp")
        if path is None:
            pytest.fail(
                f"SIPp is needed by the SIP edge's end-to-end tests and could not be "
                f"installed ({why}): apt-get install {PACKAGE}",
                pytrace=False,
            )
    return path
