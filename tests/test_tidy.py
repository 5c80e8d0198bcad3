"""capframe._tidy: open-ended maps become long tables whatever their keys are called."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

import capframe

# Keys that are also column names of the tables built from the maps: `name` and `value` made
# tidy_customers fail with polars' DuplicateError before.
CLASHING = {"customer_id": "a", "name": "b", "profile_index": "c", "scope": "d", "segment": "e", "value": "f"}


def _item(customer_id: int, the_map: dict[str, Any]) -> dict[str, Any]:
    entity = {
        "id": customer_id,
        "profiles": [{"fields": the_map, "allFields": the_map}],
        "extendedFields": the_map,
        "segments": the_map,
    }
    return {"entity": entity, "errors": [], "success": True}


@pytest.mark.parametrize(
    "neighbour",
    [
        pytest.param(None, id="maps of text (the fast path)"),
        pytest.param({"name": 5}, id="a number in a neighbour's map (read row by row)"),
        pytest.param({"name": {"x": 1}, "zq": [1]}, id="an object in a neighbour's map"),
    ],
)
def test_map_keys_named_like_table_columns_are_rows_like_any_other(neighbour: dict[str, Any] | None) -> None:
    items = [_item(7, CLASHING)] + ([_item(8, neighbour)] if neighbour else [])
    tables = capframe.tidy_customers([json.dumps({"data": items}).encode()])
    expected = sorted(CLASHING.items())
    fields = tables.fields.filter(pl.col("customer_id") == 7)
    for scope, index in (("custom", 0), ("all", 0), ("extended", None)):
        rows = fields.filter(pl.col("scope") == scope)
        assert rows.select("customer_id", "profile_index").unique().rows() == [(7, index)]
        assert rows.select("name", "value").rows() == expected
    assert tables.segments.filter(pl.col("customer_id") == 7).rows() == [(7, name, value) for name, value in expected]
