"""How models map onto tables: names, columns and value conversions (shared by backends)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
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

COLUMNS: dict[type[Any], tuple[str, ...]] = {
    model: tuple(f.name for f in fields(model)) for model in TABLES
}

_KINDS: dict[type[Any], dict[str, str]] = {
    model: {f.name: str(f.type) for f in fields(model)} for model in TABLES
}


def to_db(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bool):
        return int(value)
    return value


def from_row(model: type[models.M], row: tuple[Any, ...]) -> models.M:
    kinds = _KINDS[model]
    values: dict[str, Any] = {}
    for name, value in zip(COLUMNS[model], row, strict=True):
        kind = kinds[name]
        if kind == "datetime":
            value = datetime.fromtimestamp(value, UTC)
        elif kind == "bool":
            value = bool(value)
        values[name] = value
    return model(**values)
