"""A bundle out of Python: a folder of parquet or CSV files, an Excel workbook, pandas frames.

Every writer is polars' own; the optional dependencies (xlsxwriter for Excel, pyarrow and pandas
for pandas) are imported only here, when asked for, with an error that names the extra to install.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import polars as pl
import polars.selectors as cs

from capframe.errors import InvalidArgumentError, MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CSV_DATETIME_FORMAT", "to_pandas", "write_csv", "write_excel", "write_parquet"]

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


def _folder(target: str | Path) -> Path:
    folder = Path(target)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(f"{folder} is a file: write the tables to a folder (one file per table)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_parquet(tables: dict[str, pl.DataFrame], target: str | Path) -> dict[str, Path]:
    """One ``<table>.parquet`` per table in the folder ``target`` (made if missing); table -> file."""
    folder = _folder(target)
    written = {}
    for name, frame in tables.items():
        frame.write_parquet(path := folder / f"{name}.parquet")
        written[name] = path
    return written


def write_csv(tables: dict[str, pl.DataFrame], target: str | Path) -> dict[str, Path]:
    """One ``<table>.csv`` per table in the folder ``target``; timestamps as ``2021-12-03 06:01:44`` (UTC)."""
    folder = _folder(target)
    written = {}
    for name, frame in tables.items():
        frame.write_csv(path := folder / f"{name}.csv", datetime_format=CSV_DATETIME_FORMAT)
        written[name] = path
    return written


def write_excel(tables: dict[str, pl.DataFrame], target: str | Path) -> Path:
    """One sheet per table in the workbook ``target`` (``.xlsx``).

    Identifiers, mobiles and every other text column are written as text, so leading zeros stay
    (an external id ``00412`` is not the number 412). Excel has no time zones: timestamps are
    written as UTC times without one.
    """
    _module("xlsxwriter", "excel", "Writing an Excel workbook")
    path = Path(target)
    if path.suffix.lower() != ".xlsx":
        raise InvalidArgumentError(f"{path}: an Excel workbook is a .xlsx file")
    xlsxwriter = importlib.import_module("xlsxwriter")
    with xlsxwriter.Workbook(path, {"strings_to_numbers": False, "strings_to_urls": False}) as workbook:
        for name, frame in tables.items():
            naive = frame.with_columns(cs.datetime(time_zone="*").dt.replace_time_zone(None))
            naive.write_excel(
                workbook, worksheet=name, autofit=True, dtype_formats={pl.Datetime: "yyyy-mm-dd hh:mm:ss"}
            )
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
