"""The ASGI application: the route table, Twilio's headers, and errors for everything else."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..core.errors import NotFound, ServiceError
from ..service import Service
from . import acls, v1, v2010
from .call import Handler, endpoint, error_response, json_response
from .errors import method_not_allowed

log = logging.getLogger("sipmap.api")

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type, Authorization"),
    (b"access-control-expose-headers", b"Twilio-Request-Id, Twilio-Request-Duration"),
]


class TwilioHeaders:
    """Adds Twilio-Request-Id, Twilio-Request-Duration and CORS headers; answers preflights."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ("RQ" + secrets.token_hex(16)).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = f"{time.perf_counter() - started:.3f}".encode()
                message["headers"] = [
                    *message.get("headers", []),
                    (b"twilio-request-id", request_id),
                    (b"twilio-request-duration", elapsed),
                    *CORS_HEADERS,
                ]
            await send(message)

        if scope["method"] == "OPTIONS":
            await Response(status_code=200)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return error_response(
            method_not_allowed(request.url.path, request.method), request.url.path
        )
    return error_response(NotFound(), request.url.path)


def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    error = ServiceError("internal server error")
    error.status, error.code = 500, 20500
    return error_response(error, request.url.path)


async def health(request: Request) -> Response:
    return json_response(200, {"status": "ok", "version": __version__})


def create_app(
    service: Service,
    *,
    public_base_url: str | None = None,
    extra_routes: Mapping[str, Mapping[str, Handler]] | None = None,
) -> ASGIApp:
    table: dict[str, Mapping[str, Handler]] = {
        **v1.ROUTES,
        **v2010.ROUTES,
        **acls.ROUTES,
        **(extra_routes or {}),
    }
    base = public_base_url.rstrip("/") if public_base_url else None
    routes: list[Any] = [Route("/health", health, methods=["GET"])]
    for path, handlers in table.items():
        for method, handler in handlers.items():
            routes.append(Route(path, endpoint(service, handler, base), methods=[method]))
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found, Exception: _internal_error},
    )
    return TwilioHeaders(app)
