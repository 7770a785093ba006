"""Validation rules for resource fields. Each raises InvalidParameter naming the field."""

from __future__ import annotations

import re
from ipaddress import AddressValueError, IPv4Address
from urllib.parse import urlsplit

from .errors import InvalidDomainName, InvalidParameter

HTTP_METHODS = ("GET", "POST")
MAX_URL_LENGTH = 2048
# What IPv4Address accepts, as one regex (no leading zeros, each octet 0-255): the
# common valid case skips building an address object; anything else is judged by it.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f]")  # C0 controls but the tab


def ipv4_address(field: str, value: str) -> str:
    """A dotted-decimal IPv4 address, returned as given (Twilio stores it unmasked)."""
    if _DOTTED_QUAD.fullmatch(value):
        return value
    try:
        IPv4Address(value)
    except (AddressValueError, ValueError):
        raise InvalidParameter(
            field, "must be an IPv4 address in dotted decimal notation"
        ) from None
    return value


def prefix_length(field: str, value: int) -> int:
    # Twilio answers 0 (the API's documented default) with a /32 record.
    if value == 0:
        return 32
    if not 1 <= value <= 32:
        raise InvalidParameter(field, "must be an integer from 1 to 32")
    return value


def text(field: str, value: str, *, max_length: int, required: bool = False) -> str:
    if required and not value.strip():
        raise InvalidParameter(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidParameter(field, f"must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise InvalidParameter(field, "must not contain control characters")
    return value


def http_url(field: str, value: str) -> str | None:
    """An absolute http(s) URL; the empty string clears the field."""
    if value == "":
        return None
    if len(value) > MAX_URL_LENGTH:
        raise InvalidParameter(field, f"must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(field, "must be an absolute http or https URL")
    if any(c.isspace() for c in value):
        raise InvalidParameter(field, "must not contain whitespace")
    return value


def http_method(field: str, value: str) -> str:
    method = value.upper()
    if method not in HTTP_METHODS:
        raise InvalidParameter(field, "must be GET or POST")
    return method


_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def sip_domain_name(field: str, value: str, *, suffix: str) -> str:
    """A SIP domain name: `<name>.<suffix>`, name one label of letters, digits and hyphens.

    Returned lowercased: DNS names are case-insensitive, so uniqueness must be too.
    """
    name = value.lower()
    tail = "." + suffix.lower()
    if not name.endswith(tail) or len(name) > 253:
        raise InvalidDomainName(field, f"must be a name ending in .{suffix}")
    head = name[: -len(tail)]
    # isascii(): some non-ASCII letters lowercase to ASCII ("\u212a", KELVIN SIGN -> "k").
    if not head or not value.isascii() or not _LABEL.fullmatch(head):
        raise InvalidDomainName(
            field, f"must be letters, digits and hyphens (not first or last), then .{suffix}"
        )
    return name
