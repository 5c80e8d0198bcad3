"""Text from outside made harmless on its way out: to a terminal here (spreadsheets in :mod:`capframe._export`).

A customer's name, an index entry of a snapshot someone handed over, a server's message: any of
them can hold ESC, BEL, a carriage return or a bidirectional override, which a terminal obeys
(a conceal code, a forged line, text shown reversed). Printed through :func:`visible`, they show
as escapes instead. Joiners (U+200C, U+200D) are left alone: Indic scripts and emoji need them.

>>> visible("Ann\\x1b[8m secret\\r\\ndamaged    0 file(s)\\u202e")
'Ann\\\\x1b[8m secret\\\\r\\\\ndamaged    0 file(s)\\\\u202e'
>>> visible("Zoë, ക്ഷ, 👩\\u200d💻")
'Zoë, ക്ഷ, 👩\\u200d💻'
"""

from __future__ import annotations

import re

__all__ = ["visible"]

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
