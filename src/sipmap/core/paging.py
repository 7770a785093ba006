"""Keyset paging: page requests, page tokens and pages.

Lists are ordered by creation (oldest first). A page token names the SID at the
edge of the page it came from (`PA<sid>`: items after it, `PB<sid>`: items before
it), so a walk stays stable while other items are created or deleted, and page
10,000 costs what page 0 costs. Without a token, `Page` selects by offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import InvalidPageToken, InvalidParameter

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# The largest Page taken: as many digits as the edge's integer parser reads (12).
MAX_PAGE = 10**12 - 1
PAGE_RULE = f"must be an integer from 0 to {MAX_PAGE}"


@dataclass(frozen=True, slots=True)
class PageRequest:
    page_size: int = DEFAULT_PAGE_SIZE
    page: int = 0
    after_sid: str | None = None  # exclusive
    before_sid: str | None = None  # exclusive

    @staticmethod
    def create(page_size: int | None, page: int | None, token: str | None) -> PageRequest:
        size = DEFAULT_PAGE_SIZE if page_size is None else page_size
        if size < 1:
            raise InvalidParameter("page_size", "must be a positive integer")
        # Every official SDK sends PageSize=<limit> for list(limit=N); Twilio serves
        # pages of at most 1000 and the SDK follows next_page_url for the rest.
        size = min(size, MAX_PAGE_SIZE)
        number = 0 if page is None else page
        if not 0 <= number <= MAX_PAGE:
            raise InvalidParameter("page", PAGE_RULE)
        if token is None:
            return PageRequest(size, number)
        # The inverse of token_after / token_before.
        if len(token) < 3 or token[:2] not in ("PA", "PB"):
            raise InvalidPageToken()
        sid = token[2:]
        if token[:2] == "PA":
            return PageRequest(size, number, after_sid=sid)
        return PageRequest(size, number, before_sid=sid)

    @property
    def token(self) -> str | None:
        """The token this request was made with, if any."""
        if self.after_sid is not None:
            return token_after(self.after_sid)
        if self.before_sid is not None:
            return token_before(self.before_sid)
        return None


def token_after(sid: str) -> str:
    """The page token for the items after `sid`."""
    return f"PA{sid}"


def token_before(sid: str) -> str:
    """The page token for the items before `sid`."""
    return f"PB{sid}"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    request: PageRequest
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.request.page > 0 and bool(self.items)
