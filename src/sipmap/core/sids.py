"""Twilio-style SIDs: a two-letter prefix and 32 lowercase hex digits."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable

ACCOUNT = "AC"
API_KEY = "SK"
IP_RECORD = "IL"
SOURCE_IP_MAPPING = "IB"
SIP_DOMAIN = "SD"
IP_ACCESS_CONTROL_LIST = "AL"
IP_ADDRESS = "IP"
REQUEST = "RQ"

SidFactory = Callable[[str], str]

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_LOWER_HEX32 = re.compile(r"[0-9a-f]{32}")


class _RandomPool:
    """Cryptographic random bytes drawn from the OS 4 KiB at a time.

    os.urandom gives up the GIL on every call; on the request path of a busy server
    that hand-off to the store's writer thread cost far more than the bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._position = 0

    def hex16(self) -> str:
        with self._lock:
            if self._position + 16 > len(self._buffer):
                self._buffer = os.urandom(4096)
                self._position = 0
            chunk = self._buffer[self._position : self._position + 16]
            self._position += 16
        return chunk.hex()


_POOL = _RandomPool()


def random_sid(prefix: str) -> str:
    return prefix + _POOL.hex16()


def counter_sids(start: int = 1) -> SidFactory:
    """Deterministic SIDs for tests: AC00…01, AC00…02, …"""
    state = {"n": start}

    def make(prefix: str) -> str:
        n = state["n"]
        state["n"] = n + 1
        return f"{prefix}{n:032x}"

    return make


def normalize(value: str, prefix: str) -> str | None:
    """The canonical (lowercase hex) form of `value` if it is a SID with `prefix`, else None.

    The specs' patterns accept either case in the hex part, so lookups must too.
    """
    if len(value) != 34 or not value.startswith(prefix):
        return None
    if _LOWER_HEX32.fullmatch(value, 2):  # already canonical, as every SID we mint
        return value
    if not _HEX32.fullmatch(value, 2):
        return None
    return prefix + value[2:].lower()
