"""Rows and models: every model read back from its row is the model written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipmap.store.schema import _KINDS, COLUMNS, SID_ROW_READERS, TABLES, from_row, to_row

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": st.text(max_size=40),
    "str | None": st.none() | st.text(max_size=40),
    "int": st.integers(-(2**62), 2**62),
    "bool": st.booleans(),
    # Stored as whole seconds, in UTC.
    "datetime": st.integers(0, 4_000_000_000).map(lambda s: datetime.fromtimestamp(s, UTC)),
}


@pytest.mark.parametrize("model", list(TABLES), ids=lambda m: m.__name__)
@given(data=st.data())
def test_a_row_reads_back_as_the_model_written(model: type[Any], data: st.DataObject) -> None:
    values = [data.draw(_VALUES[_KINDS[model][name]], label=name) for name in COLUMNS[model]]
    written = model(*values)
    row = tuple(to_row(written))
    assert all(not isinstance(v, datetime | bool) for v in row)  # what a driver stores
    read = from_row(model, row)
    assert read == written
    assert [type(getattr(read, n)) for n in COLUMNS[model]] == [type(v) for v in values]
    # A lookup by SID selects every column but the SID it was given.
    sid = row[0]
    by_sid = SID_ROW_READERS[model](sid, row[1:])
    assert by_sid == written and by_sid.sid is sid
