"""capframe._contract: the models' rules as plain data, checked without importing pandera.

What it passes, pandera must pass; what breaks any rule of a model, it must not pass (pandera then
gives the verdict). And a pull whose tables pass never imports pandera.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandera.errors
import polars as pl
import pytest

import capframe
from capframe import _contract, schemas
from capframe._contract import CONTRACTS, Column, Contract

MODELS = {model.__name__: model for model in schemas._TABLES.values()}


def test_the_contracts_are_what_the_models_say() -> None:
    assert sorted(CONTRACTS) == sorted(MODELS)
    for name, model in MODELS.items():
        assert CONTRACTS[name] == _contract.of_model(model), (
            f"{name}: capframe/_contract.py is stale: run `python -m cogapp -r capframe/_contract.py`"
        )


@pytest.mark.parametrize("bundle", [capframe.CustomerTables, capframe.ChildrenTables, capframe.CustomerLookupTables])
def test_the_fingerprints_rules_read_from_the_contracts_are_what_pandera_states(bundle: type[Any]) -> None:
    """A snapshot part's fingerprint hashes its tables' rules. Read from the contracts (no pandera
    import for a cache_dir pull), they must be what pandera's schemas state, to the letter: else every
    part written before would be another version's, fetched again online and refused offline."""
    from capframe._endpoints import model_rules

    stated_by_pandera = []
    for table in bundle.stored():
        schema = bundle.MODELS[table].to_schema()
        columns = [[name, c.nullable, c.unique, [repr(k) for k in c.checks]] for name, c in schema.columns.items()]
        stated_by_pandera.append([table, columns, [repr(k) for k in schema.checks]])
    assert model_rules(bundle) == stated_by_pandera


def test_a_rule_the_contract_cannot_state_is_refused_not_dropped() -> None:
    """A new check in a model must be taught to capframe._contract, or the fast check would pass what pandera refuses."""
    import pandera.polars as pa

    class Matched(schemas.Segments):
        segment: pl.String = pa.Field(str_matches="^[A-Z]")

    class RowChecked(schemas.Segments):
        @pa.dataframe_check
        def some_rule(cls, data: pa.PolarsData) -> pl.LazyFrame:  # type: ignore[misc]
            return data.lazyframe.select(pl.lit(True))

    with pytest.raises(ValueError, match="str_matches"):
        _contract.of_model(Matched)
    contract = _contract.of_model(RowChecked)
    assert contract.frame_checks == ("some_rule",)
    valid = _valid(contract)
    assert not _contract.holds({"t": valid}, {"t": contract})  # a row check it does not know: pandera decides


def _value(name: str, rules: Column, row: int) -> Any:
    """A value every rule of the column allows, different in each row (unique columns)."""
    if rules.isin is not None:
        return rules.isin[0]
    if rules.dtype == pl.Int64:
        return row + 1 + max(rules.greater_than or 0, rules.at_least or 0)
    if rules.dtype == pl.Float64:
        return row + 0.5
    if rules.dtype == pl.Boolean:
        return True
    if isinstance(rules.dtype, pl.Datetime):
        return datetime(2024, 1, 1, row, tzinfo=UTC)
    return f"{name} {row}"


def _valid(contract: Contract, rows: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {name: [_value(name, rules, row) for row in range(rows)] for name, rules in contract.columns.items()},
        schema=contract.schema,
    )


