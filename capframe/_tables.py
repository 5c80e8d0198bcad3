"""The bundles of tidy tables a pull returns.

pandera (and the pandas it imports) is loaded only when a table fails :mod:`capframe._contract`'s
check, or :meth:`_Bundle.validate` is called, not on ``import capframe`` nor for a pull whose tables
pass: it takes several times longer to import than polars.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import polars as pl

from capframe import _contract, _export
from capframe.errors import CapframeError, SnapshotError

if TYPE_CHECKING:
    import pandas as pd
    import pandera.polars as pa

__all__ = ["ChildrenTables", "CustomerLookupTables", "CustomerTables", "Provenance", "RunCount"]


@dataclass(frozen=True)
class RunCount:
    """One pull's units in a run: how many it read from the snapshot, how many it fetched."""

    units: str  # the endpoint's word for them: "customer ids", "parents", "identifier values"
    read: int
    fetched: int


def failed_checks(what: str, *, read: bool) -> CapframeError:
    """A table that fails its model's checks (``what``: where), as an error saying what to do, never
    pandera's (whose failure cases would show the data itself); ``read``: some of it came from a snapshot."""
    if read:
        return SnapshotError(
            f"a table read from the snapshot fails capframe's checks of it ({what}): the snapshot holds data "
            "capframe did not write (edited, or damaged with its checksums recomputed). Fetch every unit "
            "again with max_age=0 and credentials, or delete the folder."
        )
    return CapframeError(
        f"a table fails capframe's checks of it ({what}): the API sent what capframe does not expect. "
        "Please report it (the column and the API's host, no data)."
    )


@dataclass(frozen=True)
class Provenance:
    """Where a bundle's data came from: what a reproducible report states.

    ``fetched_at`` and ``last_fetched_at`` are the earliest and latest times the units a result uses
    left the API: for a pull served from a snapshot (``cache_dir``), the times recorded there, so
    every rerun states the same. ``counts`` say, for each pull of the run (the lookups of identifiers,
    then the customers found: two), how many units it read from the snapshot and how many it asked
    the API for; ``sent`` how many HTTP requests the run sent (every page, retry and token request: 0
    for a rerun the snapshot served): they describe the run, not the data, so :meth:`as_dict` and
    ``==`` leave them out, and :meth:`run` states them.
    """

    fetched_at: datetime
    host: str
    source: str
    capframe_version: str
    asked: int  # ids (parents, identifier values) asked, after removing duplicates
    failed: int  # of those, how many failed
    last_fetched_at: datetime | None = None
    counts: tuple[RunCount, ...] = field(default=(), compare=False)
    sent: int = field(default=0, compare=False)  # HTTP requests this run sent: pages, retries, tokens

    @property
    def read(self) -> int:
        """Units this run read from the snapshot, every pull's."""
        return sum(c.read for c in self.counts)

    @property
    def fetched(self) -> int:
        """Units this run asked the API for and got an answer for, every pull's."""
        return sum(c.fetched for c in self.counts)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in _OF_THE_RUN}
        last = self.last_fetched_at or self.fetched_at
        return {**data, "fetched_at": self.fetched_at.isoformat(), "last_fetched_at": last.isoformat()}

    def __str__(self) -> str:
        """What the data is, the same on every rerun (a bundle's repr shows it): not what this run did."""
        last = self.last_fetched_at or self.fetched_at
        when = f"{self.fetched_at:%Y-%m-%d %H:%M:%S}" + (
            f" to {last:%Y-%m-%d %H:%M:%S}" if last != self.fetched_at else ""
        )
        return f"{self.source} from {self.host}, fetched {when} UTC"

    def run(self) -> str:
        """What this run did: ``"30 customer ids from snapshot, 0 fetched, 0 requests sent"``."""
        return describe_run(self.counts, self.sent)


_OF_THE_RUN = ("counts", "sent")


