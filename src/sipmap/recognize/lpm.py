"""IPv4 longest-prefix-match table (C), source-address parsing, and a reference table."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from sipmap.recognize._lpm import Table4

__all__ = ["RECORD", "BruteForceTable", "Table4", "pack_entries", "parse_source_ip"]

RECORD = struct.Struct("<IB3xi")
"""One `Table4.build` record: (network, prefix_len, value)."""

_MAPPED_PREFIX = "::ffff:"


def pack_entries(entries: Iterable[tuple[int, int, int]]) -> bytes:
    """Pack (network, prefix_len, value) triples for `Table4.build`."""
    pack = RECORD.pack
    return b"".join(pack(network, prefix_len, value) for network, prefix_len, value in entries)


def parse_source_ip(text: str) -> tuple[int, int] | None:
    """Parse a source address into (family, int); None if it is not an IP address.

    IPv4-mapped IPv6 addresses ('::ffff:a.b.c.d', '::ffff:xxxx:xxxx') are
    family 4, since they are IPv4 peers seen through a dual-stack socket.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return 4, int(mapped)
        return 6, int(address)
    return 4, int(address)


class BruteForceTable:
    """Obviously-correct model of `Table4` for tests: a dict scanned on every lookup."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], int] = {}

    def insert(self, network: int, prefix_len: int, value: int) -> None:
        ipaddress.IPv4Network((network, prefix_len))  # raises ValueError on host bits
        if not 0 <= value < 2**31:
            raise ValueError("value must be in 0..2**31-1")
        self._entries[network, prefix_len] = value

    def remove(self, network: int, prefix_len: int) -> bool:
        return self._entries.pop((network, prefix_len), None) is not None

    def get(self, network: int, prefix_len: int) -> int:
        return self._entries.get((network, prefix_len), -1)

    def lookup(self, address: str) -> int:
        if address[: len(_MAPPED_PREFIX)].lower() == _MAPPED_PREFIX:
            address = address[len(_MAPPED_PREFIX) :]
        try:
            parsed = ipaddress.IPv4Address(address)
        except ValueError:
            return -2
        return self.lookup_int(int(parsed))

    def lookup_int(self, address: int) -> int:
        host = ipaddress.IPv4Address(address)
        best_len, best_value = -1, -1
        for (network, prefix_len), value in self._entries.items():
            if prefix_len > best_len and host in ipaddress.IPv4Network((network, prefix_len)):
                best_len, best_value = prefix_len, value
        return best_value

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[int, int, int]]:
        return sorted(
            (network, length, value) for (network, length), value in self._entries.items()
        )
