"""Sans-I/O SIP parser: bytes in, messages out; never a socket.

`parse_datagram` takes one UDP datagram (one message, RFC 3261 §18.3: a Content-Length
shorter than the datagram truncates the body, a longer one is an error).
`StreamParser` frames a TCP byte stream by Content-Length (mandatory there), skips
CRLF keep-alives between messages, and never buffers more than `max_message` bytes.

Errors are data: `ParseError` says why (`reason`, a counter label), what to answer
(`status`, 400 or 513, or None to drop silently) and carries whatever headers could be
read, so the responder can build a reply when a Via was readable. It is the only
exception these functions raise, whatever the input.
"""

from __future__ import annotations

from .message import CANONICAL, Header, Message, Request, Response, is_number

DEFAULT_MAX_MESSAGE = 65536
MAX_HEADERS = 256  # more is hostile, not SIP
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


class ParseError(Exception):
    def __init__(
        self,
        reason: str,
        status: int | None,
        headers: list[Header] | None = None,
        method: str | None = None,
        is_response: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the answer if a Via is readable (400, 513), else None
        self.headers = headers or []
        self.method = method
        self.is_response = is_response


def _is_token(text: str) -> bool:
    return text.isascii() and text.replace("-", "").replace(".", "").isalnum()


def _head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """(end of header block, start of body), or (-1, -1) when not complete yet."""
    end = data.find(b"\r\n\r\n", start)
    if end >= 0:
        return end, end + 4
    end = data.find(b"\n\n", start)  # bare LF line ends, tolerated
    if end >= 0:
        return end, end + 2
    return -1, -1


def _headers(lines: list[str], salvage: bool) -> list[Header]:
    """Header lines → (name, value); folded lines joined. With `salvage`, bad lines
    are skipped instead of raising (to find a Via to answer an error to)."""
    headers: list[Header] = []
    for line in lines:
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (RFC 3261 §7.3.1)
            if headers:
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}".strip())
                continue
            if salvage:
                continue
            raise ParseError("malformed_header", 400)
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or " " in name:
            if salvage:
                continue
            raise ParseError("malformed_header", 400)
        headers.append((CANONICAL.get(name.lower(), name), value.strip()))
        if len(headers) > MAX_HEADERS:
            if salvage:
                break
            raise ParseError("too_many_headers", 400)
    return headers


def _salvaged(head: bytes | bytearray, reason: str, status: int | None) -> ParseError:
    """The error to raise, with whatever headers a broken message still shows."""
    text = bytes(head).decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].split(" ", 2)
    is_response = start[0].upper().startswith("SIP/")
    method = None if is_response or len(start) < 2 else start[0]
    headers = _headers(lines[1:], salvage=True)
    return ParseError(reason, status, headers, method, is_response)


def _parse_head(head: bytes | bytearray) -> tuple[Message, int | None]:
    """Start line and headers → a message without body, and its Content-Length."""
    try:
        text = bytes(head).decode("utf-8")
    except UnicodeDecodeError:
        raise _salvaged(head, "not_utf8", 400) from None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    try:
        headers = _headers(lines[1:], salvage=False)
    except ParseError as error:
        raise _salvaged(head, error.reason, 400) from None
    start = lines[0].split(" ", 2)
    message: Message
    if len(start) >= 2 and start[0] == "SIP/2.0":
        if not (is_number(start[1]) and len(start[1]) == 3 and start[1][0] in "123456"):
            raise ParseError("malformed_start_line", None, headers, is_response=True)
        message = Response(int(start[1]), start[2] if len(start) == 3 else "", headers)
    elif len(start) == 3 and start[2] == "SIP/2.0" and _is_token(start[0]) and start[1]:
        message = Request(start[0], start[1], headers)
    else:
        is_response = start[0].upper().startswith("SIP/")
        raise ParseError("malformed_start_line", 400, headers, None, is_response)
    method = message.method if isinstance(message, Request) else None
    firsts = dict(reversed(headers))  # each name's first value, in one C-level pass
    if any(name not in firsts for name in _REQUIRED):
        raise ParseError("missing_header", 400, headers, method, isinstance(message, Response))
    cseq = firsts["CSeq"]
    number, _, cseq_method = cseq.partition(" ")
    if not is_number(number) or len(number) > 10 or not cseq_method.strip():
        raise ParseError("malformed_cseq", 400, headers, method, isinstance(message, Response))
    if method is not None and cseq_method.strip() != method:
        raise ParseError("malformed_cseq", 400, headers, method)
    length_text = firsts.get("Content-Length")
    length = None
    if length_text is not None:
        if not is_number(length_text) or len(length_text) > 9:
            raise ParseError(
                "malformed_content_length", 400, headers, method, isinstance(message, Response)
            )
        length = int(length_text)
    return message, length


def parse_datagram(data: bytes, max_message: int = DEFAULT_MAX_MESSAGE) -> Message | None:
    """One UDP datagram → its message; None for a keep-alive (only CR/LF)."""
    start = 0
    while start < len(data) and data[start] in b"\r\n":
        start += 1
    if start == len(data):
        return None
    end, body_start = _head_end(data, start)
    if len(data) - start > max_message:
        head = data[start : end if end >= 0 else start + max_message]
        raise _salvaged(head, "too_large", 513)
    if end < 0:
        raise _salvaged(data[start:], "truncated", 400)
    message, length = _parse_head(data[start:end])
    body = data[body_start:]
    if length is not None:
        if length > len(body):
            raise ParseError(
                "content_length_past_datagram",
                400,
                message.headers,
                message.method if isinstance(message, Request) else None,
                isinstance(message, Response),
            )
        body = body[:length]
    message.body = body
    return message


class StreamParser:
    """Frames one TCP connection's bytes into messages. After a `ParseError` the
    stream's framing is lost: the caller answers if it can and closes."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._pending: tuple[Message, int, int] | None = None  # message, body start, length

    def __len__(self) -> int:
        """Bytes buffered for a message not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while True:
            message = self._next()
            if message is None:
                return messages
            messages.append(message)

    def _next(self) -> Message | None:
        buffer = self._buffer
        if self._pending is None:
            start = 0
            while start < len(buffer) and buffer[start] in b"\r\n":
                start += 1
            if start:
                del buffer[:start]  # keep-alive CRLFs between messages
            end, body_start = _head_end(buffer)
            if end < 0:
                if len(buffer) > self.max_message:
                    raise _salvaged(buffer[: self.max_message], "too_large", 513)
                return None
            message, length = _parse_head(buffer[:end])
            if length is None:
                method = message.method if isinstance(message, Request) else None
                raise ParseError(
                    "missing_content_length",
                    400,
                    message.headers,
                    method,
                    isinstance(message, Response),
                )
            if body_start + length > self.max_message:
                method = message.method if isinstance(message, Request) else None
                raise ParseError(
                    "too_large", 513, message.headers, method, isinstance(message, Response)
                )
            self._pending = (message, body_start, length)
        message, body_start, length = self._pending
        if len(buffer) < body_start + length:
            return None
        message.body = bytes(buffer[body_start : body_start + length])
        del buffer[: body_start + length]
        self._pending = None
        return message