def describe_run(counts: Iterable[RunCount], sent: int) -> str:
    """A run's own doings, as its repr, the CLI and the log say them (snapshot units only when any),
    each pull's units apart: "3 identifier values and 2 customer ids from snapshot, 0 fetched, ..."."""
    counts = list(counts)
    read = " and ".join(_counted(c.read, c.units) for c in counts)
    fetched = " and ".join(_counted(c.fetched, c.units) for c in counts)
    if any(c.read for c in counts):
        total = sum(c.fetched for c in counts)
        done = f"{read} from snapshot, {fetched if len(counts) > 1 and total else f'{total:,}'} fetched"
    else:
        done = f"{fetched} fetched"
    return f"{done}, {_counted(sent, 'requests')} sent"


def _counted(count: int, plural: str) -> str:
    return f"{count:,} {plural.removesuffix('s') if count == 1 else plural}"


@dataclass(frozen=True, kw_only=True)
class _Bundle:
    profiles: pl.DataFrame
    identifiers: pl.DataFrame
    comm_channels: pl.DataFrame
    fields: pl.DataFrame
    segments: pl.DataFrame
    cards: pl.DataFrame
    errors: pl.DataFrame
    provenance: Provenance | None = None

    _MAIN: ClassVar[str]
    NAMES: ClassVar[tuple[str, ...]]  # the tables, main first
    MADE: ClassVar[tuple[str, ...]] = ()  # tables made from the others after a pull: never stored
    MODELS: ClassVar[Any]  # table name -> pandera model (a _Models)

    @classmethod
    def of(cls, tables: Mapping[str, pl.DataFrame], provenance: Provenance | None = None) -> Self:
        """A bundle of these tables (one per name in MODELS)."""
        return cls(**tables, provenance=provenance)

    @classmethod
    def empty(cls) -> Self:
        """Every table with no rows and its full schema."""
        return cls.of({name: pl.DataFrame(schema=contract.schema) for name, contract in cls.contracts().items()})

    @classmethod
    def contracts(cls) -> dict[str, _contract.Contract]:
        """Table -> its model's contract, found without importing the models (as ``MODELS`` would)."""
        models: _Models = next(vars(owner)["MODELS"] for owner in cls.__mro__ if "MODELS" in vars(owner))
        return {table: _contract.CONTRACTS[model] for table, model in models.names.items()}

    def tables(self) -> dict[str, pl.DataFrame]:
        """Table name -> DataFrame, main table first."""
        return {name: getattr(self, name) for name in self.NAMES}

    @classmethod
    def stored(cls) -> tuple[str, ...]:
        """The tables a snapshot stores (main first): every one but those made after a pull."""
        return tuple(name for name in cls.NAMES if name not in cls.MADE)

    def write_parquet(self, folder: str | Path) -> dict[str, Path]:
        """Every table to ``folder/<table>.parquet`` (the folder is made if missing); table -> file."""
        return _export.write_parquet(self.tables(), folder)

    def write_csv(self, folder: str | Path, *, spreadsheet_safe: bool = True) -> dict[str, Path]:
        """Every table to ``folder/<table>.csv``; timestamps as ``2021-12-03 06:01:44`` (UTC), which spreadsheets read.

        A text a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab,
        a carriage return or a line feed) is written with a ``'`` in front, so it shows as text;
        ``spreadsheet_safe=False`` writes every text as it is, for programs that read the files.
        """
        return _export.write_csv(self.tables(), folder, spreadsheet_safe=spreadsheet_safe)

    def write_excel(self, path: str | Path) -> Path:
        """Every table as a sheet of one ``.xlsx`` workbook (needs ``capframe[excel]``), then a sheet
        describing the columns and one with the provenance.

        Identifiers and mobiles are text, so leading zeros stay; numeric ids and codes are plain
        digits; timestamps are UTC without a zone, a card's dates are dates; every text is a text
        cell, never a formula.
        """
        provenance = self.provenance.as_dict() if self.provenance is not None else None
        return _export.write_excel(self.tables(), path, provenance)

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """Table name -> pandas DataFrame with nullable dtypes: an integer column with nulls stays
        ``Int64``, not float64 (needs ``capframe[pandas]``)."""
        return _export.to_pandas(self.tables())

    def validate(self, names: Iterable[str] | None = None) -> None:
        """Check every table (or those named) against its pandera model (capframe does this before returning)."""
        tables = self.tables()
        for name in tables if names is None else names:
            self.MODELS[name].validate(tables[name])

    def checked(self, names: Iterable[str] | None = None) -> Self:
        """:meth:`validate`, for a pull: a table that fails its model is a capframe error saying where its
        data came from and what to do, never pandera's (whose failure cases would show the data itself).

        Tables that pass :func:`capframe._contract.holds` pass their models: pandera, and its import,
        is for the others."""
        tables = self.tables()
        names = list(tables if names is None else names)
        if _contract.holds({name: tables[name] for name in names}, self.contracts()):
            return self
        from pandera.errors import SchemaError, SchemaErrors

        try:
            self.validate(names)
        except (SchemaError, SchemaErrors) as exc:
            column = getattr(exc, "column_name", None)
            what = f"column {column!r} " if isinstance(column, str) else ""
            read = self.provenance is not None and bool(self.provenance.read)
            raise failed_checks(f"{what}{type(exc).__name__}", read=read) from None
        return self

    def returned(self) -> Self:
        """The bundle with only the customers the API returned: what shares and counts are computed over.

        The API sends data for some ids it reports as failed: a customer "not in this source" (8065)
        comes with its ``segments``, ``fields``, ``cards`` and loyalty summary, a PII-deleted one
        (8109) with its loyalty summary. Every table keeps it (nothing is dropped silently); this
        view keeps, in every table, the rows of returned customers only (``customers`` its
        ``success`` rows), rows about no customer (a response's warnings) and, in ``errors``,
        warnings only: the errors are those of the ids left out.
        """
        kept = self._returned_ids()
        about_returned = pl.col("customer_id").is_null() | pl.col("customer_id").is_in(kept.implode())
        tables = {name: frame.filter(about_returned) for name, frame in self.tables().items()}
        tables["errors"] = tables["errors"].filter(pl.col("level") == "warning")
        return self.of(tables, self.provenance)

    def _returned_ids(self) -> pl.Series:
        main: pl.DataFrame = getattr(self, self._MAIN)
        return (main.filter("success") if "success" in main.columns else main)["customer_id"].unique()

    @property
    def failed_ids(self) -> list[int]:
        """Customer ids that failed: in a ``CustomerTables``, the ids the API did not return (``success``
        false); in a ``ChildrenTables``, the parents given by customer id whose children could not be
        fetched. A parent given by an identifier has no customer id: ``ChildrenTables.failed_parents``
        lists every failed parent, however it was given."""
        main = getattr(self, self._MAIN)
        if "success" not in main.columns:
            failed = self.errors.filter(pl.col("level") == "error")["customer_id"].drop_nulls()
            return [int(i) for i in failed.unique(maintain_order=True)]
        return [int(i) for i in main.filter(~pl.col("success"))["customer_id"]]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}={frame.height}x{frame.width}" for name, frame in self.tables().items())
        return f"{type(self).__name__}({shapes}; {self._failures()}{self._origin()})"

    def _failures(self) -> str:
        return f"failed ids: {_ids_text(self.failed_ids)}"

    def _origin(self) -> str:
        p = self.provenance
        return f"; {p}; this run: {p.run()}" if p else ""

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{name}</code></td><td>{frame.height:,}</td><td>{frame.width}</td></tr>"
            for name, frame in self.tables().items()
        )
        failed = html.escape(self._failures())
        return (
            f"<div><strong>{type(self).__name__}</strong>"
            "<table><thead><tr><th>table</th><th>rows</th><th>columns</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><p>{failed}{html.escape(self._origin())}</p></div>"
        )


