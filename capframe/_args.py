"""Checks of user input, made before any request, with errors that name the bad value."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from capframe.errors import ArgumentTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from capframe._client import Client

__all__ = [
    "IDENTIFIER_TYPES",
    "MAX_BATCH",
    "SOURCES",
    "client",
    "count",
    "customer_ids",
    "id_of_text",
    "identifier_type",
    "seconds",
    "source",
]

# Documented values of `source` (capillary-api.md section 6), plus two seen in examples.
SOURCES = frozenset(
    {
        "FACEBOOK", "WEB_ENGAGE", "WECHAT", "INSTORE", "MARTJACK", "TMALL", "TAOBAO", "JD",
        "ECOMMERCE", "WEBSITE", "LINE", "ALL", "WHATSAPP", "MOBILE_APP",
    }
)  # fmt: skip
MAX_ID = 2**63 - 1  # the largest customer id: a signed 64-bit integer
MAX_BATCH = 1000  # ids per Get Customers Bulk request: the sandbox's limit, and Capillary's usual one (1060 past it)


# The identifier types the v2 API takes (identifierName, associationEntityIdentifierType): lower case -> as written.
IDENTIFIER_TYPES = {
    t.lower(): t for t in ("mobile", "email", "externalId", "cardnumber", "wechat", "martjackId", "fbId")
}


def identifier_type(kind: object, where: str) -> str:
    """An identifier type in any case -> as the API writes it. ``where`` names what gave it ("parent #3").
    A type that is not one is shown only when it looks like a type's name: a value given in the type's
    place (a pair written the wrong way round) is personal data, never repeated in a message."""
    if isinstance(kind, str) and kind.lower() in IDENTIFIER_TYPES:
        return IDENTIFIER_TYPES[kind.lower()]
    shown = (
        repr(kind)
        if isinstance(kind, str) and kind.isalpha() and len(kind) <= 40
        else f"(a {type(kind).__name__}, not shown: it may be a value)"
    )
    raise InvalidArgumentError(
        f"{where} names an unknown identifier type {shown}: use one of {', '.join(IDENTIFIER_TYPES.values())}"
    )


# Longer than any identifier (an email is at most 254 characters): a longer value is a column of
# something else, and sent in a URL it would make one too long to send (httpx refuses past 65,536).
IDENTIFIER_VALUE_MOST = 512


def identifier_value(value: object, label: str) -> str:
    """An identifier's value as sent: text as written but for surrounding whitespace, an int as its
    digits. ``label`` names it ("value #3 (mobile)"), never the value itself, which is personal data."""
    if value is None or (isinstance(value, float) and value != value):
        raise InvalidArgumentError(f"{label} is missing: drop it, or give its value")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{label} must be text, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidArgumentError(f"{label} is empty: drop it, or give its value")
    if len(text) > IDENTIFIER_VALUE_MOST:
        raise InvalidArgumentError(
            f"{label} is {len(text):,} characters long, more than any identifier ({IDENTIFIER_VALUE_MOST:,} at most): "
            "check that the values passed are identifiers"
        )
    return text


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


# An id as text, the way a CSV read as text or an ids file holds it: digits with spaces around them,
# leading zeros, and pandas' ".0" of an integer column with a gap (565338404.0). At most 19 digits after
# the leading zeros: int() of thousands of digits is slow, and no id has more.
_ID_TEXT = re.compile(r"\s*0*([0-9]{1,19})(?:\.0*)?\s*")


def id_of_text(text: str) -> int | None:
    """The customer id a text holds (``" 565338404 "``, ``"0565338404"``, ``"565338404.0"``), or None.

    One rule for the library and the command line: the ids a CSV read as text gives are accepted
    the same way by ``fetch_customers`` and by ``capframe customers --ids``.
    """
    digits = _ID_TEXT.fullmatch(text)
    return int(digits[1]) if digits and 0 < int(digits[1]) <= MAX_ID else None


# A float holds every whole number exactly only up to 2**(bits of its mantissa + 1), by its width in
# bytes: 2**53 for a float64, 2**24 for a float32 (numpy's, polars' Float32). Past it an id may have
# lost digits: 700000002 as a float32 is 700000000, another customer.
_EXACT_BITS = {2: 11, 4: 24, 8: 53}
_SHOWN_POSITIONS = 5
_DROP_MISSING = (
    "drop them first: .dropna() on a pandas Series, .drop_nulls() (and .drop_nans() for NaN) on a polars"
    " Series, or leave them out of the list"
)


def _is_float(value: Any) -> bool:
    """A float of any width (Python's, numpy's): Real but not Rational, as ints and Fractions are."""
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Rational)


def _missing_kind(value: Any) -> str | None:
    """How a missing value is written (None, NaN, pandas' <NA> and NaT), or None for a value."""
    if value is None:
        return "None"
    if _is_float(value) and math.isnan(value):
        return "NaN"
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, without importing pandas
        return str(value)
    return None


def _missing(positions: list[int], kinds: Iterable[str], total: int) -> ArgumentTypeError:
    shown = ", ".join(map(str, positions[:_SHOWN_POSITIONS]))
    more = f" and {len(positions) - _SHOWN_POSITIONS} more" if len(positions) > _SHOWN_POSITIONS else ""
    where = f"position {shown}" if len(positions) == 1 else f"positions {shown}{more}"
    return ArgumentTypeError(
        f"ids holds {len(positions)} missing value(s) ({', '.join(sorted(set(kinds)))}) among {total},"
        f" at {where} (counting from 0): a customer id cannot be missing; {_DROP_MISSING}"
    )


def _exact_bits(value: Any) -> int:
    """The bits of a whole number a float scalar holds exactly (a Python float, numpy's of any width)."""
    return _EXACT_BITS.get(getattr(value, "itemsize", 8), 53)


def _bad_id(value: Any, position: int, bits: int | None = None) -> Exception:
    """The error for one bad id. Only numbers and digit strings are repeated: other text may be personal.
    ``bits``: those a float id held exactly where it came from (a Float32 Series' value is a Python float)."""
    where = f"ids[{position}]"
    if isinstance(value, bool) or value is None:
        return ArgumentTypeError(f"{where} is {value!r}: customer ids are positive integers")
    if isinstance(value, str):
        if value.strip().isdigit():  # digits, but 0 or past 2**63 - 1
            return InvalidArgumentError(
                f"{where} is the string {value!r}: customer ids are positive integers below 2**63"
            )
        return ArgumentTypeError(
            f"{where} is a string that is not a customer id: customer ids are positive integers, or strings of digits"
        )
    if isinstance(value, numbers.Integral):
        return InvalidArgumentError(f"{where} is {int(value)}: customer ids are positive integers below 2**63")
    if _is_float(value) and math.isfinite(value) and float(value).is_integer():
        if value > 0:
            return InvalidArgumentError(
                f"{where} is {value!r}, past 2**{bits or _exact_bits(value)}, where a float of its width"
                " loses digits: read the ids as integers"
                " (pandas: dtype='Int64'; polars: pl.Int64)"
            )
        return InvalidArgumentError(f"{where} is {value!r}: customer ids are positive integers")
    shown = f"{value!r} " if isinstance(value, numbers.Number) else ""
    return ArgumentTypeError(f"{where} is {shown}({type(value).__name__}): customer ids are positive integers")


def _id(value: Any, position: int) -> int:
    """One id other than a plain int in range: a whole number of any int type, or a whole float."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 < int(value) <= MAX_ID:
        return int(value)
    if _is_float(value) and math.isfinite(value) and float(value).is_integer() and 0 < value <= 2 ** _exact_bits(value):
        return int(value)
    if isinstance(value, str) and (number := id_of_text(value)) is not None:
        return number
    raise _bad_id(value, position)


def customer_ids(ids: Any) -> list[int]:
    """Positive integer ids -> a list without duplicates, in first-occurrence order.

    Accepts any iterable of ints (numpy and polars integers too) and integer Series or arrays. Whole
    floats up to 2**53 (2**24 for a float32) are ids too (565338404.0 is 565338404), as the CLI reads
    them: pandas keeps an integer column with a gap as floats, and it stays float after ``.dropna()``. Strings of digits are
    ids as well, as the CLI reads its ids files (``id_of_text``): a CSV read as text gives them. Other
    strings and floats are refused,
    and so are missing values (None, NaN, null, pandas' <NA>): the error counts them, says where the first
    few are and how to drop them, since an id that is not there cannot be asked for or accounted for.
    """
    return customer_id_series(ids).to_list()


def customer_id_series(ids: Any) -> pl.Series:
    """:func:`customer_ids` as an Int64 Series: a pull of millions of ids holds them so, not as a
    Python int each (36 bytes an id, and a dict of them all while duplicates are dropped)."""
    # Plain ints in range only (polars reads True as 1): anything else is read, and refused, item by item.
    if isinstance(ids, list) and all(type(value) is int and 0 < value <= MAX_ID for value in ids):
        return _ids_from_series(pl.Series("ids", ids, dtype=pl.Int64))
    if isinstance(ids, (str, bytes, numbers.Number)) or ids is None:
        shown = "" if isinstance(ids, (str, bytes)) and not ids.strip().isdigit() else f" {ids!r}"
        raise ArgumentTypeError(f"ids must be a list of customer ids, not {type(ids).__name__}{shown}")
    if type(ids).__name__ in ("DataFrame", "LazyFrame"):  # polars' or pandas': it iterates its columns or names
        raise ArgumentTypeError(
            f"ids must be a list of customer ids, not a {type(ids).__name__}: pass its column, such as frame['customer_id']"
        )
    # numpy arrays of numbers go to polars whole; an object array (pandas' .to_numpy()) goes item by item.
    numpy_numbers = type(ids).__module__ == "numpy" and getattr(getattr(ids, "dtype", None), "kind", "") in "iubf"
    if isinstance(ids, pl.Series) or numpy_numbers:
        return _ids_from_series(pl.Series("ids", ids))
    if not isinstance(ids, Iterable):
        raise ArgumentTypeError(f"ids must be a list of customer ids, not {type(ids).__name__}")
    checked: dict[int, None] = {}
    missing: dict[int, str] = {}  # position -> how it is written; all are counted before the error
    for position, value in enumerate(ids):
        if type(value) is int and 0 < value <= MAX_ID:  # the common case, checked fast
            checked[value] = None
        elif (kind := _missing_kind(value)) is not None:
            missing[position] = kind
        else:
            checked[_id(value, position)] = None
    if missing:
        raise _missing(list(missing), missing.values(), position + 1)
    return pl.Series("ids", list(checked), dtype=pl.Int64)


def _ids_from_series(series: pl.Series) -> pl.Series:
    if series.dtype == pl.Null:
        raise ArgumentTypeError(f"ids are all null: {_DROP_MISSING}")
    if isinstance(series.dtype, (pl.Categorical, pl.Enum)):  # a CSV read with a category column: its text
        series = series.cast(pl.String)
    if series.dtype == pl.String:
        return _ids_from_text(series)
    is_float = series.dtype.is_float()
    if not (series.dtype.is_integer() or is_float):
        position = int(series.is_not_null().arg_max() or 0)
        raise _bad_id(series[position], position)
    is_missing = series.is_null() | series.is_nan() if is_float else series.is_null()
    if is_missing.any():
        kinds = ["null"] * bool(series.null_count()) + ["NaN"] * bool(is_float and series.is_nan().any())
        raise _missing(is_missing.arg_true().to_list(), kinds, len(series))
    bits = _EXACT_BITS[4 if series.dtype == pl.Float32 else 8] if is_float else None
    if bits is not None:
        bad = (series <= 0) | (series > 2**bits) | (series != series.floor())
    else:
        bad = (series <= 0) | (series > MAX_ID) if series.dtype == pl.UInt64 else series <= 0
    if bad.any():
        position = int(bad.arg_max() or 0)
        raise _bad_id(series[position], position, bits)
    return series.cast(pl.Int64).unique(maintain_order=True)


def _ids_from_text(series: pl.Series) -> pl.Series:
    """A String Series: each value by ``id_of_text``; a bad value is named before a missing one, as in a list."""
    digits = series.str.extract(f"^{_ID_TEXT.pattern}$", 1).cast(pl.UInt64)  # 19 digits fit a UInt64
    numbers = pl.select(pl.when((digits > 0) & (digits <= MAX_ID)).then(digits)).to_series().cast(pl.Int64)
    bad = series.is_not_null() & numbers.is_null()
    if bad.any():
        position = int(bad.arg_max() or 0)
        raise _bad_id(series[position], position)
    if series.null_count():
        raise _missing(series.is_null().arg_true().to_list(), ["null"], len(series))
    return numbers.unique(maintain_order=True)
