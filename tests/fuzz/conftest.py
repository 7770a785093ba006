"""Reports how many cases the fuzz test ran."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from .test_fuzz import COUNTS

    if COUNTS:
        terminalreporter.write_line(
            f"schemathesis: {sum(COUNTS.values())} cases over {len(COUNTS)} operations"
        )
