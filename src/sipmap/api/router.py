"""Path templates ('/v1/IpRecords/{Sid}') → handlers by HTTP method.

A template whose one parameter is its whole last segment ('/v1/IpRecords/{Sid}') is
found by its parent path in a dict, as literal paths are; the others are bucketed by
segment count and first two segments, so a lookup tries only the handful of patterns
that could match, not the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Generic, TypeVar

H = TypeVar("H")

_PARAM = re.compile(r"\{([A-Za-z]+)\}")


def _key(path: str) -> tuple[int, str, str]:
    parts = path.split("/")
    return len(parts), parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""


class Router(Generic[H]):
    def __init__(self, table: Mapping[str, Mapping[str, H]]) -> None:
        self._exact: dict[str, Mapping[str, H]] = {}
        # parent path -> (the last segment's parameter, handlers)
        self._last: dict[str, tuple[str, Mapping[str, H]]] = {}
        self._buckets: dict[tuple[int, str, str], list[tuple[re.Pattern[str], Mapping[str, H]]]]
        self._buckets = {}
        for template, handlers in table.items():
            if "{" not in template:
                self._exact[template] = handlers
                continue
            parent, _, last = template.rpartition("/")
            whole = _PARAM.fullmatch(last)
            if whole is not None and "{" not in parent:
                if parent in self._last:
                    raise ValueError(f"{template}: the same paths as another template")
                self._last[parent] = (whole.group(1), handlers)
                continue
            # Greedy: a parameter cannot cross a '/' and what follows it in its segment
            # is literal, so there is one way to match and greed finds it without
            # backtracking character by character, as a lazy `+?` would.
            pattern = "".join(
                f"(?P<{piece}>[^/]+)" if i % 2 else re.escape(piece)
                for i, piece in enumerate(_PARAM.split(template))
            )
            key = _key(template)
            if "{" in key[1] + key[2]:
                raise ValueError(f"{template}: parameters in the first two segments")
            # \Z, not $: "$" also matches before a trailing newline ("…/{Sid}%0A").
            self._buckets.setdefault(key, []).append((re.compile(pattern + r"\Z"), handlers))

    def match(self, path: str) -> tuple[Mapping[str, H], dict[str, str]] | None:
        handlers = self._exact.get(path)
        if handlers is not None:
            return handlers, {}
        parent, _, last = path.rpartition("/")
        if last:
            found_last = self._last.get(parent)
            if found_last is not None:
                return found_last[1], {found_last[0]: last}
        for pattern, handlers in self._buckets.get(_key(path), ()):
            found = pattern.match(path)
            if found is not None:
                return handlers, found.groupdict()
        return None
