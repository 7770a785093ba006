"""Twilio's OpenAPI specs cut down to the operations sipmap serves, for the fuzz test.

    python -m tests.fuzz.extract [SPEC_DIR]   (default: ../shared/twilio-oai)

writes tests/fuzz/twilio_served.json: the served paths and methods of
twilio_voice_v1.json and twilio_api_v2010.json, unmodified, with the component
schemas they reference, in one document. Nothing in it is changed: Twilio's spec
quirks are handled, explicitly, by tests/fuzz/quirks.py. See README.md here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from sipmap.api import acls, v1, v2010

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "twilio_served.json"
DEFAULT_SPECS = HERE.parents[2] / "shared" / "twilio-oai"
SPEC_FILES = ("twilio_voice_v1.json", "twilio_api_v2010.json")


def shape(template: str) -> str:
    """A path template without its parameter names ({AccountSid} and {Sid} alike)."""
    return re.sub(r"\{[A-Za-z]+\}", "{}", template)


def served() -> dict[str, set[str]]:
    """Path template shape → the methods sipmap serves on it (Twilio's operations only)."""
    routes: dict[str, set[str]] = {}
    for module in (v1, v2010, acls):
        for template, handlers in module.ROUTES.items():
            routes[shape(template)] = {method.lower() for method in handlers}
    return routes


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def extract(spec_dir: Path) -> dict[str, Any]:
    routes = served()
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    provenance = (spec_dir / "PROVENANCE.txt").read_text()
    for name in SPEC_FILES:
        spec = json.loads((spec_dir / name).read_text())
        for template, item in spec["paths"].items():
            methods = routes.get(shape(template))
            if not methods:
                continue
            paths[template] = {
                key: value
                for key, value in item.items()
                if key not in ("get", "post", "delete", "put", "patch") or key in methods
            }
        security.update(spec["components"].get("securitySchemes", {}))
        # The schemas the kept operations reference, and theirs in turn.
        components = spec["components"]["schemas"]
        wanted: set[str] = set()
        _refs(paths, wanted)
        while True:
            more = set(wanted)
            for schema in list(wanted):
                if schema in components:
                    _refs(components[schema], more)
            if more == wanted:
                break
            wanted = more
        schemas.update({k: components[k] for k in sorted(wanted) if k in components})
    commit = next(
        (line.split(":", 1)[1].strip() for line in provenance.splitlines() if "Commit" in line),
        "unknown",
    )
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "Twilio - the operations sipmap serves",
            "version": "1.0.0",
            "description": (
                "Extracted by tests/fuzz/extract.py from twilio/twilio-oai "
                f"({', '.join(SPEC_FILES)}, commit {commit}); paths, operations and "
                "schemas unmodified. MIT License, Copyright (C) 2023, Twilio, Inc. "
                "(tests/fuzz/LICENSE)."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {"securitySchemes": security, "schemas": schemas},
        "security": [{name: []} for name in sorted(security)],
    }


def main() -> None:
    spec_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPECS
    OUTPUT.write_text(json.dumps(extract(spec_dir), indent=1, sort_keys=False) + "\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
