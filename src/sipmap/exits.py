"""The `sipmap` command's exit codes, and the one way an operator's mistake ends it.

A mistake is reported as one line on stderr (`error: …`) and a code saying what
kind of mistake it was (documented in docs/configuration.md); never a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    NOT_RECOGNIZED = 1  # `recognize`: the request is not recognised, or not allowed
    USAGE = 2  # bad arguments or environment (argparse uses 2 as well)
    DATABASE = 3  # --db cannot be used: missing, not a database, read-only, unreachable
    REFUSED = 4  # the command named something that does not exist, or broke a rule
    LISTEN = 5  # the server cannot listen where asked (port taken, not permitted)
    OUTPUT_CLOSED = 6  # stdout was closed before all output was written (a broken pipe)


class Failure(Exception):
    """Ends the command with `code`, printing `error: <message>` on stderr."""

    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
