"""Checks of user input, made before any request, with errors that name the bad value."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from capframe.errors import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from capframe._client import Client

__all__ = ["MAX_BATCH", "SOURCES", "client", "count", "customer_ids", "seconds", "source"]

# Documented values of `source` (capillary-api.md section 6), plus two seen in examples.
SOURCES = frozenset(
    {
        "FACEBOOK", "WEB_ENGAGE", "WECHAT", "INSTORE", "MARTJACK", "TMALL", "TAOBAO", "JD",
        "ECOMMERCE", "WEBSITE", "LINE", "ALL", "WHATSAPP", "MOBILE_APP",
    }
)  # fmt: skip
_MAX_ID = 2**63 - 1
MAX_BATCH = 1000  # ids per Get Customers Bulk request: the sandbox's limit, and Capillary's usual one (1060 past it)


def client(value: Any) -> Client:
    """``None`` -> ``Client.from_env()``; a Client as it is; anything else is refused."""
    from capframe._client import Client  # the Client checks its own options with this module

    if value is None:
        return Client.from_env()
    if not isinstance(value, Client):
        raise ArgumentTypeError(
            f"client must be a capframe.Client, not {type(value).__name__} {value!r}: "
            "use client=capframe.Client(host, ...) or capframe.Client.sandbox()"
        )
    return value


# One rule per kind of mistake, for every option: a value of the wrong type is an ArgumentTypeError,
# a value of the right type out of range an InvalidArgumentError, and both name the option and the value.


def count(name: str, value: Any, high: int | None = None, *, low: int = 1) -> int:
    """A whole number option such as batch_size, from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        within = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidArgumentError(f"{name} must be {within}, not {value}")
    return value


def concurrency(value: Any) -> int | Literal["auto"]:
    """``concurrency``: "auto" (requests in flight follow latency) or a fixed whole number."""
    if isinstance(value, str):
        if value != "auto":
            raise InvalidArgumentError(f'concurrency must be "auto" or an int, not {value!r}')
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f'concurrency must be "auto" or an int, not {type(value).__name__} {value!r}')
    return count("concurrency", value)


def seconds(name: str, value: Any, *, zero: bool = True) -> float:
    """A duration option in seconds: finite, not negative (nor zero unless ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} must be a number of seconds, not {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        within = ">= 0" if zero else "> 0"
        raise InvalidArgumentError(f"{name} must be a finite number of seconds {within}, not {value!r}")
    return float(value)


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
