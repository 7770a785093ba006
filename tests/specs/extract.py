"""Extract from Twilio's OpenAPI specs what sipmap's tests need, and nothing else.

    python tests/specs/extract.py ../shared/twilio-oai            # rewrite the extract
    python tests/specs/extract.py ../shared/twilio-oai --check    # exit 1 if it would change

For every operation sipmap serves (the API's route tables), the extract keeps the
response schemas by status code, with the component schemas they refer to; it drops
descriptions, summaries, examples, titles and vendor extensions, and every operation
sipmap does not serve. The output is deterministic (sorted keys), so `--check` can
compare it byte for byte with the committed copy (`.ci/run` does, so it cannot drift).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC_FILES = ("twilio_voice_v1.json", "twilio_api_v2010.json")
METHODS = ("get", "post", "delete")
# Prose and vendor metadata: not needed to validate a response, and not ours to copy.
DROPPED = {"description", "summary", "example", "examples", "title"}


def served_operations() -> set[tuple[str, str]]:
    """(path template with parameters written `{}`, lower-case method) of every route."""
    from sipmap.api import acls, v1, v2010

    served = set()
    for module in (v1, v2010, acls):
        for template, handlers in module.ROUTES.items():
            for method in handlers:
                served.add((_shape(template), method.lower()))
    return served


def _shape(template: str) -> str:
    return re.sub(r"\{[A-Za-z]+\}", "{}", template)


def _strip(node: Any, *, is_properties: bool = False) -> Any:
    """`node` without prose; the keys of a `properties` map are field names, all kept."""
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if not is_properties and (key in DROPPED or key.startswith("x-")):
            continue
        out[key] = _strip(value, is_properties=key == "properties" and not is_properties)
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
    return found.union(*(_refs(value) for value in node.values()))


def extract(spec: dict[str, Any], served: set[tuple[str, str]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for template, item in spec["paths"].items():
        for method in METHODS:
            if method not in item or (_shape(template), method) not in served:
                continue
            responses = {}
            for status, response in item[method].get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                content = {} if schema is None else {"application/json": {"schema": schema}}
                responses[status] = {"content": content}
            paths.setdefault(template, {})[method] = {"responses": _strip(responses)}
    components = spec["components"]["schemas"]
    wanted: set[str] = set()
    pending = _refs(paths)
    while pending:  # follow references from component to component
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending |= _refs(components[name])
    return {
        "openapi": spec["openapi"],
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "paths": paths,
        "components": {"schemas": {name: _strip(components[name]) for name in sorted(wanted)}},
    }


def render(upstream: Path) -> dict[str, str]:
    """File name → the text the extract of `upstream` should hold."""
    served = served_operations()
    out = {}
    for name in SPEC_FILES:
        spec = json.loads((upstream / name).read_text())
        out[name] = json.dumps(extract(spec, served), indent=1, sort_keys=True) + "\n"
    out["LICENSE"] = (upstream / "LICENSE").read_text()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path, help="folder holding Twilio's spec files")
    parser.add_argument("--check", action="store_true", help="compare; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render(args.upstream).items():
        target = HERE / name
        if target.exists() and target.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            target.write_text(text)
    if args.check and stale:
        print(f"error: the spec extract differs from {args.upstream}: " + ", ".join(stale),
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
