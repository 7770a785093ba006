"""SIP message values (RFC 3261 §7): requests, responses, their headers, and Via/URI helpers.

Header names are stored in one canonical spelling for the headers the edge reads
(compact forms such as `v` or `i` expanded), and as received for all others, so
the edge compares known names with `==` and never lowercases on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Compact forms (RFC 3261 §7.3.3) and the spelling of the headers the edge reads.
CANONICAL = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Max-Forwards",
        "Route",
        "Record-Route",
        "Server",
        "Supported",
        "Subject",
    )
}
CANONICAL.update(
    {
        "v": "Via",
        "f": "From",
        "t": "To",
        "i": "Call-ID",
        "l": "Content-Length",
        "m": "Contact",
        "c": "Content-Type",
        "k": "Supported",
        "s": "Subject",
    }
)

Header = tuple[str, str]


@dataclass(slots=True)
class Request:
    method: str
    uri: str
    headers: list[Header]
    body: bytes = b""

    def get(self, name: str) -> str | None:
        return first(self.headers, name)


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: list[Header]
    body: bytes = b""

    def get(self, name: str) -> str | None:
        return first(self.headers, name)


Message = Request | Response


def first(headers: list[Header], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def split_commas(value: str) -> list[str]:
    """A header value holding several comma-separated values (Via, Route), split where
    a comma is outside quotes and angle brackets. Never an empty list."""
    if "," not in value:
        return [value.strip()]
    parts: list[str] = []
    start = 0
    quoted = False
    angle = 0
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "<":
            angle += 1
        elif ch == ">":
            angle = max(0, angle - 1)
        elif ch == "," and angle == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    # Never empty, so that the first value can always be taken (',' alone is one
    # empty value, which no parser below accepts).
    return [p for p in parts if p] or [""]


def pop_first_value(headers: list[Header], name: str) -> str | None:
    """Remove the topmost value of `name` (which may share a line with others); return it."""
    for index, (key, value) in enumerate(headers):
        if key == name:
            values = split_commas(value)
            if len(values) > 1:
                headers[index] = (key, ", ".join(values[1:]))
            else:
                del headers[index]
            return values[0] if values else None
    return None


@dataclass(slots=True)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`."""

    transport: str  # upper case: UDP, TCP, ...
    host: str  # without IPv6 brackets
    port: int | None
    params: list[tuple[str, str | None]] = field(default_factory=list)

    @classmethod
    def parse(cls, value: str) -> Via | None:
        protocol, _, rest = value.strip().partition(" ")
        parts = protocol.split("/")
        if len(parts) != 3 or parts[0].strip().upper() != "SIP":
            return None
        sent_by, *raw_params = rest.strip().split(";")
        host, port = split_host_port(sent_by.strip())
        if not host:
            return None
        params: list[tuple[str, str | None]] = []
        for raw in raw_params:
            name, eq, val = raw.strip().partition("=")
            params.append((name.strip().lower(), val.strip() if eq else None))
        return cls(parts[2].strip().upper(), host, port, params)

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value if value is not None else ""
        return None

    def set_param(self, name: str, value: str | None) -> None:
        for index, (key, _) in enumerate(self.params):
            if key == name:
                self.params[index] = (name, value)
                return
        self.params.append((name, value))

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        return f"SIP/2.0/{self.transport} {join_host_port(self.host, self.port)}{params}"


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def split_host_port(text: str) -> tuple[str, int | None]:
    """'host:port', '[v6]:port', 'host' → (host without brackets, port or None)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return "", None
        host, rest = text[1:end], text[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        return host, None
    if not is_number(port_text) or not 0 < int(port_text) < 65536:
        return "", None
    return host, int(port_text)


def join_host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


@dataclass(slots=True)
class SipUri:
    """A sip:/sips: URI split for rewriting: scheme, user-info, host, port, the rest."""

    scheme: str
    user: str  # everything before '@', '' when absent
    host: str
    port: int | None
    rest: str  # ';params?headers' as received

    @classmethod
    def parse(cls, text: str) -> SipUri | None:
        text = text.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        scheme, sep, remainder = text.partition(":")
        if not sep or scheme.lower() not in ("sip", "sips"):
            return None
        user, at, hostpart = remainder.partition("@")
        if not at:
            user, hostpart = "", remainder
        cut = len(hostpart)
        for mark in (";", "?"):
            found = hostpart.find(mark)
            if found >= 0:
                cut = min(cut, found)
        host, port = split_host_port(hostpart[:cut])
        if not host:
            return None
        return cls(scheme.lower(), user, host.lower(), port, hostpart[cut:])

    def param(self, name: str) -> str | None:
        for raw in self.rest.split("?", 1)[0].split(";")[1:]:
            key, eq, value = raw.partition("=")
            if key.strip().lower() == name:
                return value.strip() if eq else ""
        return None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{user}{join_host_port(self.host, self.port)}{self.rest}"


def tag_of(value: str | None) -> str | None:
    """The `tag` parameter of a From/To value, if any."""
    if not value:
        return None
    # Parameters follow the closing '>' when the URI is bracketed.
    tail = value[value.rfind(">") + 1 :] if ">" in value else value
    for raw in tail.split(";")[1:]:
        key, _, tag = raw.partition("=")
        if key.strip().lower() == "tag":
            return tag.strip() or None
    return None


def uri_of_name_addr(value: str) -> str:
    """The URI inside a Route/Contact value: `"n" <sip:x;lr>;p` → `sip:x;lr`."""
    start = value.find("<")
    if start >= 0:
        end = value.find(">", start)
        return value[start + 1 : end if end > 0 else len(value)]
    return value.split(";", 1)[0].strip()
