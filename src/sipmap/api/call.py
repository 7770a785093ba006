"""One API call as handlers see it, and the wrapper that turns handlers into endpoints."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import ServiceError
from ..core.models import Account
from ..core.paging import PageRequest
from ..service import Principal, Service
from ..service.accounts import AuthenticationFailed
from .errors import error_body
from .params import MAX_BODY_BYTES, BodyTooLarge, Params

log = logging.getLogger("sipmap.api")

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(slots=True)
class Reply:
    status: int
    body: dict[str, Any] | None = None


def json_response(status: int, body: dict[str, Any] | None) -> Response:
    if body is None:
        return Response(status_code=status)
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, media_type=JSON_TYPE)


def error_response(error: ServiceError, path: str) -> Response:
    response = json_response(error.status, error_body(error, path))
    if error.status == 401 and isinstance(error, AuthenticationFailed):
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


class Call:
    def __init__(self, request: Request, service: Service, base_url: str) -> None:
        self.request = request
        self.service = service
        self.base_url = base_url
        self.path_params: dict[str, str] = request.path_params
        self.principal: Principal | None = None
        self._form: Params | None = None

    @property
    def path(self) -> str:
        return self.request.url.path

    def arg(self, name: str) -> str:
        return self.path_params[name]

    async def authenticate(self) -> Principal:
        header = self.request.headers.get("authorization")
        if not header:
            raise AuthenticationFailed("No credentials provided")
        scheme, _, encoded = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise ValueError
            username, sep, password = (
                base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
            )
            if not sep:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise AuthenticationFailed("invalid username") from None
        self.principal = await self.service.accounts.authenticate(username, password)
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
            body = b""
            async for chunk in self.request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            self._form = Params.from_body(self.request.headers.get("content-type"), body)
        return self._form

    def query(self) -> Params:
        return Params.decode(self.request.scope.get("query_string", b""))

    def page_request(self) -> PageRequest:
        query = self.query()
        rule = "must be an integer from 1 to 1000"
        return PageRequest.create(
            query.integer("PageSize", rule),
            query.integer("Page", "must be a non-negative integer"),
            query.text("PageToken"),
        )


Handler = Callable[[Call], Awaitable[Reply]]


def endpoint(
    service: Service, handler: Handler, public_base_url: str | None
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        base_url = public_base_url or f"{request.url.scheme}://{request.url.netloc}"
        call = Call(request, service, base_url)
        try:
            await call.authenticate()
            reply = await handler(call)
        except ServiceError as error:
            return error_response(error, request.url.path)
        return json_response(reply.status, reply.body)

    return run
