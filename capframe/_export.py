"""A bundle out of Python: a folder of parquet or CSV files, an Excel workbook, pandas frames.

Every writer is polars' own; the optional dependencies (xlsxwriter for Excel, pyarrow and pandas
for pandas) are imported only here, when asked for, with an error that names the extra to install.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import polars as pl
import polars.selectors as cs

from capframe._inert import spreadsheet_safe as _spreadsheet_safe
from capframe.errors import CapframeWarning, InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd
    from polars._typing import ColumnFormatDict

__all__ = ["CSV_DATETIME_FORMAT", "csv_ready", "to_pandas", "write_csv", "write_excel", "write_parquet", "write_table"]

# Spreadsheets read "2021-12-03 06:01:44" as a date and time; ISO's "T" and "+0000" they leave as text.
# Every timestamp capframe returns is UTC, so the zone is the same for all and is left out.
CSV_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _module(name: str, extra: str, feature: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(
            f"{feature} needs {name}, which is not installed: pip install 'capframe[{extra}]'"
        ) from None


@contextmanager
def _writing(target: Path) -> Iterator[None]:
    """Turn the OS's (or xlsxwriter's) refusal to write ``target`` into an error that says what to do."""
    try:
        yield
    except Exception as exc:
        # xlsxwriter wraps the OSError it got (FileCreateError(OSError)); polars raises OSErrors.
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else exc
        if not isinstance(cause, OSError):
            raise
        reason = cause.strerror or str(cause).split(" (os error")[0]
        raise InvalidArgumentError(
            f"cannot write {target}: {reason}: choose a path in a folder you can write to"
            " (a missing folder is made; an existing file is replaced)"
        ) from None


def _folder(target: str | Path) -> Path:
    folder = Path(target)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(f"{folder} is a file: write the tables to a folder (one file per table)")
    with _writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _parent_made(target: str | Path) -> Path:
    """``target``, a file, with its folder made if missing (as the writers of folders make theirs)."""
    path = Path(target)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_parquet(tables: dict[str, pl.DataFrame], target: str | Path) -> dict[str, Path]:
    """One ``<table>.parquet`` per table in the folder ``target`` (made if missing); table -> file."""
    folder = _folder(target)
    written = {}
    for name, frame in tables.items():
        with _writing(path := folder / f"{name}.parquet"):
            frame.write_parquet(path)
        written[name] = path
    return written


def csv_ready(frame: pl.DataFrame, spreadsheet_safe: bool) -> pl.DataFrame:
    """``frame`` as capframe writes it to CSV: with ``spreadsheet_safe``, a text a spreadsheet would
    run as a formula starts with ``'`` (:func:`capframe._inert.spreadsheet_safe`)."""
    return _spreadsheet_safe(frame) if spreadsheet_safe else frame


def _write_csv_file(frame: pl.DataFrame, path: Path, spreadsheet_safe: bool) -> None:
    # The byte-order mark tells Excel the file is UTF-8 (else it reads "José" as "JosÃ©");
    # polars, pandas and DuckDB skip it.
    csv_ready(frame, spreadsheet_safe).write_csv(path, datetime_format=CSV_DATETIME_FORMAT, include_bom=True)


def write_csv(tables: dict[str, pl.DataFrame], target: str | Path, *, spreadsheet_safe: bool = True) -> dict[str, Path]:
    """One ``<table>.csv`` per table in the folder ``target``: UTF-8 with a byte-order mark (which
    Excel needs to read names in any script), timestamps as ``2021-12-03 06:01:44`` (UTC).

    A spreadsheet runs a cell starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or
    a line feed as a formula: with ``spreadsheet_safe`` (the default) such a text is written with a
    ``'`` in front, as OWASP recommends, so it shows as text. Numbers are never touched.
    ``spreadsheet_safe=False`` writes every text as it is, for programs that read the files.
    """
    folder = _folder(target)
    written = {}
    for name, frame in tables.items():
        with _writing(path := folder / f"{name}.csv"):
            _write_csv_file(frame, path, spreadsheet_safe)
        written[name] = path
    return written


