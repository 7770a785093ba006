"""The ASGI application: routing, Twilio's response headers, and errors for everything else.

Deliberately a plain ASGI callable rather than a framework app: every request pays
for whatever sits here, and the API's throughput target is set against a trivial
endpoint served by this same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from random import getrandbits
from typing import Any

from .. import __version__, metrics
from ..core import sids
from ..core.errors import NotFound, ServiceError
from ..service import Service
from . import acls, recognition, v1, v2010
from .call import Call, Handler, Receive, Scope, Send, encode_json
from .errors import error_body, error_headers, method_not_allowed
from .limits import TenantLimits, TooManyRequests
from .params import MAX_BODY_BYTES
from .router import Router

log = logging.getLogger("sipmap.api")

_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type, Authorization"),
    (b"access-control-expose-headers", b"Twilio-Request-Id, Twilio-Request-Duration"),
]
# No charset parameter: what Twilio sends (recorded traffic; see docs/api-coverage.md).
_JSON = (b"content-type", b"application/json")
_RETRY = error_headers(TooManyRequests())


class InternalError(ServiceError):
    status = 500
    code = 20500
    message = "internal server error"


async def _respond(
    send: Send,
    started: float,
    status: int,
    body: dict[str, Any] | None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    content = b"" if body is None else encode_json(body)
    headers = [
        (b"content-length", str(len(content)).encode()),
        # Unique, not secret: a fast PRNG instead of a system call per response.
        (b"twilio-request-id", f"{sids.REQUEST}{getrandbits(128):032x}".encode()),
        (b"twilio-request-duration", f"{time.perf_counter() - started:.3f}".encode()),
        *_CORS,
    ]
    if body is not None:
        headers.append(_JSON)
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class App:
    def __init__(
        self,
        service: Service,
        table: Mapping[str, Mapping[str, Handler]],
        public_base_url: str | None,
        max_concurrent: int,
        tenants: TenantLimits,
        health: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.health = health
        self.service = service
        self.router: Router[Handler] = Router(table)
        self.public_base_url = public_base_url
        self.max_concurrent = max_concurrent
        self.in_flight = 0
        self.tenants = tenants

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets: nothing to do
            return
        started = time.perf_counter()
        # Routes match the path as sent, undecoded: "%2F" is not "/" (a front proxy's
        # path rules see the raw path too, so both must agree on what it names).
        raw_path: bytes | None = scope.get("raw_path")
        path: str = scope["path"] if raw_path is None else raw_path.decode("latin-1")
        method: str = scope["method"]
        if self.in_flight >= self.max_concurrent:
            # Shed load early and cheaply rather than queue without bound.
            await _respond(send, started, 429, error_body(TooManyRequests(), path), _RETRY)
            return
        self.in_flight += 1
        call: Call | None = None
        try:
            if method == "OPTIONS":  # CORS preflight
                await _respond(send, started, 200, None)
                return
            if path == "/health" and method in ("GET", "HEAD"):
                fields = self.health() if self.health is not None else {}
                body = {"status": "ok", "version": __version__, **fields}
                await _respond(send, started, 200, body)
                return
            if path == "/metrics" and method in ("GET", "HEAD"):
                await _metrics(send)
                return
            found = self.router.match(path)
            if found is None:
                raise NotFound()
            handlers, params = found
            handler = handlers.get("GET" if method == "HEAD" else method)
            if handler is None:
                raise method_not_allowed(path, method, handlers)
            call = Call(scope, receive, self.service, self.public_base_url, params, self.tenants)
            tenant = (call.recall() or await call.authenticate()).tenant
            self.tenants.enter(tenant)
            call.tenant = tenant  # from here on, the request holds a share
            reply = await handler(call)
            await _respond(send, started, reply.status, reply.body)
        except ServiceError as error:
            await _respond(
                send, started, error.status, error_body(error, path), error_headers(error)
            )
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            await _respond(send, started, 500, error_body(InternalError(), path))
        finally:
            self.in_flight -= 1
            if call is not None and call.tenant is not None:
                self.tenants.leave(call.tenant, call.reserved)


async def _metrics(send: Send) -> None:
    content = metrics.render()
    headers = [
        (b"content-type", metrics.CONTENT_TYPE.encode()),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def create_app(
    service: Service,
    *,
    public_base_url: str | None = None,
    max_concurrent: int = 1000,
    tenants: TenantLimits | None = None,
    health: Callable[[], Mapping[str, Any]] | None = None,
) -> App:
    """`health`: fields added to the `/health` body (the change feed's state)."""
    table: dict[str, Mapping[str, Handler]] = {
        **v1.ROUTES,
        **v2010.ROUTES,
        **acls.ROUTES,
        **recognition.ROUTES,
    }
    base = public_base_url.rstrip("/") if public_base_url else None
    if tenants is None:
        tenants = TenantLimits(max_concurrent, max_concurrent * MAX_BODY_BYTES)
    return App(service, table, base, max_concurrent, tenants, health)
