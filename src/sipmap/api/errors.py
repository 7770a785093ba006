"""Rendering errors as Twilio's error body — the one place that happens."""

from __future__ import annotations

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


def method_not_allowed(path: str, method: str) -> MethodNotAllowed:
    return MethodNotAllowed(
        f"The requested resource {path} does not support the attempted HTTP method {method}"
    )
