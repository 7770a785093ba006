"""One API call as handlers see it: path parameters, credentials, form and query."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.models import Account
from ..core.paging import PAGE_RULE, PageRequest
from ..service import Principal, Service
from ..service.accounts import AuthenticationFailed
from .limits import TenantLimits
from .params import MAX_BODY_BYTES, BodyTooLarge, IncompleteBody, Params

# ASGI, typed as loosely as the spec is.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(slots=True)
class Reply:
    status: int
    body: dict[str, Any] | None = None


def encode_json(body: dict[str, Any]) -> bytes:
    # Compact UTF-8, byte for byte what json.dumps(ensure_ascii=False,
    # separators=(",", ":")) gives, at a twentieth of its cost (~0.4 µs vs ~8 µs for
    # one resource): on a fetch, encoding was the largest single cost of our own code.
    return orjson.dumps(body)


class Call:
    """Reads straight from the ASGI scope: this is the hot path of every request."""

    # One per request: slots make it cheaper to make and to free than a dict would.
    __slots__ = (
        "_base_url",
        "_form",
        "path_params",
        "principal",
        "public_base_url",
        "receive",
        "reserved",
        "scope",
        "service",
        "tenant",
        "tenants",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        service: Service,
        public_base_url: str | None,
        path_params: dict[str, str],
        tenants: TenantLimits | None = None,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.service = service
        self.public_base_url = public_base_url
        self.path_params = path_params
        self.principal: Principal | None = None
        self._form: Params | None = None
        self._base_url: str | None = None
        self.tenants = tenants
        # The account family the request is counted against, once it is (limits.py).
        self.tenant: str | None = None
        self.reserved = 0  # body bytes reserved against the tenant's share

    def header(self, name: bytes) -> str | None:
        value = _header(self.scope, name)
        return None if value is None else value.decode("latin-1")

    @property
    def base_url(self) -> str:
        """Where absolute URLs in responses point: --public-base-url, else the Host header."""
        # Worked out on first use: only v1 handlers need it. (Not functools'
        # cached_property: on Python 3.11 it takes a lock.)
        if self._base_url is None:
            self._base_url = self.public_base_url or _url_of_host(self.scope)
        return self._base_url

    def arg(self, name: str) -> str:
        return self.path_params[name]

    def recall(self) -> Principal | None:
        """Whom the credentials were verified as moments ago, if anyone: what nearly
        every request needs, without the coroutine of `authenticate`."""
        header = _header(self.scope, b"authorization")
        if header:
            self.principal = self.service.accounts.recall(header)
        return self.principal

    async def authenticate(self) -> Principal:
        """Verify the credentials (the accounts service recalls them first itself)."""
        header = _header(self.scope, b"authorization")
        if not header:
            raise AuthenticationFailed("No credentials provided")
        username, password = _basic_credentials(header)
        client = self.scope.get("client")
        self.principal = await self.service.accounts.authenticate(
            username, password, credentials=header, source=client[0] if client else None
        )
        return self.principal

    @property
    def account_sid(self) -> str:
        """The account Voice v1 resources belong to: the credentials' own."""
        assert self.principal is not None
        return self.principal.account_sid

    async def path_account(self) -> Account:
        """The account named in a 2010 path, if the caller may act on it."""
        assert self.principal is not None
        return await self.service.accounts.visible_account(self.principal, self.arg("AccountSid"))

    async def form(self) -> Params:
        if self._form is None:
            body = await self._read_body()
            self._form = Params.from_body(self.header(b"content-type"), body)
        return self._form

    async def _read_body(self) -> bytes:
        declared = self.header(b"content-length")
        if declared is not None:
            # The HTTP parser has checked it is a number; refuse before reading.
            if int(declared) > MAX_BODY_BYTES:
                raise BodyTooLarge()
            self._reserve(int(declared))
        body = b""
        more = True
        while more:
            message = await self.receive()
            if message["type"] != "http.request":  # http.disconnect mid-body
                raise IncompleteBody()
            chunk = message.get("body", b"")
            if len(body) + len(chunk) > MAX_BODY_BYTES:
                raise BodyTooLarge()
            if declared is None:  # chunked: reserved as it comes
                self._reserve(len(chunk))
            body += chunk
            more = message.get("more_body", False)
        return body

    def _reserve(self, size: int) -> None:
        if self.tenant is not None and self.tenants is not None and size:
            self.tenants.reserve(self.tenant, size)
            self.reserved += size

    def query(self) -> Params:
        return Params.decode(self.scope.get("query_string", b""))

    def page_request(self) -> PageRequest:
        query = self.query()
        return PageRequest.create(
            query.integer("PageSize", "must be a positive integer"),
            query.integer("Page", PAGE_RULE),
            query.text("PageToken"),
        )


Handler = Callable[[Call], Awaitable[Reply]]


def _basic_credentials(header: bytes) -> tuple[str, str]:
    """(username, password) of an HTTP Basic Authorization header."""
    scheme, _, encoded = header.partition(b" ")
    try:
        if scheme.lower() != b"basic":
            raise ValueError
        username, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        )
        if not sep:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed("invalid username") from None
    return username, password


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _url_of_host(scope: Scope) -> str:
    host = _header(scope, b"host")
    if host:
        authority = host.decode("latin-1")
    else:
        server = scope.get("server") or ("localhost", 80)
        authority = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{authority}"