def _ids_text(ids: list[int] | list[str], shown: int = 5) -> str:
    if not ids:
        return "none"
    text = ", ".join(map(str, ids[:shown]))
    return f"{len(ids)} ({text}{', ...' if len(ids) > shown else ''})"


class _Models:
    """Table name -> its pandera model, in table order; the models are imported on first use."""

    def __init__(self, **model_names: str) -> None:
        self.names = model_names  # table -> the model's name in capframe.schemas
        self._models: dict[str, type[pa.DataFrameModel]] | None = None

    def __get__(self, instance: object, owner: type) -> dict[str, type[pa.DataFrameModel]]:
        if self._models is None:
            schemas = import_module("capframe.schemas")
            self._models = {table: getattr(schemas, model) for table, model in self.names.items()}
        return self._models


_SHARED = {
    "profiles": "Profiles",
    "identifiers": "Identifiers",
    "comm_channels": "CommChannels",
    "fields": "Fields",
    "segments": "Segments",
    "cards": "Cards",
    "errors": "Errors",
}


@dataclass(frozen=True, kw_only=True, repr=False)
class CustomerTables(_Bundle):
    """What ``fetch_customer_tables`` returns: ``customers`` and its child tables, keyed by ``customer_id``."""

    customers: pl.DataFrame

    _MAIN: ClassVar[str] = "customers"
    NAMES: ClassVar[tuple[str, ...]] = ("customers", *_SHARED)


