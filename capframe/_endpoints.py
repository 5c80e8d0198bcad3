"""Endpoint specs: what is specific to an endpoint, declared once, in that endpoint's own module.

Each endpoint module (:mod:`capframe._customers`, :mod:`capframe._children`, :mod:`capframe._lookup`)
makes one :class:`Spec` and registers it here when it is imported (``capframe/__init__`` imports
them all, so the registry is full before any use). The engine, the snapshot, the request layer's
redaction, ``capframe.testing`` and the CLI read :data:`SPECS`; nothing else lists endpoints.

This module imports nothing of capframe: the request layer reads it, and every endpoint module
writes into it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from capframe._contract import Column
    from capframe._tables import _Bundle

__all__ = ["SPECS", "Spec", "Words", "model_rules", "model_schemas", "personal_parameters", "register"]


@dataclass(frozen=True)
class Words:
    """How messages name an endpoint's units and what happens to them."""

    units: str  # "customer ids", "parents", "identifier values": counted in messages and in "this run"
    done: str  # "fetched", "looked up": "3 of 10 <units> could not be <done>"
    failed: str  # a failed unit's reason starts so: "the request failed: HTTP 503 ..."
    failed_rows: str  # where .partial of a failed pull shows its failed units


@dataclass(frozen=True, eq=False)
class Spec:
    """One endpoint, declared: its request, its unit, its tables, its words.

    ``eq=False``: a spec is itself (hashed by identity: the snapshot caches per spec)."""

    name: str  # the registry's key and the snapshot's folder: "customers", "children", "lookups"
    method: str
    path: str
    unit_dtype: pl.DataType  # a unit's key: a customer id (Int64) or a JSON text (String)
    unit_column: str | None  # the table column that holds a row's unit; None: one unit per part
    tables: tuple[str, ...]  # the tables a pull stores, main first
    columns: tuple[str, ...]  # what every stored row carries in front of its table's columns
    rows_per_unit: int  # most rows one unit may have in one table: more is a bomb, not an answer
    table_schemas: Callable[[], Mapping[str, Mapping[str, pl.DataType]]]  # table -> its stored columns
    words: Words
    # Units a request takes: None, as many as the client's batch_size.
    units_per_request: int | None = 1
    ask_again: bool = False  # units an answer left out are asked once more (a batch may drop some)
    # Query parameters that hold personal data, each with the parameter that names its type.
    personal: Mapping[str, str] = field(default_factory=dict)
    # How answers are read into the tables, as far as no stored schema shows it (the page schema, the
    # wire's reading rules, the models' checks): part of the fingerprint.
    reading: Callable[[], object] = lambda: None

    @property
    def main(self) -> str:
        return self.tables[0]

    @property
    def write_order(self) -> tuple[str, ...]:
        """The tables as a pull writes them: the main table last, so a part with its main file is whole."""
        return (*self.tables[1:], self.main)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short sha256 of the stored tables' schemas (names, columns, dtypes), the columns in front,
        the unit's dtype and ``reading``: a part written under another one was written by a capframe
        version whose tables differ, and is not read. Derived, never bumped by hand: adding a column
        to a model, or changing a check, changes it."""
        described = {
            "unit": str(self.unit_dtype),
            "unit_column": self.unit_column,
            "columns": list(self.columns),
            "tables": {t: [[c, str(d)] for c, d in self.table_schemas()[t].items()] for t in self.tables},
            "reading": str(self.reading()),
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


SPECS: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    """Called by an endpoint module for its own spec: from then on the engine, the snapshot (which
    lists, checks and counts it), the redaction and ``capframe.testing`` know it."""
    SPECS[spec.name] = spec
    return spec


def personal_parameters() -> dict[str, str]:
    """Every registered endpoint's query parameters that hold personal data -> the parameter naming its type."""
    return {name: kind for spec in SPECS.values() for name, kind in spec.personal.items()}


def model_schemas(bundle: type[_Bundle], added_on_read: tuple[str, ...] = ()) -> dict[str, dict[str, pl.DataType]]:
    """Table -> column -> dtype, from a bundle's models, but for the columns an endpoint adds to its
    tables after reading them back."""
    return {
        table: {name: dtype for name, dtype in frame.schema.items() if name not in added_on_read}
        for table, frame in bundle.empty().tables().items()
        if table in bundle.stored()
    }


def model_rules(bundle: type[_Bundle]) -> list[Any]:
    """Each stored table's rules from its model (nullable, unique, checks): a check changed since a part
    was written changes the fingerprint too, so the part is fetched again, not refused by validation.

    Stated as pandera states them (``repr`` of each check), read from the models' contracts
    (:mod:`capframe._contract`), so that a fingerprint costs no pandera import and stays what it was
    when pandera's schemas gave it (``tests/test_contract.py`` compares the two)."""
    contracts = bundle.contracts()
    rules: list[Any] = []
    for table in bundle.stored():
        contract = contracts[table]
        columns = [[name, c.nullable, c.unique, _checks_stated(c)] for name, c in contract.columns.items()]
        rules.append([table, columns, [f"<Check {name}>" for name in contract.frame_checks]])
    return rules


def _checks_stated(column: Column) -> list[str]:
    stated = []
    if column.greater_than is not None:
        stated.append(f"<Check greater_than: greater_than({column.greater_than})>")
    if column.at_least is not None:
        stated.append(f"<Check greater_than_or_equal_to: greater_than_or_equal_to({column.at_least})>")
    if column.isin is not None:
        stated.append(f"<Check isin: isin({list(column.isin)!r})>")
    return stated
