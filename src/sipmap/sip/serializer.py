"""SIP messages back to bytes; Content-Length is always written, from the body."""

from __future__ import annotations

from .message import Message, Request

REASONS = {
    100: "Trying",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    483: "Too Many Hops",
    486: "Busy Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    513: "Message Too Large",
    603: "Decline",
}


def reason_phrase(status: int) -> str:
    return REASONS.get(status, "Unknown")


def serialize(message: Message) -> bytes:
    if isinstance(message, Request):
        start = f"{message.method} {message.uri} SIP/2.0"
    else:
        start = f"SIP/2.0 {message.status} {message.reason}"
    lines = [start]
    lines.extend(f"{name}: {value}" for name, value in message.headers if name != "Content-Length")
    lines.append(f"Content-Length: {len(message.body)}\r\n\r\n")
    return "\r\n".join(lines).encode() + message.body
