"""Fair-sharing accounting (api/limits.py): what one tenant holds, and nothing left over."""

from __future__ import annotations

import pytest

from sipmap.api.limits import TenantLimits, TooManyRequests


def test_requests_in_flight_are_limited_per_tenant() -> None:
    limits = TenantLimits(max_requests=2, max_body_bytes=100)
    limits.enter("A")
    limits.enter("A")
    with pytest.raises(TooManyRequests) as refused:
        limits.enter("A")
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, 20429, 1)
    limits.enter("B")  # another tenant is unaffected
    limits.leave("A", 0)
    limits.enter("A")  # a slot came free


def test_body_bytes_are_limited_per_tenant_and_a_refusal_reserves_nothing() -> None:
    limits = TenantLimits(max_requests=10, max_body_bytes=100)
    limits.enter("A")
    limits.reserve("A", 60)
    with pytest.raises(TooManyRequests):
        limits.reserve("A", 41)
    limits.reserve("A", 40)
    limits.enter("B")
    limits.reserve("B", 100)
    limits.leave("A", 100)
    limits.leave("B", 100)
    assert limits.requests == {} and limits.body_bytes == {}
