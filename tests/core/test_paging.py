"""Page requests and pages (src/sipmap/core/paging.py)."""

from __future__ import annotations

import pytest

from sipmap.core.errors import InvalidPageToken, InvalidParameter
from sipmap.core.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest

SID = "IL" + "a" * 32


def test_defaults() -> None:
    request = PageRequest.create(None, None, None)
    assert request == PageRequest(DEFAULT_PAGE_SIZE, 0)
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 1000)


@pytest.mark.parametrize("size", [1, 50, 1000])
def test_page_size_in_range(size: int) -> None:
    assert PageRequest.create(size, 3, None) == PageRequest(size, 3)


@pytest.mark.parametrize("size", [0, -1, -(10**12)])
def test_page_size_out_of_range(size: int) -> None:
    with pytest.raises(InvalidParameter) as info:
        PageRequest.create(size, None, None)
    assert info.value.field == "page_size"
    assert info.value.rule == "must be a positive integer"


@pytest.mark.parametrize("size", [1001, 5000, 10**12])
def test_page_size_over_the_maximum_is_served_as_the_maximum(size: int) -> None:
    # What Twilio does, and what an SDK's list(limit=N) relies on: it sends PageSize=N.
    assert PageRequest.create(size, 2, None) == PageRequest(MAX_PAGE_SIZE, 2)


def test_negative_page() -> None:
    with pytest.raises(InvalidParameter) as info:
        PageRequest.create(None, -1, None)
    assert info.value.field == "page"


def test_tokens() -> None:
    after = PageRequest.create(10, 2, "PA" + SID)
    assert (after.after_sid, after.before_sid, after.page, after.page_size) == (SID, None, 2, 10)
    before = PageRequest.create(10, 1, "PB" + SID)
    assert (before.after_sid, before.before_sid) == (None, SID)


@pytest.mark.parametrize("token", ["", "P", "PA", "PB", "PC" + SID, "pa" + SID, "XX", SID])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidPageToken) as info:
        PageRequest.create(None, None, token)
    assert (info.value.status, info.value.code, info.value.message) == (
        400,
        21481,
        "Invalid PageToken",
    )


def test_size_is_checked_before_the_token() -> None:
    with pytest.raises(InvalidParameter):
        PageRequest.create(0, None, "garbage")


def test_has_previous() -> None:
    assert not Page([1], PageRequest(1, 0), has_next=True).has_previous
    assert Page([1], PageRequest(1, 1), has_next=False).has_previous
    assert not Page([], PageRequest(1, 1), has_next=False).has_previous
