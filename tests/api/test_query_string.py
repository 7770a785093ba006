"""Page URLs' query strings are what urllib's urlencode would make of them."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import example, given
from hypothesis import strategies as st

from sipmap.api.render import query_string

pairs = st.lists(st.tuples(st.text(), st.text()), max_size=5)


@given(pairs)
@example([("PageSize", "50"), ("Page", "2"), ("PageToken", "PAIL" + "0" * 32)])
@example([("FriendlyName", "a b&c=d"), ("IpAddress", "10.0.0.1"), ("x", "é~_.-\n")])
def test_the_same_as_urlencode(query: list[tuple[str, str]]) -> None:
    assert query_string(query) == urlencode(query)
