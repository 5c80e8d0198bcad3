"""What each table's pandera model (:mod:`capframe.schemas`) asks of it, as plain data, and a check of
tables against that which does not import pandera.

Why it exists: a pull checks every table it returns against its model. pandera takes 0.4-0.7 s to
import (with pandas, pydantic and typeguard: most of a first fetch, ``benchmarks/bench_import.py``)
and a few milliseconds a table to validate (``benchmarks/bench_parse.py``). Almost every table
passes: :func:`holds` says so in one polars call for all of them, and pandera is imported only for
a table it does not pass, to give the verdict and its column (``_Bundle.checked``). So it may be
stricter than pandera, never more lenient: what it passes, pandera passes.

The models stay the one source of the rules: :data:`CONTRACTS` is generated from them
(:func:`of_model`; regenerate with ``python -m cogapp -r capframe/_contract.py``), and
``tests/test_tables.py`` checks that it is what the models say. A model using something this module
cannot express makes :func:`of_model` raise, so the test says what to add here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    import pandera.polars as pa

__all__ = ["CONTRACTS", "FRAME_CHECKS", "Column", "Contract", "holds", "of_model"]


@dataclass(frozen=True)
class Column:
    """A column's rules: its exact dtype, whether it may hold nulls, and the checks of its values
    (nulls left out, as pandera leaves them out of a nullable column's checks)."""

    dtype: pl.DataType
    nullable: bool = False
    unique: bool = False
    greater_than: int | None = None
    at_least: int | None = None
    isin: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Contract:
    """A table's rules: exactly these columns (any order: the models are strict, not ordered) and
    the model's checks of whole rows, by name (:data:`FRAME_CHECKS`)."""

    columns: dict[str, Column]
    frame_checks: tuple[str, ...] = field(default=())

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({name: column.dtype for name, column in self.columns.items()})


def one_row_per_parent_and_child(frame: pl.LazyFrame) -> pl.LazyFrame:
    """``children``: a child once per parent (the same child of two parents is two rows)."""
    return frame.select(~pl.struct("parent_type", "parent_value", "customer_id").is_duplicated())


# The models' checks of whole rows, by name: schemas.py's checks call these, so the code is written once.
FRAME_CHECKS: dict[str, Callable[[pl.LazyFrame], pl.LazyFrame]] = {
    "one_row_per_parent_and_child": one_row_per_parent_and_child
}


def holds(
    tables: Mapping[str, pl.DataFrame | pl.LazyFrame], contracts: Mapping[str, Contract], *, streaming: bool = False
) -> bool:
    """Whether every table certainly passes its contract (one polars call for all of them); False
    may also mean a rule this check does not know: then pandera decides. ``streaming``: LazyFrames
    over files larger than memory are read in batches, never whole."""
    plans: list[pl.LazyFrame] = []
    for name, frame in tables.items():
        contract = contracts[name]
        schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
        if dict(schema) != dict(contract.schema):
            return False
        checks = [check for column, rules in contract.columns.items() for check in _checks(column, rules)]
        if checks:
            plans.append(frame.lazy().select(pl.all_horizontal(checks)))
        for check in contract.frame_checks:
            if check not in FRAME_CHECKS:
                return False
            plans.append(FRAME_CHECKS[check](frame.lazy()).select(pl.all_horizontal(pl.all().all())))
    return all(plan.item() is True for plan in pl.collect_all(plans, engine="streaming" if streaming else "auto"))


def _checks(name: str, rules: Column) -> list[pl.Expr]:
    column = pl.col(name)
    checks: list[pl.Expr] = []
    if not rules.nullable:
        checks.append(column.null_count() == 0)
        if rules.dtype.is_float():  # pandera may take NaN as missing: let it decide
            checks.append(~column.is_nan().any())
    if rules.unique:
        checks.append(~column.is_duplicated().any())
    if rules.greater_than is not None:
        checks.append((column > rules.greater_than).all())
    if rules.at_least is not None:
        checks.append((column >= rules.at_least).all())
    if rules.isin is not None:
        checks.append(column.is_in(pl.Series(rules.isin, dtype=rules.dtype).implode()).all())
    return checks


# Each pandera check this module can express: its name -> the Column field it sets.
_COLUMN_CHECKS = {"greater_than": "greater_than", "greater_than_or_equal_to": "at_least", "isin": "isin"}


def of_model(model: type[pa.DataFrameModel]) -> Contract:
    """A model's contract (imports pandera); raises ValueError for a rule a contract cannot state."""
    schema = model.to_schema()
    if not schema.strict or schema.ordered or schema.coerce or schema.unique or schema.parsers:
        raise ValueError(f"{model.__name__}: only strict, unordered, uncoerced models without parsers are known")
    columns: dict[str, Column] = {}
    for name, column in schema.columns.items():
        if column.coerce or column.regex or not column.required or column.parsers:
            raise ValueError(f"{model.__name__}.{name}: coerced, regex, optional or parsed columns are not known")
        checks: dict[str, Any] = {}
        for check in column.checks:
            if check.name not in _COLUMN_CHECKS or len(check.statistics) != 1:
                raise ValueError(f"{model.__name__}.{name}: the check {check.name} is not known")
            (value,) = check.statistics.values()
            checks[_COLUMN_CHECKS[check.name]] = tuple(value) if check.name == "isin" else value
        dtype = column.dtype.type
        columns[name] = Column(dtype() if isinstance(dtype, type) else dtype, column.nullable, column.unique, **checks)
    return Contract(columns, tuple(check.name for check in schema.checks))


def generated() -> str:
    """CONTRACTS' source, from the models (for cog)."""
    from capframe import schemas

    lines = ["CONTRACTS: dict[str, Contract] = {"]
    for model in schemas._TABLES.values():
        contract = of_model(model)
        lines.append(f"    {_text(model.__name__)}: Contract(")
        lines.append("        {")
        for column, rules in contract.columns.items():
            lines.append(f"            {_text(column)}: {_column_source(rules)},")
        lines.append("        },")
        if contract.frame_checks:
            lines.append(f"        {_texts(contract.frame_checks)},")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _column_source(rules: Column) -> str:
    arguments = [_dtype_source(rules.dtype)]
    defaults = Column(rules.dtype)
    for name in ("nullable", "unique", "greater_than", "at_least", "isin"):
        value = getattr(rules, name)
        if value != getattr(defaults, name):
            source = _texts(value) if isinstance(value, tuple) else repr(value)
            arguments.append(f"{name}={source}")
    return f"Column({', '.join(arguments)})"


def _dtype_source(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        zone = "None" if dtype.time_zone is None else _text(dtype.time_zone)
        return f"pl.Datetime({_text(dtype.time_unit)}, {zone})"
    if repr(dtype) != type(dtype).__name__:  # a dtype with parameters: lists, structs, decimals, ...
        raise ValueError(f"a column of {dtype} is not known to capframe._contract")
    return f"pl.{type(dtype).__name__}()"


def _text(value: str) -> str:
    return json.dumps(value)


def _texts(values: tuple[str, ...]) -> str:
    return f"({', '.join(map(_text, values))}{',' if len(values) == 1 else ''})"


# [[[cog import cog; from capframe._contract import generated; cog.out(generated()) ]]]
CONTRACTS: dict[str, Contract] = {
    "Customers": Contract(
        {
            "customer_id": Column(pl.Int64(), unique=True, greater_than=0),
            "success": Column(pl.Boolean()),
            "error_code": Column(pl.Int64(), nullable=True),
            "error_message": Column(pl.String(), nullable=True),
            "first_name": Column(pl.String(), nullable=True),
            "last_name": Column(pl.String(), nullable=True),
            "source": Column(pl.String(), nullable=True),
            "account_id": Column(pl.String(), nullable=True),
            "mobile": Column(pl.String(), nullable=True),
            "email": Column(pl.String(), nullable=True),
            "external_id": Column(pl.String(), nullable=True),
            "loyalty_type": Column(pl.String(), nullable=True),
            "lifetime_purchases": Column(pl.Float64(), nullable=True),
            "score": Column(pl.Int64(), nullable=True),
            "associated_with": Column(pl.String(), nullable=True),
            "auto_update_time": Column(pl.Datetime("us", "UTC"), nullable=True),
            "profile_count": Column(pl.Int64(), at_least=0),
            "loyalty_attribution": Column(pl.String(), nullable=True),
        },
    ),
    "Children": Contract(
        {
            "customer_id": Column(pl.Int64(), greater_than=0),
            "parent_type": Column(pl.String()),
            "parent_value": Column(pl.String()),
            "parent_customer_id": Column(pl.Int64(), nullable=True, greater_than=0),
            "first_name": Column(pl.String(), nullable=True),
            "last_name": Column(pl.String(), nullable=True),
            "source": Column(pl.String(), nullable=True),
            "account_id": Column(pl.String(), nullable=True),
            "mobile": Column(pl.String(), nullable=True),
            "email": Column(pl.String(), nullable=True),
            "external_id": Column(pl.String(), nullable=True),
            "role_code": Column(pl.String(), nullable=True),
            "created_date": Column(pl.Datetime("us", "UTC"), nullable=True),
            "no_of_children": Column(pl.Int64(), nullable=True, at_least=0),
            "default_child": Column(pl.Boolean(), nullable=True),
            "auto_update_time": Column(pl.Datetime("us", "UTC"), nullable=True),
            "parent_customer": Column(pl.String(), nullable=True),
        },
        ("one_row_per_parent_and_child",),
    ),
    "Parents": Contract(
        {
            "parent_number": Column(pl.Int64(), unique=True, at_least=1),
            "given_as": Column(pl.String()),
            "given_value": Column(pl.String(), nullable=True),
            "customer_id": Column(pl.Int64(), nullable=True, greater_than=0),
            "found": Column(pl.Boolean(), nullable=True),
            "no_of_children": Column(pl.Int64(), nullable=True, at_least=0),
            "error_code": Column(pl.Int64(), nullable=True),
            "error_message": Column(pl.String(), nullable=True),
        },
    ),
    "Lookups": Contract(
        {
            "value_number": Column(pl.Int64(), unique=True, at_least=1),
            "identifier_type": Column(pl.String()),
            "identifier_value": Column(pl.String()),
            "customer_id": Column(pl.Int64(), nullable=True, greater_than=0),
            "found": Column(pl.Boolean(), nullable=True),
            "error_code": Column(pl.Int64(), nullable=True),
            "error_message": Column(pl.String(), nullable=True),
        },
    ),
    "Profiles": Contract(
        {
            "customer_id": Column(pl.Int64(), greater_than=0),
            "profile_index": Column(pl.Int64(), at_least=0),
            "user_id": Column(pl.Int64(), nullable=True),
            "source": Column(pl.String(), nullable=True),
            "account_id": Column(pl.String(), nullable=True),
            "first_name": Column(pl.String(), nullable=True),
            "last_name": Column(pl.String(), nullable=True),
            "auto_update_time": Column(pl.Datetime("us", "UTC"), nullable=True),
            "conflicting_profiles": Column(pl.String(), nullable=True),
            "attribution": Column(pl.String(), nullable=True),
        },
    ),
    "Identifiers": Contract(
        {
            "customer_id": Column(pl.Int64(), greater_than=0),
            "profile_index": Column(pl.Int64(), at_least=0),
            "type": Column(pl.String(), nullable=True),
            "value": Column(pl.String(), nullable=True),
            "raw_type": Column(pl.String(), nullable=True),
            "series_id": Column(pl.Int64(), nullable=True),
            "status_label": Column(pl.String(), nullable=True),
            "in_identifiers": Column(pl.Boolean()),
        },
    ),
    "CommChannels": Contract(
        {
            "customer_id": Column(pl.Int64(), greater_than=0),
            "profile_index": Column(pl.Int64(), at_least=0),
            "type": Column(pl.String(), nullable=True),
            "value": Column(pl.String(), nullable=True),
            "primary": Column(pl.Boolean(), nullable=True),
            "verified": Column(pl.Boolean(), nullable=True),
            "residence": Column(pl.Boolean(), nullable=True),
            "office": Column(pl.Boolean(), nullable=True),
            "attributes": Column(pl.String(), nullable=True),
        },
    ),
    "Fields": Contract(
        {
            "customer_id": Column(pl.Int64(), nullable=True, greater_than=0),
            "profile_index": Column(pl.Int64(), nullable=True, at_least=0),
            "scope": Column(pl.String(), isin=("custom", "all", "extended", "unrecognised")),
            "name": Column(pl.String()),
            "value": Column(pl.String()),
        },
    ),
    "Segments": Contract(
        {
            "customer_id": Column(pl.Int64(), greater_than=0),
            "segment": Column(pl.String()),
            "value": Column(pl.String()),
        },
    ),
    "Cards": Contract(
        {
            "customer_id": Column(pl.Int64(), greater_than=0),
            "card_number": Column(pl.String(), nullable=True),
            "card_external_id": Column(pl.String(), nullable=True),
            "card_id": Column(pl.Int64(), nullable=True),
            "series_id": Column(pl.Int64(), nullable=True),
            "series_code": Column(pl.String(), nullable=True),
            "series_name": Column(pl.String(), nullable=True),
            "card_type": Column(pl.String(), nullable=True),
            "issued_date": Column(pl.String(), nullable=True),
            "created_date": Column(pl.String(), nullable=True),
            "expiry_days": Column(pl.Int64(), nullable=True),
            "transaction_not_allowed": Column(pl.Boolean(), nullable=True),
            "status_info": Column(pl.String(), nullable=True),
            "custom_fields": Column(pl.String(), nullable=True),
            "extended_fields": Column(pl.String(), nullable=True),
            "id": Column(pl.Int64(), nullable=True),
            "card_customer_id": Column(pl.Int64(), nullable=True),
            "max_active_cards": Column(pl.Int64(), nullable=True),
            "org_id": Column(pl.Int64(), nullable=True),
            "entity_id": Column(pl.Int64(), nullable=True),
        },
    ),
    "Errors": Contract(
        {
            "customer_id": Column(pl.Int64(), nullable=True, greater_than=0),
            "level": Column(pl.String(), isin=("error", "warning")),
            "origin": Column(pl.String(), isin=("api", "capframe")),
            "code": Column(pl.Int64(), nullable=True),
            "message": Column(pl.String(), nullable=True),
        },
    ),
}
# [[[end]]]
