"""Text from outside made harmless on its way out: to a terminal, and to a spreadsheet.

A customer's name, an index entry of a snapshot someone handed over, a server's message: any of
them can hold ESC, BEL, a carriage return or a bidirectional override, which a terminal obeys
(a conceal code, a forged line, text shown reversed). Printed through :func:`visible`, they show
as escapes instead. Joiners (U+200C, U+200D) are left alone: Indic scripts and emoji need them.

The same name in a CSV file is a formula when a spreadsheet opens it, if it starts with ``=``,
``+``, ``-`` or ``@`` (``=HYPERLINK(...)`` sends the sheet's data away, ``=cmd|...`` runs a
program), or with a tab, a carriage return or a line feed (spreadsheets skip them). :func:`spreadsheet_safe`
prefixes such a text with a single quote, as OWASP's "CSV Injection" page recommends, so that the
spreadsheet shows it as text. Only text columns are touched: a number such as -5 stays a number.
A workbook needs none of this: capframe writes every text there as a text cell.

>>> visible("Ann\\x1b[8m secret\\r\\ndamaged    0 file(s)\\u202e")
'Ann\\\\x1b[8m secret\\\\r\\\\ndamaged    0 file(s)\\\\u202e'
>>> visible("Zoë, ക്ഷ, 👩\\u200d💻")
'Zoë, ക്ഷ, 👩\\u200d💻'
>>> import polars as pl
>>> spreadsheet_safe(pl.DataFrame({"name": ["=1+2", "-2+3", "@SUM(A1)", "Ann-Marie"], "score": [-5, 1, 2, 3]})).rows()
[("'=1+2", -5), ("'-2+3", 1), ("'@SUM(A1)", 2), ('Ann-Marie', 3)]
"""

from __future__ import annotations

import re

import polars as pl
import polars.selectors as cs

__all__ = ["spreadsheet_safe", "visible", "visible_table"]

# C0 and C1 controls and DEL, the line and paragraph separators, and the bidirectional controls.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: object) -> str:
    """``text`` for a terminal: every control character shown as an escape, nothing else changed."""
    return _UNSAFE.sub(_escape, str(text))


def visible_table(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` for a terminal: every text through :func:`visible`. polars prints text as it is;
    meant for the few rows a terminal shows (it calls Python per cell)."""
    return frame.with_columns(cs.string().map_elements(visible, return_dtype=pl.String))


# The first characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_START = r"^([=+\-@\t\r\n])"


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text that a spreadsheet would run as a formula prefixed with ``'``, so it
    is shown as text; other columns, and other texts, as they are."""
    return frame.with_columns(cs.string().str.replace(_FORMULA_START, "'$1"))
