"""The packed answers (`Routes`) and merged ACL ranges (`in_ranges`) the recogniser is made of."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipmap.recognize._lpm import Routes, Table4, in_ranges
from sipmap.recognize.state import merged_ranges

MAX32 = 2**32 - 1


def mapping_sid(n: int) -> str:
    return f"IB{n:032x}"


def record_sid(n: int) -> str:
    return f"IL{n:032x}"


def test_a_slot_answers_with_the_strings_it_was_given() -> None:
    routes = Routes()
    sid, record = "IB" + "0123456789abcdef" * 2, "IL" + "f" * 32
    routes.set(7, sid, record, int(ipaddress.IPv4Address("203.0.113.0")), 24, 2**26 - 2)
    assert len(routes) == 8
    assert routes.get(7) == (sid, record, "203.0.113.0/24", 2**26 - 2)
    assert (routes.sid(7), routes.domain(7), routes.network(7)) == (
        sid,
        2**26 - 2,
        (3405803776, 24),
    )
    routes.set(7, sid, record, 0, 0, 0)  # overwritten in place
    assert routes.get(7) == (sid, record, "0.0.0.0/0", 0)
    routes.set(1, mapping_sid(1), record_sid(1), MAX32, 32, 1)
    assert routes.get(1)[2] == "255.255.255.255/32"
    for empty in (0, 2, 6, 8, 2**31 - 2):
        with pytest.raises(KeyError):
            routes.get(empty)
    assert routes.memory_bytes() >= 8 * 40


@pytest.mark.parametrize(
    "args",
    [
        ("IL" + "0" * 32, record_sid(1), 0, 8, 0),  # a record SID where the mapping's goes
        (mapping_sid(1), mapping_sid(1), 0, 8, 0),
        ("IB" + "A" * 32, record_sid(1), 0, 8, 0),  # not canonical (upper case)
        ("IB" + "0" * 31, record_sid(1), 0, 8, 0),
        ("IB" + "0" * 31 + "\u00e9", record_sid(1), 0, 8, 0),
        (mapping_sid(1), record_sid(1), 1, 8, 0),  # host bits
        (mapping_sid(1), record_sid(1), 0, 33, 0),
        (mapping_sid(1), record_sid(1), 0, 8, -1),
        (mapping_sid(1), record_sid(1), 0, 8, 2**26 - 1),
        (mapping_sid(1), record_sid(1), 2**32, 8, 0),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(args: tuple[object, ...]) -> None:
    routes = Routes()
    routes.set(0, mapping_sid(9), record_sid(9), 0, 8, 3)
    with pytest.raises((ValueError, TypeError, OverflowError)):
        routes.set(0, *args)
    with pytest.raises((ValueError, TypeError, OverflowError)):
        routes.set(-1, mapping_sid(1), record_sid(1), 0, 8, 0)
    assert routes.get(0) == (mapping_sid(9), record_sid(9), "0.0.0.0/8", 3)


def test_load_fills_slots_in_order_and_the_oldest_of_a_network_wins() -> None:
    rows = [
        (mapping_sid(n), record_sid(n), "SDb" if n % 2 else "SDa", (10 << 24) | (n % 3) << 8, 24)
        for n in range(10)
    ]
    routes, entries = Routes.load(iter(rows), {"SDa": 0, "SDb": 1})
    table = Table4.build(entries)
    assert len(routes) == 10 and len(table) == 3
    for n, row in enumerate(rows):
        assert routes.get(n) == (row[0], row[1], f"10.0.{n % 3}.0/24", n % 2)
    assert [table.lookup(f"10.0.{k}.9") for k in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError):
        Routes.load([(mapping_sid(1), record_sid(1), "SDz", 0, 8)], {"SDa": 0})
    with pytest.raises(TypeError):
        Routes.load([(mapping_sid(1), record_sid(1), "SDa", 0)], {"SDa": 0})
    with pytest.raises(ValueError):
        Routes.load([(mapping_sid(1), "nope", "SDa", 0, 8)], {"SDa": 0})
    empty, packed = Routes.load([], {})
    assert len(empty) == 0 and packed == b""


def test_load_of_many_rows_grows_as_it_goes() -> None:
    rows = ((mapping_sid(n), record_sid(n), "SD", n, 32) for n in range(50_000))
    routes, entries = Routes.load(rows, {"SD": 4})
    table = Table4.build(entries)
    assert len(routes) == len(table) == 50_000
    rnd = random.Random(5)
    for n in rnd.sample(range(50_000), 200):
        assert table.lookup_int(n) == n
        assert routes.get(n) == (mapping_sid(n), record_sid(n), f"{ipaddress.IPv4Address(n)}/32", 4)


networks = st.lists(
    st.tuples(st.integers(0, MAX32), st.integers(0, 32)).map(
        lambda p: (p[0] & (MAX32 << (32 - p[1])) & MAX32, p[1])
    ),
    max_size=12,
)


@given(networks, st.lists(st.integers(0, MAX32), max_size=30))
def test_in_ranges_agrees_with_ipaddress(nets: list[tuple[int, int]], probes: list[int]) -> None:
    ranges = merged_ranges(nets)
    cidrs = [ipaddress.IPv4Network(n) for n in nets]
    edges = [edge for n in cidrs for edge in (int(n[0]) - 1, int(n[0]), int(n[-1]), int(n[-1]) + 1)]
    for address in [*probes, *(e for e in edges if 0 <= e <= MAX32)]:
        expected = any(ipaddress.IPv4Address(address) in n for n in cidrs)
        assert in_ranges(ranges, address) == int(expected)
        text = str(ipaddress.IPv4Address(address))
        assert in_ranges(ranges, text) == int(expected)
        assert in_ranges(ranges, "::ffff:" + text) == int(expected)
    assert in_ranges(ranges, "2001:db8::1") == -2
    assert in_ranges(ranges, "10.0.0.1:5060") == -2
