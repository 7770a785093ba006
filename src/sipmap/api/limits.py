"""Fair sharing: what one tenant may hold of the API at once.

The global limit (`--max-concurrent-requests`) protects the process; these protect
the tenants from each other. A tenant is an account family (a top-level account and
its subaccounts), since anyone holding a top-level account can make subaccounts at
will. A tenant may have at most `max_requests` requests in flight and at most
`max_body_bytes` of request bodies reserved; the request that would go past either
is refused at once (429/20429) rather than queued, so it holds nothing.

A body reserves its declared Content-Length before the first byte is read (so a
client trickling a large body holds its share from the start); a chunked body
reserves what has arrived. Everything a request reserved is released when it ends.
"""

from __future__ import annotations

from ..core.errors import ServiceError

RETRY_AFTER_SECONDS = 1  # a hint: in-flight work ends within the body and handler timeouts


class TooManyRequests(ServiceError):
    status = 429
    code = 20429
    message = "Too many requests"
    retry_after: int | None = RETRY_AFTER_SECONDS


class TenantLimits:
    def __init__(self, max_requests: int, max_body_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        # Only tenants with something in flight have an entry, so the tables stay
        # as small as the traffic, whatever the number of accounts.
        self.requests: dict[str, int] = {}
        self.body_bytes: dict[str, int] = {}

    def enter(self, tenant: str) -> None:
        """Count one more request in flight for `tenant`, or refuse it."""
        held = self.requests.get(tenant, 0)
        if held >= self.max_requests:
            raise TooManyRequests(
                f"Too many requests: this account already has {held} requests in flight"
            )
        self.requests[tenant] = held + 1

    def leave(self, tenant: str, body_bytes: int) -> None:
        """The request ended: release its slot and the body bytes it reserved."""
        held = self.requests[tenant] - 1
        if held:
            self.requests[tenant] = held
        else:
            del self.requests[tenant]
        if body_bytes:
            remaining = self.body_bytes[tenant] - body_bytes
            if remaining:
                self.body_bytes[tenant] = remaining
            else:
                del self.body_bytes[tenant]

    def reserve(self, tenant: str, size: int) -> None:
        """Reserve `size` more body bytes for `tenant`, or refuse (reserving nothing)."""
        held = self.body_bytes.get(tenant, 0)
        if held + size > self.max_body_bytes:
            raise TooManyRequests(
                "Too many requests: this account's request bodies in flight exceed "
                f"{self.max_body_bytes} bytes"
            )
        self.body_bytes[tenant] = held + size
