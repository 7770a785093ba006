"""SIDs (src/sipmap/core/sids.py)."""

from __future__ import annotations

import os
import re

import pytest

from sipmap.core import sids

SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


@pytest.mark.parametrize(
    "prefix",
    [
        sids.ACCOUNT,
        sids.API_KEY,
        sids.IP_RECORD,
        sids.SOURCE_IP_MAPPING,
        sids.SIP_DOMAIN,
        sids.IP_ACCESS_CONTROL_LIST,
        sids.IP_ADDRESS,
        sids.REQUEST,
    ],
)
def test_random_sid_shape(prefix: str) -> None:
    made = {sids.random_sid(prefix) for _ in range(100)}
    assert len(made) == 100
    for sid in made:
        assert SID.fullmatch(sid) and sid.startswith(prefix)


def test_sids_sort_by_when_they_were_made(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_780_000_000_000_000_000]  # ns
    monkeypatch.setattr(sids.time, "time_ns", lambda: now[0])
    first = sids.random_sid("IL")
    assert first[2:14] == f"{now[0] // 1_000_000:012x}"
    same_ms = {sids.random_sid("IL") for _ in range(1000)}
    assert len(same_ms) == 1000  # the random part alone tells them apart
    now[0] += 1_000_000
    later = sids.random_sid("IL")
    assert all(sid < later for sid in same_ms | {first})


def test_a_forked_child_does_not_repeat_its_parents_sids() -> None:
    sids.random_sid("IL")  # the pool holds random bytes the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one SID and leave at once
        os.write(write, sids.random_sid("IL").encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert SID.fullmatch(child)
    assert child[14:] != sids.random_sid("IL")[14:]  # the random parts


def test_prefixes_are_twilios() -> None:
    assert (sids.ACCOUNT, sids.API_KEY, sids.IP_RECORD, sids.SOURCE_IP_MAPPING) == (
        "AC",
        "SK",
        "IL",
        "IB",
    )
    assert (sids.SIP_DOMAIN, sids.IP_ACCESS_CONTROL_LIST, sids.IP_ADDRESS, sids.REQUEST) == (
        "SD",
        "AL",
        "IP",
        "RQ",
    )


def test_counter_sids_are_deterministic_and_ordered() -> None:
    make = sids.counter_sids()
    assert make("IL") == "IL" + "0" * 31 + "1"
    assert make("SD") == "SD" + "0" * 31 + "2"
    other = sids.counter_sids(start=255)
    assert other("AC") == "AC" + "0" * 30 + "ff"


def test_normalize_lowercases_the_hex() -> None:
    hexpart = "0123456789abcdefABCDEF0123456789"
    assert sids.normalize("IL" + hexpart, "IL") == "IL" + hexpart.lower()
    assert sids.normalize("IL" + hexpart.lower(), "IL") == "IL" + hexpart.lower()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "IL",
        "IL" + "0" * 31,
        "IL" + "0" * 33,
        "il" + "0" * 32,  # the prefix is case-sensitive, as in the specs' patterns
        "Il" + "0" * 32,
        "IB" + "0" * 32,  # another resource's prefix
        "IL" + "g" * 32,
        "IL" + "0" * 31 + " ",
        "IL" + "\u0661" * 32,  # digits of another script
        "IL" + "\uff10" * 32,
        " IL" + "0" * 31,
    ],
)
def test_normalize_rejects(value: str) -> None:
    assert sids.normalize(value, "IL") is None
