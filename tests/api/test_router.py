"""The router against a plain reading of its templates: a parameter is one segment's
worth of at least one character, never a '/', with the template's literal text
around it; every other segment is literal."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipmap.api import acls, recognition, v1, v2010
from sipmap.api.router import Router

TABLE = {**v1.ROUTES, **v2010.ROUTES, **acls.ROUTES, **recognition.ROUTES}
ROUTER = Router(TABLE)
TEMPLATES = sorted(t for t in TABLE if "{" in t)
_PARAM = re.compile(r"\{([A-Za-z]+)\}")


def reference(template: str, path: str) -> dict[str, str] | None:
    """The parameters if `path` matches `template`, read segment by segment."""
    wanted, given_ = template.split("/"), path.split("/")
    if len(wanted) != len(given_):
        return None
    params: dict[str, str] = {}
    for piece, part in zip(wanted, given_, strict=True):
        found = _PARAM.search(piece)
        if found is None:
            if piece != part:
                return None
            continue
        before, after = piece[: found.start()], piece[found.end() :]
        if len(part) <= len(before) + len(after):
            return None
        if not (part.startswith(before) and part.endswith(after)):
            return None
        params[found.group(1)] = part[len(before) : len(part) - len(after)]
    return params


# Values that look like what the templates hold around them: dots, 'json', '%2F'.
values = st.text(alphabet="aA0.json%2F\n", min_size=0, max_size=12)


@settings(max_examples=1000)
@given(template=st.sampled_from(TEMPLATES), data=st.data())
def test_the_router_reads_paths_as_its_templates_say(template: str, data: st.DataObject) -> None:
    pieces = _PARAM.split(template)
    path = "".join(
        data.draw(st.one_of(values, st.just("x/y"))) if i % 2 else piece
        for i, piece in enumerate(pieces)
    )
    expected = [(t, p) for t in TEMPLATES if (p := reference(t, path)) is not None]
    found = ROUTER.match(path)
    if not expected:
        assert found is None
        return
    assert len(expected) == 1, expected
    assert found is not None
    handlers, params = found
    assert handlers is TABLE[expected[0][0]]
    assert params == expected[0][1]


def test_a_suffix_can_appear_inside_the_parameter() -> None:
    found = ROUTER.match("/2010-04-01/Accounts/AC.json.json")
    assert found is not None
    assert found[1] == {"AccountSid": "AC.json"}
    assert ROUTER.match("/2010-04-01/Accounts/.json") is None
    assert ROUTER.match("/v1/IpRecords/") is None
    assert ROUTER.match("/v1/IpRecords/a/b") is None


def test_two_templates_for_the_same_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="the same paths"):
        Router({"/v1/Things/{Sid}": {}, "/v1/Things/{Name}": {}})