@dataclass(frozen=True, kw_only=True, repr=False)
class ChildrenTables(_Bundle):
    """What ``fetch_children_tables`` returns: ``children``, ``parents`` (one row per parent asked,
    in the order asked, found or not) and the children's child tables."""

    children: pl.DataFrame
    parents: pl.DataFrame

    _MAIN: ClassVar[str] = "children"
    NAMES: ClassVar[tuple[str, ...]] = ("children", "parents", *_SHARED)
    MADE: ClassVar[tuple[str, ...]] = ("parents",)

    @property
    def failed_parents(self) -> pl.DataFrame:
        """The rows of ``parents`` whose children could not be listed: the API does not know the
        parent (``found`` false), or its fetch failed (``found`` null); ``error_message`` says why."""
        return self.parents.filter(pl.col("found").fill_null(False).not_())

    def returned(self) -> Self:
        """As for ``CustomerTables.returned``; ``parents`` keeps every parent asked."""
        return replace(super().returned(), parents=self.parents)

    def _failures(self) -> str:
        """Parents, however they were given (an identifier has no customer id), as the errors table names them."""
        labels = self.errors.filter(pl.col("level") == "error")["message"].str.extract(r"^(parent #\d+ \([^)]*\))")
        return f"failed parents: {_ids_text(labels.drop_nulls().to_list())}"


@dataclass(frozen=True, kw_only=True, repr=False)
class CustomerLookupTables(CustomerTables):
    """What ``fetch_customer_tables`` returns for identifiers (mobiles, emails, ...): the tables of
    :class:`CustomerTables` for the customers found, and ``lookups``, one row per value asked, in the
    order asked, with its customer id or why it has none (``found``, ``error_code``, ``error_message``)."""

    lookups: pl.DataFrame

    NAMES: ClassVar[tuple[str, ...]] = ("customers", "lookups", *_SHARED)

    @property
    def failed_lookups(self) -> pl.DataFrame:
        """The rows of ``lookups`` without a customer id: not found (``found`` false) or failed (null)."""
        return self.lookups.filter(pl.col("found").fill_null(False).not_())

    def returned(self) -> Self:
        """As for ``CustomerTables.returned``; ``lookups`` keeps every value asked."""
        return replace(super().returned(), lookups=self.lookups)

    def _failures(self) -> str:
        """Values by number and type, never by value (personal data)."""
        failed = self.failed_lookups.select(pl.format("value #{} ({})", "value_number", "identifier_type")).to_series()
        return f"{super()._failures()}; values without a customer: {_ids_text(failed.to_list())}"


# Set after the classes are made: @dataclass reads class attributes, which would import the models.
CustomerTables.MODELS = _Models(customers="Customers", **_SHARED)
ChildrenTables.MODELS = _Models(children="Children", parents="Parents", **_SHARED)
CustomerLookupTables.MODELS = _Models(customers="Customers", lookups="Lookups", **_SHARED)
