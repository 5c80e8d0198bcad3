"""Checks of user input, made before any request, with errors that name the bad value."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import polars as pl

from capframe._client import Client
from capframe.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["SOURCES", "client", "count", "customer_ids", "source"]

# Documented values of `source` (capillary-api.md section 6), plus two seen in examples.
SOURCES = frozenset(
    {
        "FACEBOOK", "WEB_ENGAGE", "WECHAT", "INSTORE", "MARTJACK", "TMALL", "TAOBAO", "JD",
        "ECOMMERCE", "WEBSITE", "LINE", "ALL", "WHATSAPP", "MOBILE_APP",
    }
)  # fmt: skip
_MAX_ID = 2**63 - 1


def client(value: Any) -> Client:
    """``None`` -> ``Client.from_env()``; a Client as it is; anything else is refused."""
    if value is None:
        return Client.from_env()
    if not isinstance(value, Client):
        raise ArgumentTypeError(
            f"client must be a capframe.Client, not {type(value).__name__} {value!r}: "
            "use client=capframe.Client(host, ...) or capframe.Client.sandbox()"
        )
    return value


def count(name: str, value: Any, high: int | None = None) -> int:
    """A positive int option such as batch_size (at most ``high``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if value <= 0 or (high is not None and value > high):
        raise InvalidArgumentError(
            f"{name} must be from 1 to {high}, not {value}" if high else f"{name} must be positive, not {value}"
        )
    return value


def source(value: Any) -> str:
    """A source such as ``"INSTORE"`` (any case) -> its upper-case spelling."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"source must be a string such as 'INSTORE', not {type(value).__name__}")
    upper = value.strip().upper()
    if upper not in SOURCES:
        raise InvalidArgumentError(f"unknown source {value!r}: use one of {', '.join(sorted(SOURCES))}")
    return upper


def _bad_id(value: Any, position: int) -> Exception:
    where = f"ids[{position}]"
    if isinstance(value, bool) or value is None:
        return ArgumentTypeError(f"{where} is {value!r}: customer ids are positive integers")
    if isinstance(value, str):
        hint = f" (convert with int(): {int(value)})" if value.strip().isdigit() else ""
        return ArgumentTypeError(f"{where} is the string {value!r}: customer ids are positive integers{hint}")
    if isinstance(value, numbers.Integral):
        return InvalidArgumentError(f"{where} is {int(value)}: customer ids are positive integers below 2**63")
    return ArgumentTypeError(f"{where} is {value!r} ({type(value).__name__}): customer ids are positive integers")


def customer_ids(ids: Any) -> list[int]:
    """Positive integer ids -> a list without duplicates, in first-occurrence order.

    Accepts any iterable of ints (numpy and polars integers too) and integer Series or arrays.
    """
    if isinstance(ids, (str, bytes, numbers.Number)) or ids is None:
        raise ArgumentTypeError(f"ids must be a list of customer ids, not {type(ids).__name__} {ids!r}")
    # numpy arrays of integers go to polars whole; an object array (pandas' .to_numpy()) goes item by item.
    numpy_ints = type(ids).__module__ == "numpy" and getattr(getattr(ids, "dtype", None), "kind", "") in "iub"
    if isinstance(ids, pl.Series) or numpy_ints:
        return _ids_from_series(pl.Series("ids", ids))
    if not isinstance(ids, Iterable):
        raise ArgumentTypeError(f"ids must be a list of customer ids, not {type(ids).__name__}")
    checked: dict[int, None] = {}
    for position, value in enumerate(ids):
        if type(value) is int and 0 < value <= _MAX_ID:  # the common case, checked fast
            checked[value] = None
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 < int(value) <= _MAX_ID:
            checked[int(value)] = None
        else:
            raise _bad_id(value, position)
    return list(checked)


def _ids_from_series(series: pl.Series) -> list[int]:
    if not series.dtype.is_integer():
        bad = series.drop_nulls()
        raise (
            _bad_id(bad[0] if len(bad) else None, 0)
            if series.dtype != pl.Null
            else ArgumentTypeError("ids are all null")
        )
    if series.null_count():
        raise _bad_id(None, int(series.is_null().arg_max() or 0))
    out_of_range = (series <= 0) | (series > _MAX_ID) if series.dtype == pl.UInt64 else series <= 0
    if out_of_range.any():
        position = int(out_of_range.arg_max() or 0)
        raise _bad_id(int(series[position]), position)
    return series.cast(pl.Int64).unique(maintain_order=True).to_list()
