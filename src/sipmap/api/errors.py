"""Rendering errors as Twilio's error body — the one place that happens."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.errors import InvalidParameter, MissingParameter, NotFound, ServiceError
from .params import wire_name

API_2010 = "/2010-04-01/"


def error_body(error: ServiceError, path: str) -> dict[str, object]:
    if isinstance(error, NotFound):
        message = f"The requested resource {path} was not found"
    elif isinstance(error, MissingParameter):
        message = f"Missing required parameter {wire_name(error.field)} in the post body"
    elif isinstance(error, InvalidParameter):
        message = f"Invalid {wire_name(error.field)}: {error.rule}"
    elif error.code == 20003 and path.startswith(API_2010):
        message = "Authenticate"  # the 2010 API's text (recorded traffic); v1 gives the detail
    else:
        message = error.message
    return {
        "code": error.code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{error.code}",
        "status": error.status,
    }


class MethodNotAllowed(ServiceError):
    status = 405
    code = 20004

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow  # RFC 9110 §15.5.6: a 405 names the methods the resource has


def method_not_allowed(path: str, method: str, methods: Iterable[str]) -> MethodNotAllowed:
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    allowed.add("OPTIONS")  # CORS preflights are answered on every path
    return MethodNotAllowed(
        f"The requested resource {path} does not support the attempted HTTP method {method}",
        ", ".join(sorted(allowed)),
    )


_WWW_AUTHENTICATE = (b"www-authenticate", b'Basic realm="Twilio API"')


def error_headers(error: ServiceError) -> list[tuple[bytes, bytes]] | None:
    """Headers an error response carries besides the usual ones."""
    if error.code == 20003:
        return [_WWW_AUTHENTICATE]
    if isinstance(error, MethodNotAllowed):
        return [(b"allow", error.allow.encode())]
    retry_after: int | None = getattr(error, "retry_after", None)
    if retry_after is not None:
        return [(b"retry-after", str(retry_after).encode())]
    return None
