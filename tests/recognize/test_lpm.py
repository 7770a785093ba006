"""Table4 (C longest-prefix match) against the brute-force reference, and its parsing."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipmap.recognize.lpm import BruteForceTable, Table4, pack_entries, parse_source_ip

MAX32 = 2**32 - 1


def mask(prefix_len: int) -> int:
    return (MAX32 << (32 - prefix_len)) & MAX32


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def probe_lookup(entries: dict[tuple[int, int], int], address: int) -> int:
    """Fast model for large tables: probe every prefix length, longest first."""
    for prefix_len in range(32, -1, -1):
        value = entries.get((address & mask(prefix_len), prefix_len))
        if value is not None:
            return value
    return -1


def edge_addresses(prefixes: object) -> set[int]:
    """Every address where the answer can change: the edges of each prefix."""
    points = {0, MAX32}
    for network, prefix_len in prefixes:  # type: ignore[attr-defined]
        end = network | (MAX32 ^ mask(prefix_len))
        points.update({network, end, max(network - 1, 0), min(end + 1, MAX32)})
    return points


# -- property: random operations on overlapping prefixes --------------------

BASES = st.lists(st.integers(0, MAX32), min_size=1, max_size=4).map(lambda b: [*b, 0, MAX32])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[tuple[str, int, int, int]], list[int]]:
    bases = draw(BASES)
    prefix = st.tuples(st.sampled_from(bases), st.integers(0, 32)).map(
        lambda bl: (bl[0] & mask(bl[1]), bl[1])
    )
    op = st.tuples(st.sampled_from(["insert", "insert", "remove"]), prefix, st.integers(0, 5))
    ops = [(kind, net, plen, value) for kind, (net, plen), value in draw(st.lists(op))]
    near = st.tuples(st.sampled_from(bases), st.integers(-2, 2)).map(
        lambda bo: (bo[0] + bo[1]) & MAX32
    )
    addresses = draw(st.lists(near | st.integers(0, MAX32), max_size=20))
    return ops, addresses


def assert_same(table: Table4, model: BruteForceTable, extra: list[int]) -> None:
    table._check()
    assert len(table) == len(model)
    assert table.items() == model.items()
    for network, prefix_len, value in model.items():
        assert table.get(network, prefix_len) == value
    for address in sorted(edge_addresses((n, p) for n, p, _ in model.items()) | set(extra)):
        assert table.lookup_int(address) == model.lookup_int(address), address
        text = str(ipaddress.IPv4Address(address))
        assert table.lookup(text) == table.lookup("::ffff:" + text) == model.lookup_int(address)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_matches_brute_force(scenario: tuple[list[tuple[str, int, int, int]], list[int]]) -> None:
    ops, addresses = scenario
    table, model = Table4(), BruteForceTable()
    removed = []
    for kind, network, prefix_len, value in ops:
        if kind == "insert":
            table.insert(network, prefix_len, value)
            model.insert(network, prefix_len, value)
        else:
            assert table.remove(network, prefix_len) == model.remove(network, prefix_len)
            removed.append(network)
        table._check()
    assert_same(table, model, addresses + removed)
    built = Table4.build(pack_entries(model.items()))
    assert_same(built, model, addresses + removed)


def test_build_duplicates_last_wins() -> None:
    table = Table4.build(pack_entries([(ip("10.0.0.0"), 8, 1), (0, 0, 2), (ip("10.0.0.0"), 8, 3)]))
    assert table.items() == [(0, 0, 2), (ip("10.0.0.0"), 8, 3)]
    assert table.lookup("10.9.9.9") == 3
    assert table.lookup("11.0.0.0") == 2


# -- scale: enough entries to split and merge chunks ------------------------


def random_prefix(rng: random.Random, bases: list[int]) -> tuple[int, int]:
    prefix_len = rng.choice([32] * 6 + [rng.randint(0, 31)])
    base = rng.choice(bases) ^ rng.getrandbits(12) if rng.random() < 0.7 else rng.getrandbits(32)
    return base & mask(prefix_len), prefix_len


def check_against_model(table: Table4, entries: dict[tuple[int, int], int]) -> None:
    table._check()
    assert len(table) == len(entries)
    assert table.items() == sorted((n, p, v) for (n, p), v in entries.items())
    for address in edge_addresses(entries):
        assert table.lookup_int(address) == probe_lookup(entries, address)


@pytest.mark.parametrize("seed", [1, 2])
def test_thousands_of_writes_down_to_empty(seed: int) -> None:
    rng = random.Random(seed)
    bases = [rng.getrandbits(32) for _ in range(8)]
    table, entries = Table4(), {}
    for step in range(6000):
        key = random_prefix(rng, bases)
        entries[key] = rng.randrange(2**31)
        table.insert(*key, entries[key])
        if step % 1500 == 0:
            check_against_model(table, entries)
    check_against_model(table, entries)
    assert table.memory_bytes() > 0
    check_against_model(
        Table4.build(pack_entries((n, p, v) for (n, p), v in entries.items())), entries
    )
    keys = list(entries)
    rng.shuffle(keys)
    for step, key in enumerate(keys):
        assert table.remove(*key)
        del entries[key]
        if step % 1000 == 0:
            check_against_model(table, entries)
    check_against_model(table, entries)
    assert table.items() == []
    assert table.lookup("1.2.3.4") == -1


def test_memory_comes_back_after_removals() -> None:
    rng = random.Random(3)
    keys = list({(rng.getrandbits(32), 32) for _ in range(40_000)})
    table = Table4.build(pack_entries((n, p, 1) for n, p in keys))
    full = table.memory_bytes()
    rng.shuffle(keys)
    for key in keys[4000:]:
        table.remove(*key)
    table._check()  # every chunk but a lone one stays at least a quarter full
    assert table.memory_bytes() < full


def unique_addresses(rng: random.Random, count: int) -> list[int]:
    out: set[int] = set()
    while len(out) < count:
        out.add(rng.getrandbits(32))
    return sorted(out)


def test_writes_while_the_hash_grows() -> None:
    """build() leaves the hash exactly half full: the next insert starts a migration."""
    rng = random.Random(11)
    addresses = unique_addresses(rng, 4097)
    entries = {(a, 32): i for i, a in enumerate(addresses[:4096])}
    table = Table4.build(pack_entries((n, p, v) for (n, p), v in entries.items()))
    table.insert(addresses[4096], 32, 7)
    entries[addresses[4096], 32] = 7
    originals = list(entries)[:4096]
    rng.shuffle(originals)
    for step, key in enumerate(originals[:1500]):  # most still sit in the old array
        assert table.remove(*key)
        del entries[key]
        if step % 250 == 0:
            check_against_model(table, entries)
    for key in originals[1500:1600]:
        table.insert(*key, 1)
        entries[key] = 1
    check_against_model(table, entries)
    # Inserts alone also finish a migration, 8 old buckets each (4096 of them here).
    grown = Table4.build(pack_entries((n, p, 1) for n, p in list(entries)[:2048]))
    assert not grown._check()["migrating"]
    extra = unique_addresses(rng, 1100)
    for address in extra[:10]:
        grown.insert(address, 32, 1)
    assert grown._check()["migrating"]
    for address in extra[10:]:
        grown.insert(address, 32, 1)
    assert not grown._check()["migrating"]


def test_large_arrays_grow_in_place() -> None:
    """Past 1 MiB the slot and bucket arrays are mapped and grown with mremap."""
    rng = random.Random(12)
    addresses = unique_addresses(rng, 100_001)
    table = Table4()
    for i, address in enumerate(addresses[:95_000]):
        table.insert(address, 32, i)
    built = Table4.build(pack_entries((a, 32, i) for i, a in enumerate(addresses[:100_000])))
    built.insert(addresses[100_000], 32, 100_000)
    for t, count in ((table, 95_000), (built, 100_001)):
        t._check()
        assert len(t) == count
        for i in range(0, count, 997):
            assert t.lookup_int(addresses[i]) == i
            assert t.lookup_int(addresses[i] + 1) == (
                i + 1 if addresses[i] + 1 in addresses else -1
            )


def test_short_prefix_over_many_long_ones() -> None:
    table = Table4()
    for i in range(3000):
        table.insert(ip("10.0.0.0") + i * 7, 32, i)
    table.insert(ip("10.0.0.0"), 8, 999_999)
    table.insert(0, 0, 5)
    table._check()
    assert table.lookup("10.0.0.7") == 1
    assert table.lookup("10.0.0.8") == 999_999
    assert table.lookup("11.0.0.0") == 5
    assert table.remove(ip("10.0.0.0"), 8)
    table._check()
    assert table.lookup("10.0.0.8") == 5
    assert table.lookup("10.0.0.14") == 2


def test_value_replace_and_extremes() -> None:
    table = Table4()
    table.insert(MAX32, 32, 2**31 - 1)
    table.insert(0, 32, 0)
    table.insert(ip("128.0.0.0"), 1, 4)
    assert table.lookup("255.255.255.255") == 2**31 - 1
    assert table.lookup("0.0.0.0") == 0
    assert table.lookup("0.0.0.1") == -1
    assert table.lookup("200.0.0.1") == 4
    table.insert(ip("128.0.0.0"), 1, 6)
    assert len(table) == 3
    assert table.lookup("200.0.0.1") == 6
    assert table.get(ip("128.0.0.0"), 1) == 6
    assert table.get(ip("128.0.0.0"), 2) == -1
    assert not table.remove(ip("128.0.0.0"), 2)


def test_build_releases_the_gil() -> None:
    rng = random.Random(7)
    entries = pack_entries((rng.getrandbits(32), 32, i) for i in range(600_000))

    async def main() -> tuple[float, float]:
        longest_gap = 0.0
        started = time.perf_counter()
        task = asyncio.create_task(asyncio.to_thread(Table4.build, entries))
        last = time.perf_counter()
        while not task.done():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest_gap, last = max(longest_gap, now - last), now
        assert len(await task) > 590_000
        return longest_gap, time.perf_counter() - started

    longest_gap, total = asyncio.run(main())
    # Holding the GIL for the whole build would stall the loop for about `total`.
    assert longest_gap < max(total / 2, 0.02), (longest_gap, total)


# -- parsing and argument checking ------------------------------------------

PARSE_CASES = [
    ("1.2.3.4", True),
    ("0.0.0.0", True),
    ("255.255.255.255", True),
    ("::ffff:1.2.3.4", True),
    ("::FFFF:1.2.3.4", True),
    ("::fFfF:1.2.3.4", True),
    ("1.2.3", False),
    ("1.2.3.4.5", False),
    ("256.1.1.1", False),
    ("1.2.3.256", False),
    ("01.2.3.4", False),
    ("1.2.3.00", False),
    ("1.2.3.0004", False),
    (" 1.2.3.4", False),
    ("1.2.3.4 ", False),
    ("1.2.3.4\n", False),
    ("+1.2.3.4", False),
    ("1.-2.3.4", False),
    ("1..3.4", False),
    ("", False),
    ("::1", False),
    ("::ffff:", False),
    ("::ffff:1.2.3", False),
    ("::ffff:0102:0304", False),
    ("0::ffff:1.2.3.4", False),
    ("::ffee:1.2.3.4", False),
    ("::ffff::1.2.3.4", False),
    ("2001:db8::1", False),
    ("\x1a\x1affff:1.2.3.4", False),
    ("abc", False),
    ("\u0661.\u0662.\u0663.\u0664", False),  # Arabic-Indic digits
    ("\uff11.2.3.4", False),  # fullwidth digit one
]


@pytest.mark.parametrize(("text", "valid"), PARSE_CASES)
def test_lookup_parsing(text: str, valid: bool) -> None:
    table = Table4()
    table.insert(0, 0, 9)
    assert table.lookup(text) == (9 if valid else -2)
    model = BruteForceTable()
    model.insert(0, 0, 9)
    assert model.lookup(text) == table.lookup(text)


ADDRESS_LIKE = st.from_regex(r"(::[fF]{4}:)?[0-9]{1,4}(\.[0-9]{1,4}){2,4}\s?", fullmatch=True)


@settings(max_examples=500)
@given(st.text() | ADDRESS_LIKE)
def test_lookup_never_crashes_and_agrees_with_ipaddress(text: str) -> None:
    table, model = Table4(), BruteForceTable()
    for t in (table, model):
        t.insert(0, 0, 1)
        t.insert(ip("10.0.0.0"), 8, 2)
    assert table.lookup(text) == model.lookup(text)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((ip("10.0.0.1"), 8, 1), ValueError),  # host bits
        ((1, 31, 1), ValueError),
        ((1, 0, 1), ValueError),
        ((0, 33, 1), ValueError),
        ((0, -1, 1), ValueError),
        ((-1, 32, 1), ValueError),
        ((2**32, 32, 1), ValueError),
        ((2**70, 32, 1), ValueError),
        ((0, 8, -1), ValueError),
        ((0, 8, 2**31), ValueError),
        ((0, 8, 2**64), ValueError),
        (("10.0.0.0", 8, 1), TypeError),
        ((0, 8.0, 1), TypeError),
        ((0, 8, None), TypeError),
        ((0, 8), TypeError),
    ],
)
def test_insert_rejects(args: tuple[object, ...], error: type[Exception]) -> None:
    table = Table4()
    with pytest.raises(error):
        table.insert(*args)  # type: ignore[arg-type]
    assert len(table) == 0


def test_other_argument_errors() -> None:
    table = Table4()
    with pytest.raises(TypeError):
        table.lookup(b"1.2.3.4")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        table.lookup(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        table.lookup_int("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        table.lookup_int(-1)
    with pytest.raises(ValueError):
        table.lookup_int(2**32)
    with pytest.raises(ValueError):
        table.remove(1, 8)
    with pytest.raises(ValueError):
        table.get(0, 33)
    with pytest.raises(TypeError):
        Table4(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 3 arguments"):
        table.insert(0, 0, 1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        table.insert(0, 0, foo=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'network'"):
        table.remove(0, network=0)  # type: ignore[call-arg, misc]
    with pytest.raises(TypeError, match="missing argument 'prefix_len'"):
        table.get(network=0)  # type: ignore[call-arg]
    table.insert(network=0, prefix_len=0, value=3)
    assert table.get(network=0, prefix_len=0) == 3
    assert table.remove(network=0, prefix_len=0) is True


def test_build_rejects() -> None:
    with pytest.raises(TypeError):
        Table4.build("abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="12 bytes"):
        Table4.build(b"\0" * 13)
    with pytest.raises(ValueError, match="entry 1: network has host bits"):
        Table4.build(pack_entries([(0, 0, 1), (1, 8, 1)]))
    with pytest.raises(ValueError, match="entry 0: prefix_len"):
        Table4.build(pack_entries([(0, 33, 1)]))
    with pytest.raises(ValueError, match="entry 0: value"):
        Table4.build(b"\0" * 8 + b"\xff" * 4)
    assert len(Table4.build(b"")) == 0
    assert Table4.build(bytearray(pack_entries([(0, 0, 4)]))).lookup("9.9.9.9") == 4
    assert Table4.build(memoryview(pack_entries([(0, 0, 4)]))).lookup("9.9.9.9") == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", (4, ip("10.0.0.1"))),
        ("::ffff:10.0.0.1", (4, ip("10.0.0.1"))),
        ("::FFFF:a00:1", (4, ip("10.0.0.1"))),
        ("::1", (6, 1)),
        ("2001:db8::1", (6, int(ipaddress.IPv6Address("2001:db8::1")))),
        ("01.0.0.1", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_parse_source_ip(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_source_ip(text) == expected
