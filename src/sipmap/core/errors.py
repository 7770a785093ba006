"""The error catalogue. Errors are plain data; the HTTP edge renders them once.

Each error carries Twilio's error code and HTTP status because both are part of
the contract clients program against. Parameter names are the snake_case field
names of the core; the edge spells them the way its wire format does.
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 400
    code: int = 20001
    message: str = "Bad request"  # an error class's fixed message, if it has one

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class NotFound(ServiceError):
    """The resource does not exist or is not visible to the caller (never say which)."""

    status = 404
    code = 20404
    message = "not found"


class MissingParameter(ServiceError):
    def __init__(self, field: str) -> None:
        super().__init__(f"Missing required parameter {field}")
        self.field = field


class InvalidParameter(ServiceError):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"Invalid {field}: {rule}")
        self.field = field
        self.rule = rule


class Conflict(ServiceError):
    status = 409
    code = 20409


class DomainNameUnavailable(ServiceError):
    code = 21232


class InvalidDomainName(InvalidParameter):
    """A SIP domain name breaking the naming rule: Twilio's code for it is 21232 as well."""

    code = 21232


class AclAlreadyMapped(ServiceError):
    code = 21231
    message = "This IP Access Control List is already mapped to this SIP Domain"


class LimitExceeded(ServiceError):
    """A per-account or per-parent quota would be exceeded."""


class InvalidPageToken(ServiceError):
    code = 21481
    message = "Invalid PageToken"


class AccountNotActive(ServiceError):
    status = 401
    code = 20005
    message = "Account not active"


class DatabaseUnavailable(ServiceError):
    """The database did not answer within the node's --db-timeout (down, restarting,
    unreachable). For a write, whether it was applied is unknown: retry it."""

    status = 503
    code = 20503
    message = "Service unavailable: the database did not answer in time; retry later"
