"""Where Twilio's specs and Twilio's API disagree, said once and explicitly.

The fuzz test runs schemathesis's checks unchanged against the served operations;
it does not switch any off. Instead, each way the published specs fall short of
the API they describe (and sipmap follows the API, per ../shared/CONTRACT.md) is
a named patch applied to a copy of the spec here, documented in README.md:

1. Undocumented error statuses. The operations list only their success status
   (`200`, `201`, `204`), but every Twilio operation can answer 400, 401, 403,
   404, 405, 408, 409, 413, 429 and 431 with Twilio's error body. Those responses
   are added to each operation with that body's schema (`code`, `message`,
   `more_info`, `status`), so an error is checked against it rather than accepted
   blindly.
2. Relative 2010 URIs. The 2010-04-01 resources declare `uri`, the `*_page_uri`
   links and the `subresource_uris` values as `format: uri` (absolute), but Twilio
   returns them relative to the API host (`/2010-04-01/Accounts/AC….json`). Those
   fields of 2010 schemas become `format: uri-reference`.
3. Unstated value rules. The specs type parameters (a string, an integer) but do
   not state the rules Twilio applies to their values: IPv4 dotted quads, prefix
   lengths 1-32, text without control characters and of bounded length, SIP
   domain names ending in the configured suffix, references to resources that
   exist. So a schema-valid request may get 400 — as from Twilio. The
   positive-data check is kept, with 400 added to the statuses it expects
   (POSITIVE_EXTRA), and the fuzz test's own check requires every such 400 to name
   the parameter and its rule ("Invalid <Param>: …" / "Missing required
   parameter …").
4. Unknown parameters are ignored (CONTRACT §1, as Twilio does), so a request with
   a parameter the spec does not list is not schema-violating data the server must
   refuse: negative cases are not made by adding unknown parameters
   (`allow_extra_parameters` off); they still break the declared ones.
5. `PageSize` above 1000. The specs cap it at 1000, but every official SDK sends
   `PageSize=<limit>` for `list(limit=N)`, and a page size over 1000 is served as
   pages of 1000 (docs/api-coverage.md), so `list(limit=5000)` works. The cap is
   lifted from `PageSize` here, so a larger value is not expected to be refused;
   values below 1 still are.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR_STATUSES = ("400", "401", "403", "404", "405", "408", "409", "413", "429", "431")

TWILIO_ERROR = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "more_info": {"type": "string"},
        "status": {"type": "integer"},
    },
}

POSITIVE_EXTRA = ("400",)

URI_FIELDS = ("uri", "first_page_uri", "next_page_uri", "previous_page_uri")


def undocumented_errors(spec: dict[str, Any]) -> None:
    for item in spec["paths"].values():
        for method in ("get", "post", "delete"):
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation["responses"]
            for status in ERROR_STATUSES:
                responses.setdefault(
                    status,
                    {
                        "description": "Twilio's error body (undocumented in the spec)",
                        "content": {"application/json": {"schema": TWILIO_ERROR}},
                    },
                )


def _relative_uris(node: Any, in_2010: bool) -> None:
    if isinstance(node, list):
        for value in node:
            _relative_uris(value, in_2010)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    if in_2010 and isinstance(properties, dict):
        for name, prop in properties.items():
            if name in URI_FIELDS and prop.get("format") == "uri":
                prop["format"] = "uri-reference"
    for value in node.values():
        _relative_uris(value, in_2010)


def relative_2010_uris(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        _relative_uris(item, path.startswith("/2010-04-01/"))
    for name, schema in spec["components"]["schemas"].items():
        _relative_uris(schema, name.startswith("api.v2010."))


def page_size_above_1000(spec: dict[str, Any]) -> None:
    for item in spec["paths"].values():
        for method in ("get", "post", "delete"):
            for parameter in item.get(method, {}).get("parameters", []):
                if parameter.get("name") == "PageSize":
                    parameter.get("schema", {}).pop("maximum", None)


PATCHES = (undocumented_errors, relative_2010_uris, page_size_above_1000)


def apply(spec: dict[str, Any]) -> dict[str, Any]:
    patched = copy.deepcopy(spec)
    for patch in PATCHES:
        patch(patched)
    return patched
