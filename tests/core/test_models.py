"""Models are values: immutable, compared and hashed by what they hold.

Rows read from the store are cached and shared between requests (store/sqlite.py),
so a model that could be changed in place could change another request's answer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from msgspec.structs import replace

from sipmap.core.models import IpRecord, SipDomain

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(name: str | None = "a") -> IpRecord:
    return IpRecord("IL" + "1" * 32, "AC" + "2" * 32, name, "10.0.0.1", 32, T0, T0)


def test_a_model_cannot_be_changed_in_place() -> None:
    r = record()
    with pytest.raises(AttributeError):
        r.friendly_name = "b"  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):  # not even around the class
        object.__setattr__(r, "friendly_name", "b")
    assert r.friendly_name == "a"


def test_models_compare_and_hash_by_value() -> None:
    assert record() == record()
    assert hash(record()) == hash(record())
    assert record() != record("b")
    assert len({record(), record(), record("b")}) == 2
    changed = replace(record(), friendly_name="b")
    assert changed == record("b") and record().friendly_name == "a"


def test_a_model_of_another_kind_is_never_equal() -> None:
    domain = SipDomain(
        "SD" + "1" * 32, "AC" + "2" * 32, "x.sip.twilio.com", None, None, "POST", None,
        "POST", None, "POST", False, False, False, None, None, T0, T0,
    )  # fmt: skip
    assert domain != record()
