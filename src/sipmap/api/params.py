"""Decoding form bodies and query strings into typed values, with Twilio-style errors.

Twilio's names (PascalCase) exist only here and in rendering; the core speaks snake_case.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..core.errors import InvalidParameter, ServiceError

MAX_BODY_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
PREFIX_RULE = "must be an integer from 1 to 32"  # CidrPrefixLength, wherever it is taken
# ASCII digits only: str.isdigit() also accepts superscripts (which int() rejects)
# and other scripts' digits.
_INTEGER = re.compile(r"-?[0-9]{1,12}")


class BodyTooLarge(ServiceError):
    status = 413
    message = f"Request body exceeds {MAX_BODY_BYTES} bytes"


class IncompleteBody(ServiceError):
    """The client went away before its body was complete: the part that came is no request."""

    message = "Invalid request: the body ended before it was complete"


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Exactly parse_qsl(text, keep_blank_values=True, errors="strict"), faster.

    Most parts carry no escapes; they skip both replace() and unquote(), which would
    return them unchanged. Only the separator "&" splits (as in parse_qsl since 3.10).
    """
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name = unquote(name.replace("+", " "), errors="strict")
            value = unquote(value.replace("+", " "), errors="strict")
        pairs.append((name, value))
    return pairs


def wire_name(field: str) -> str:
    """snake_case core field → Twilio's PascalCase parameter name."""
    return "".join(part.capitalize() for part in field.split("_"))


def snake_name(param: str) -> str:
    out = []
    for i, c in enumerate(param):
        if c.isupper() and i:
            out.append("_")
        out.append(c.lower())
    return "".join(out)


class Params:
    """Parameters of one request (form body or query), each given at most once.

    A repeated parameter is an error only when it is read: unknown parameters are
    ignored (CONTRACT §1), repeated or not.
    """

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        self._repeated: set[str] | None = None
        for key, value in pairs:
            if key in self._values:
                if self._repeated is None:
                    self._repeated = set()
                self._repeated.add(key)
            self._values[key] = value

    def _get(self, name: str) -> str | None:
        if self._repeated is not None and name in self._repeated:
            raise InvalidParameter(snake_name(name), "was given more than once")
        return self._values.get(name)

    @classmethod
    def decode(cls, raw: bytes | str) -> Params:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            # strict: a %-escape that is not UTF-8 is an error, not U+FFFD
            pairs = parse_pairs(text)
        except UnicodeDecodeError:
            raise ServiceError("Invalid request: parameters must be UTF-8 encoded") from None
        return cls(pairs)

    @classmethod
    def from_body(cls, content_type: str | None, body: bytes) -> Params:
        # Bodies of another content type carry no parameters (CONTRACT §1).
        if content_type is None or content_type.split(";")[0].strip().lower() != FORM_TYPE:
            return cls([])
        return cls.decode(body)

    def __contains__(self, name: str) -> bool:
        return self._get(name) is not None

    def text(self, name: str) -> str | None:
        return self._get(name)

    def integer(self, name: str, rule: str) -> int | None:
        value = self._get(name)
        if value is None:
            return None
        stripped = value.strip()
        if not _INTEGER.fullmatch(stripped):
            raise InvalidParameter(snake_name(name), rule)
        return int(stripped)

    def boolean(self, name: str) -> bool | None:
        value = self._get(name)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise InvalidParameter(snake_name(name), "must be true or false")
        return lowered == "true"