# Excel keeps 15 significant digits: a longer integer (customer ids go up to 2**63) would change
# silently, so an integer column holding one is written as text.
_EXCEL_EXACT = 10**15


_EXCEL_CELL_CHARS = 32_767  # xlsxwriter cuts a longer text to this, without a word


def _warn_of_cut_text(name: str, frame: pl.DataFrame) -> None:
    longer = frame.select((cs.string().str.len_chars() > _EXCEL_CELL_CHARS).sum())
    counts = longer.row(0, named=True) if longer.width else {}
    for column, cut in counts.items():
        if cut:
            warnings.warn(
                f"{name}.{column}: {cut:,} value(s) longer than an Excel cell's {_EXCEL_CELL_CHARS:,} characters are"
                " cut in the workbook; write_parquet or write_csv keep them whole",
                CapframeWarning,
                stacklevel=4,  # the caller of CustomerTables.write_excel
            )


def _excel_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps without their zone (all UTC; Excel has none), too-long integer columns as text,
    dates sent as text (a card's ``issued_date``) as dates."""
    longest = frame.select(cs.integer().cast(pl.Float64).abs().max())
    too_long = (
        [name for name, value in longest.to_dicts()[0].items() if value is not None and value >= _EXCEL_EXACT]
        if longest.width
        else []
    )
    return frame.with_columns(
        cs.datetime(time_zone="*").dt.replace_time_zone(None),
        pl.col(too_long).cast(pl.String),
        pl.col(_dates(frame)).str.to_date(_DATE),
    )


_DATE = "%Y-%m-%d"


def _dates(frame: pl.DataFrame) -> list[str]:
    """Text columns named ``*_date`` (the API sends a card's dates as ``2021-12-03``, no zone) whose
    every value is such a date: a column holding anything else stays text, so nothing is lost."""
    named = [name for name, dtype in frame.schema.items() if dtype == pl.String and name.endswith("_date")]
    if not named or frame.is_empty():
        return named
    parsed = pl.col(named).str.to_date(_DATE, strict=False).null_count() == pl.col(named).null_count()
    return [name for name, every in frame.select(parsed).row(0, named=True).items() if every]


def _is_identifier(column: str) -> bool:
    """Ids and codes (``customer_id``, ``error_code``, ``series_id``, ``org_id``, ``id``, ``code``), as the
    data dictionary names them: numbers no one adds up, shown as digits (``700000000``, ``8109``)
    rather than with Excel's thousands separators."""
    return column in ("id", "code") or column.endswith(("_id", "_code"))


def _number_formats(frame: pl.DataFrame) -> ColumnFormatDict:
    return {name: "0" for name in frame.select(cs.integer()).columns if _is_identifier(name)}


# Every text a text cell, whatever it looks like: xlsxwriter writes a text starting with "=" (or
# "{=") as a live formula and one that looks like a URL as a live hyperlink unless told not to, and
# a customer's name is whatever a sign-up form was sent.
_INERT_WORKBOOK = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
_FORMATS: dict[Any, str] = {pl.Datetime: "yyyy-mm-dd hh:mm:ss", pl.Date: "yyyy-mm-dd"}


def _columns_sheet(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The columns of the tables written, in sheet order, described by the data dictionary."""
    from capframe.schemas import data_dictionary  # pandera: loaded only when a workbook is written

    written = pl.DataFrame(
        [(name, column) for name, frame in tables.items() for column in frame.columns],
        schema={"table": pl.String, "column": pl.String},
        orient="row",
    )
    return written.join(data_dictionary(), on=["table", "column"], how="left", maintain_order="left")


def _provenance_sheet(provenance: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame({"field": list(provenance), "value": [str(value) for value in provenance.values()]})


def write_excel(tables: dict[str, pl.DataFrame], target: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """One sheet per table in the workbook ``target`` (``.xlsx``), then a sheet ``columns`` describing
    every column written (from :func:`capframe.schemas.data_dictionary`) and, when given, a sheet
    ``provenance`` (:meth:`capframe.Provenance.as_dict`).

    Identifiers, mobiles and every other text column are written as text, so leading zeros stay
    (an external id ``00412`` is not the number 412), and so is an integer column holding a number
    longer than Excel's 15 digits; numeric ids and codes show as plain digits (``700000000``, not
    ``700,000,000``). Excel has no time zones: timestamps are written as UTC times without one; a
    card's dates are date cells. Every text is a text cell, whatever it looks like: a name starting
    with ``=`` is not a formula, one that looks like a URL is not a link. Each sheet is a table with
    filters, its header row frozen.
    """
    xlsxwriter = _module("xlsxwriter", "excel", "Writing an Excel workbook")
    if Path(target).suffix.lower() != ".xlsx":
        raise InvalidArgumentError(f"{target}: an Excel workbook is a .xlsx file")
    path = _parent_made(target)
    # The workbook is written when the `with` closes: that is where a refusal comes.
    with _writing(path), xlsxwriter.Workbook(path, _INERT_WORKBOOK) as workbook:
        for name, frame in tables.items():
            _warn_of_cut_text(name, frame)
            ready = _excel_ready(frame)
            ready.write_excel(
                workbook,
                worksheet=name,
                autofit=True,
                freeze_panes=(1, 0),
                dtype_formats=_FORMATS,
                column_formats=_number_formats(ready),
            )
        # A description is up to a paragraph: wrapped, in a column a screen can show.
        _columns_sheet(tables).write_excel(
            workbook,
            worksheet="columns",
            autofit=True,
            freeze_panes=(1, 0),
            column_widths={"description": 640},
            column_formats={"description": {"text_wrap": True}},
        )
        if provenance is not None:
            _provenance_sheet(provenance).write_excel(
                workbook, worksheet="provenance", autofit=True, freeze_panes=(1, 0)
            )
    return path


# Parquet and JSON are data, not spreadsheets: only CSV heeds spreadsheet_safe.
_TABLE_WRITERS: dict[str, Callable[[pl.DataFrame, Path, bool], object]] = {
    ".parquet": lambda frame, path, _: frame.write_parquet(path),
    ".csv": _write_csv_file,
    ".ndjson": lambda frame, path, _: frame.write_ndjson(path),
    ".jsonl": lambda frame, path, _: frame.write_ndjson(path),
}


def write_table(frame: pl.DataFrame, target: str | Path, *, spreadsheet_safe: bool = True) -> Path:
    """One table to a ``.parquet``, ``.csv`` or ``.ndjson`` file (its folder made if missing);
    ``spreadsheet_safe`` as for :func:`write_csv`."""
    writer = _TABLE_WRITERS.get(Path(target).suffix.lower())
    if writer is None:
        raise InvalidArgumentError(
            f"{target}: write one table to a .parquet, .csv or .ndjson file (every table: to a .xlsx workbook"
            " or a folder)"
        )
    path = _parent_made(target)
    with _writing(path):
        writer(frame, path, spreadsheet_safe)
    return path


# pandas' nullable dtypes: an integer column with nulls stays Int64 (not float64), booleans stay
# boolean (not object), text is pandas' string dtype.
def _nullable_types(pa: Any, pd: Any) -> dict[Any, Any]:
    return {
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.large_string(): pd.StringDtype(),
        pa.string(): pd.StringDtype(),
        pa.string_view(): pd.StringDtype(),
    }


def to_pandas(tables: dict[str, pl.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each table as a pandas DataFrame with pandas' nullable dtypes (``Int64``, ``boolean``, ``string``)."""
    pa = _module("pyarrow", "pandas", "Converting to pandas")
    pd = _module("pandas", "pandas", "Converting to pandas")
    types = _nullable_types(pa, pd)
    return {name: frame.to_arrow().to_pandas(types_mapper=types.get) for name, frame in tables.items()}
