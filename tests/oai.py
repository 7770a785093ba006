"""Validating responses against Twilio's OpenAPI specs: the extract of them in tests/specs
(response schemas of the operations sipmap serves; see tests/specs/PROVENANCE.md).

OpenAPI 3.0 schemas are not JSON Schema: `nullable` and the custom formats need
translating; this module does that once and caches a validator per operation.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPECS = Path(__file__).resolve().parent / "specs"
SPEC_FILES = ("twilio_voice_v1.json", "twilio_api_v2010.json")


def _translate(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_translate(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _translate(components[name], components)
    out = {k: _translate(v, components) for k, v in node.items() if k not in ("nullable", "format")}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def _operations() -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    folder = SPECS
    ops = []
    for name in SPEC_FILES:
        spec = json.loads((folder / name).read_text())
        components = spec["components"]["schemas"]
        for template, item in spec["paths"].items():
            pattern = re.compile(
                "^" + re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(template)) + "$"
            )
            for method, op in item.items():
                if method in ("get", "post", "delete"):
                    ops.append((pattern, method.upper(), {"op": op, "components": components}))
    return ops


@cache
def _validator(pattern: str, method: str, status: int) -> jsonschema.Draft202012Validator | None:
    for regex, m, entry in _operations():
        if regex.pattern == pattern and m == method:
            response = entry["op"]["responses"].get(str(status))
            if response is None:
                raise AssertionError(f"the spec has no {status} response for {method} {pattern}")
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                return None
            return jsonschema.Draft202012Validator(_translate(schema, entry["components"]))
    raise AssertionError(f"no operation {method} {pattern} in the specs")


def operation_for(method: str, path: str) -> str | None:
    for regex, m, _ in _operations():
        if m == method and regex.match(path):
            return regex.pattern
    return None


def validate(method: str, path: str, status: int, body: Any) -> None:
    """Assert a successful response body matches the spec's schema for that operation."""
    pattern = operation_for(method, path)
    if pattern is None:
        raise AssertionError(f"{method} {path} is not an operation in Twilio's specs")
    validator = _validator(pattern, method, status)
    if validator is None:
        assert body in (None, b"", ""), f"{method} {path} {status} should have no body"
        return
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )


ERROR_KEYS = {"code", "message", "more_info", "status"}


def validate_error(status: int, body: Any) -> None:
    """Twilio's error body, exactly."""
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == status
    assert isinstance(body["code"], int) and isinstance(body["message"], str)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
