"""How models map onto tables: names, columns and value conversions (shared by backends)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from ..core import models

TABLES: dict[type[Any], str] = {
    models.Account: "accounts",
    models.ApiKey: "api_keys",
    models.IpRecord: "ip_records",
    models.SourceIpMapping: "source_ip_mappings",
    models.SipDomain: "sip_domains",
    models.IpAccessControlList: "ip_access_control_lists",
    models.IpAddress: "ip_addresses",
    models.AclMapping: "acl_mappings",
}

# Rows are keyed by sid, except a mapping's sid (the list's) is unique per domain only.
KEYS: dict[type[Any], tuple[str, ...]] = {
    model: ("domain_sid", "sid") if model is models.AclMapping else ("sid",) for model in TABLES
}

# The column a list of each model is scoped by (the account, or the parent resource).
SCOPES: dict[type[Any], str] = {
    models.Account: "owner_account_sid",
    models.IpAddress: "ip_access_control_list_sid",
    models.AclMapping: "domain_sid",
}
for _model in TABLES:
    SCOPES.setdefault(_model, "account_sid")

COLUMNS: dict[type[Any], tuple[str, ...]] = {model: model.__struct_fields__ for model in TABLES}

# Field name -> its annotation, as written (the models use postponed annotations).
_KINDS: dict[type[Any], dict[str, str]] = {
    model: {name: model.__annotations__[name] for name in COLUMNS[model]} for model in TABLES
}


# Per model, the columns holding text (or NULL): where Python's == is SQL's =.
TEXT_COLUMNS: dict[type[Any], frozenset[str]] = {
    model: frozenset(name for name, kind in _KINDS[model].items() if kind in ("str", "str | None"))
    for model in TABLES
}


def _stamp(value: datetime) -> int:
    return int(value.timestamp())


@lru_cache(maxsize=4096)
def _datetime(stamp: int) -> datetime:
    # Stamps repeat (rows made in the same second; the same rows read again), and
    # datetimes are immutable: one value can serve every row that has it.
    return datetime.fromtimestamp(stamp, UTC)


# A field kind stored as another type -> (to the column, back from it).
_CONVERSIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "datetime": (_stamp, _datetime),
    "bool": (int, bool),
}


def to_db(value: Any) -> Any:
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, bool):
        return int(value)
    return value


# Per model: all its fields in COLUMNS order at once (one C call), and the
# positions among them that need converting, with the two conversions.
_GETTERS: dict[type[Any], Callable[[Any], tuple[Any, ...]]] = {
    model: attrgetter(*COLUMNS[model]) for model in TABLES
}
_CONVERTED: dict[type[Any], tuple[tuple[int, Callable[[Any], Any], Callable[[Any], Any]], ...]] = {
    model: tuple(
        (i, *_CONVERSIONS[kind])
        for i, kind in enumerate(_KINDS[model].values())
        if kind in _CONVERSIONS
    )
    for model in TABLES
}


def to_row(obj: models.Model) -> list[Any]:
    """Column values of a model, in COLUMNS order."""
    model = type(obj)
    row = list(_GETTERS[model](obj))
    for i, to_column, _ in _CONVERTED[model]:
        row[i] = to_column(row[i])
    return row


def _row_reader(model: type[Any], *, sid_apart: bool = False) -> Callable[..., Any]:
    """A function building `model` from a row, its conversions written out.

    Generated, as dataclasses and namedtuple generate their methods: every row read
    goes through it, and the loop over conversions it replaces cost as much as
    building the model (measured: 0.83 µs an IpRecord with the loop, 0.47 without).
    With `sid_apart`, it is called as read(sid, row), the row holding every column but
    the first (`sid`): a lookup by SID need not read back the SID it was given.
    """
    if sid_apart and COLUMNS[model][0] != "sid":
        raise ValueError(f"{model.__name__}: the first column is not sid")
    converted = {i: f"c{i}" for i, _, _ in _CONVERTED[model]}
    skip = 1 if sid_apart else 0
    values = ["sid" if sid_apart else "row[0]"]
    for i in range(1, len(COLUMNS[model])):
        value = f"row[{i - skip}]"
        values.append(f"{converted[i]}({value})" if i in converted else value)
    defaults = "".join(f", {name}={name}" for name in converted.values())
    params = "sid, row" if sid_apart else "row"
    source = f"def read({params}, model=model{defaults}):\n    return model({', '.join(values)})\n"
    scope: dict[str, Any] = {"model": model}
    scope.update({f"c{i}": from_column for i, _, from_column in _CONVERTED[model]})
    exec(source, scope)  # the text holds nothing but names and positions made above
    return scope["read"]  # type: ignore[no-any-return]


_READERS: dict[type[Any], Callable[[tuple[Any, ...]], Any]] = {
    model: _row_reader(model) for model in TABLES
}
# read(sid, row) for a row selected by SID without its first column (see _row_reader).
SID_ROW_READERS: dict[type[Any], Callable[[str, tuple[Any, ...]], Any]] = {
    model: _row_reader(model, sid_apart=True) for model in TABLES
}


def from_row(model: type[models.M], row: tuple[Any, ...]) -> models.M:
    # Columns are selected in field order, so positional construction is safe.
    return _READERS[model](row)  # type: ignore[no-any-return]