def _broken(contract: Contract) -> list[tuple[str, Callable[[pl.DataFrame], pl.DataFrame]]]:
    """(what, a change of a valid frame that breaks it) for every rule of the contract."""
    cases: list[tuple[str, Callable[[pl.DataFrame], pl.DataFrame]]] = []
    first = next(iter(contract.columns))
    cases.append(("a column too many", lambda f: f.with_columns(extra=pl.lit(1))))
    cases.append(("a column missing", lambda f: f.drop(first)))
    for name, rules in contract.columns.items():

        def at_row_0(value: Any, name: str = name, rules: Column = rules) -> Callable[[pl.DataFrame], pl.DataFrame]:
            column = pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(value, rules.dtype)).otherwise(pl.col(name))
            return lambda f: f.with_columns(column.alias(name))

        other: pl.DataType = pl.String() if rules.dtype != pl.String else pl.Int64()
        cases.append((f"{name} of another dtype", lambda f, n=name, o=other: f.with_columns(pl.lit(None, o).alias(n))))
        if not rules.nullable:
            cases.append((f"{name} null", at_row_0(None)))
        if not rules.nullable and rules.dtype.is_float():
            cases.append((f"{name} NaN", at_row_0(float("nan"))))
        if rules.unique:
            cases.append((f"{name} twice", lambda f, n=name: f.with_columns(pl.col(n).first())))
        if rules.greater_than is not None:
            cases.append((f"{name} at its bound", at_row_0(rules.greater_than)))
        if rules.at_least is not None:
            cases.append((f"{name} under its bound", at_row_0(rules.at_least - 1)))
        if rules.isin is not None:
            cases.append((f"{name} not allowed", at_row_0("not one of them")))
    if "one_row_per_parent_and_child" in contract.frame_checks:
        cases.append(("a row twice", lambda f: pl.concat([f, f.head(1)])))
    return cases


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_contract_passes_a_table_that_passes_its_model_and_nothing_that_breaks_a_rule(model: str) -> None:
    contract = CONTRACTS[model]
    valid = _valid(contract)
    MODELS[model].validate(valid)
    assert _contract.holds({"t": valid}, {"t": contract})
    assert _contract.holds({"t": valid.head(0)}, {"t": contract})
    assert _contract.holds({"t": valid.select(reversed(valid.columns))}, {"t": contract})  # order is free
    cases = _broken(contract)
    assert len(cases) > 2 + len(contract.columns)
    for what, breaks in cases:
        broken = breaks(valid)
        assert not _contract.holds({"t": broken}, {"t": contract}), what
        with pytest.raises((pandera.errors.SchemaError, pandera.errors.SchemaErrors)):
            MODELS[model].validate(broken)


def test_a_table_that_fails_its_contract_is_still_judged_by_pandera_and_named() -> None:
    tables = capframe.CustomerTables.empty().tables()
    customers = _valid(CONTRACTS["Customers"])
    fine = capframe.CustomerTables.of({**tables, "customers": customers})
    assert fine.checked() is fine
    bad = capframe.CustomerTables.of({**tables, "customers": customers.with_columns(profile_count=pl.lit(-1))})
    with pytest.raises(capframe.CapframeError, match=r"column 'profile_count'") as raised:
        bad.checked()
    assert raised.value.__cause__ is None
    bad.checked(["profiles"])  # only the tables named are checked


def test_pulls_whose_tables_pass_do_not_import_pandera() -> None:
    """pandera took 0.4-0.7 s of a first fetch's 0.8 s: it is imported for a table that fails only, with
    a cache_dir too."""
    code = """
import sys, capframe
client = capframe.Client.sandbox()
ids = client.sandbox_org.customer_ids(100)
tables = capframe.fetch_customer_tables(ids, "INSTORE", client=client, progress=False)
assert tables.customers.height == 100
capframe.fetch_customer_tables([], "INSTORE", client=client, progress=False)
children = capframe.fetch_children_tables(("mobile", "917799889933"), client=client, progress=False)
assert children.children.height > 0
# A snapshot's fingerprint states the models' rules too: read from the contracts, not from pandera.
import tempfile
with tempfile.TemporaryDirectory() as folder:
    capframe.fetch_customer_tables(ids[:10], "INSTORE", client=client, cache_dir=folder, progress=False)
    capframe.fetch_customer_tables(ids[:10], "INSTORE", cache_dir=folder, progress=False)
assert "pandera" not in sys.modules, "pandera imported"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
