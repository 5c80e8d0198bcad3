"""The prototype reader: response bodies -> a frame of the wire schema, at about the cost of parsing the JSON.

Why it exists: reading is most of a pull's CPU, and most of polars' JSON reader's time goes to
inferring a schema (benchmarks/README.md). Given a schema instead (``schema=``), polars reads
fast but drops keys the schema does not name and coerces without a word (2.5 -> 2 and true -> 1
into Int64, 5.0 -> "5" into String: pola-rs/polars#23772, #28553). Given a *prototype* (a first
document from which it infers the schema, ``infer_schema_length=1``) it reads as fast and refuses
more: a key the prototype lacks, an object or array where text is, anything but an object where
an object (or a list of them) is, anything but true/false where a boolean is, a string where a
number is. What it still coerces are numbers and booleans:

    where the prototype has    polars reads                     found by
    an integer                 2.5 and 5.0 as 5, true as 1,     a float token, a huge integer,
                               beyond 64 bits as null           or true/false after such a key
    a float                    true as 1.0                      true/false after such a key
    text                       5.0 as "5", 1e20 as digits       a float token
    text inside JSON kept      5 as "5" (then quoted)           a number or true/false after
    as text                                                     such a key

The last column is a few regular-expression passes over the bodies (polars' regex engine, off the
GIL), which count: float tokens anywhere, allowed only after the keys of documented float fields;
true and false after the keys named, allowed only as many as the boolean fields of those keys
hold; keys written with an escape, which the patterns could not see. Any count beyond what is
allowed sends the bodies to the caller's inferred reader, which is exact or falls back to the
exact reader (:mod:`capframe._wire`). So a body this reader reads gives the frame the exact reader
gives; a doubt costs time, never a different table. Arrays are read about 500 kB at a time:
polars' reader is fastest on what fits a CPU cache.

Open-ended fields (``fields``, ``segments``, card ``statusInfo``, ...) have keys nobody knows in
advance: the prototype starts with them empty and learns their shapes from the pages the inferred
reader reads (:meth:`Prototype.learn`). Maps learn their keys, all read as text (a map's values
become text rows, the exact reader's text for strings, integers and booleans); JSON kept as text
learns structs of text, integers and booleans only (a float or a list of scalars there is read
the slow way every time). Keys the wire schema does not name are never learnt: their pages take
the slow path, which keeps their values (``recover_unknown``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

__all__ = ["Prototype"]

DType = pl.DataType | DataTypeClass

# Bounds on what is learnt: a prototype nesting deeper than the exact reader reads, or one an API
# that keys maps by timestamp would grow without end, is not extended (its pages read the slow way).
_MAX_DEPTH = 16
_MAX_LEARNT = 4096

_FLOAT = r"-?\d+[.eE]"
_CHUNK = 512 << 10


@dataclass(frozen=True)
class _State:
    """One version of the prototype: immutable, so readers on other threads need no lock."""

    schema: pl.Schema  # what the prototype document reads as
    document: bytes  # the prototype, the first element of every array read
    suspect: tuple[str, ...]  # regexes: tokens polars would coerce, and floats anywhere
    allowed: str  # a regex: the float tokens of documented float fields (each also a suspect's)
    expected: list[pl.Expr]  # counts of the booleans the suspect pattern finds in boolean fields


class Prototype:
    """A learning reader for one wire schema (one endpoint's page)."""

    def __init__(self, schema: pl.Schema, raw: frozenset[str], maps: frozenset[str]) -> None:
        self._wire = schema
        self._raw = raw  # fields kept as JSON text
        self._maps = maps  # those of them that are maps, tidied into long tables
        self._lock = threading.Lock()
        self._state = self._build(pl.Schema({name: self._start(dtype, name, name) for name, dtype in schema.items()}))

    def read(self, bodies: Sequence[bytes]) -> pl.DataFrame | None:
        """``bodies`` as one frame of the learnt schema, one row per body; None when this reader cannot
        vouch for the result (the caller reads them the slow way)."""
        state = self._state
        if not bodies:
            return None
        try:
            # Read first: a page with a key the prototype lacks (a new map key, drift) fails here, unsearched.
            pages = [
                pl.read_json(b"[" + state.document + b"," + b",".join(chunk) + b"]", infer_schema_length=1)
                for chunk in _chunks(bodies)
            ]
            # Stacking checks that every chunk read as the first did: comparing each chunk's schema with
            # the prototype's made Python objects of every nested dtype (a tenth of the read's time).
            page = pl.concat([page.slice(1) for page in pages]) if len(pages) > 1 else pages[0].slice(1)
            texts = pl.Series("text", bodies, dtype=pl.Binary).cast(pl.String)  # not UTF-8: raises
            # One select: polars counts the patterns in parallel.
            *suspects, allowed = (
                texts.to_frame()
                .select(
                    pl.col("text").str.count_matches(pattern).sum().alias(str(number))
                    for number, pattern in enumerate((*state.suspect, state.allowed))
                )
                .row(0)
            )
            suspect = sum(suspects)
        except pl.exceptions.PolarsError:  # a key or a type the prototype does not have: the slow way
            return None
        if page.height != len(bodies) or page.schema != state.schema:
            return None
        # What is suspect beyond the allowed floats must be the true and false of boolean fields:
        # anything else, a boolean read into another type included, was coerced.
        if suspect != allowed and (
            not state.expected or suspect != allowed + page.select(pl.sum_horizontal(state.expected)).item()
        ):
            return None
        return page

    def learn(self, inferred: pl.Schema) -> None:
        """Extend the open-ended fields with the shapes of a page the inferred reader read."""
        with self._lock:
            current = self._state.schema
            learnt = pl.Schema(
                {
                    name: self._merge(current[name], inferred[name], want, name, name)
                    if name in inferred
                    else current[name]
                    for name, want in self._wire.items()
                }
            )
            if learnt != current and sum(1 for _ in _leaves(learnt)) <= _MAX_LEARNT:
                self._state = self._build(learnt)

    # -- the schema, field by field ---------------------------------------------------------------

    def _kind(self, want: DType, name: str, path: str) -> str | None:
        """What a field is: "map", "raw" (JSON kept as text) or None (documented)."""
        if name not in self._raw or not (want == pl.String or want == pl.List(pl.String)):
            return None
        # A card's extendedFields is kept as text, the customer's is a map (as _wire._target says).
        return "map" if name in self._maps and "cardDetails" not in path else "raw"

    def _start(self, want: DType, name: str, path: str) -> DType:
        """The prototype's dtype before anything is learnt: open-ended fields empty."""
        kind = self._kind(want, name, path)
        if kind == "map":
            return pl.Struct({})
        if kind == "raw":
            return pl.List(pl.Null) if isinstance(want, pl.List) else pl.Null()
        if isinstance(want, pl.Struct):
            return pl.Struct({f.name: self._start(f.dtype, f.name, f"{path}.{f.name}") for f in want.fields})
        if isinstance(want, pl.List):
            return pl.List(self._start(want.inner, name, f"{path}[]"))
        return want

    def _merge(self, current: DType, inferred: DType, want: DType, name: str, path: str) -> DType:
        kind = self._kind(want, name, path)
        if kind == "map":
            if not isinstance(current, pl.Struct) or not isinstance(inferred, pl.Struct):
                return current
            known = {f.name for f in current.fields}
            # Values of every JSON type but objects and arrays are read as text, as the exact reader writes them.
            new = [f.name for f in inferred.fields if f.name not in known and _scalar(f.dtype)]
            return pl.Struct([*current.fields, *(pl.Field(key, pl.String) for key in new)])
        if kind == "raw":
            merged = _union(current, inferred)
            return merged if merged is not None and _depth(merged) <= _MAX_DEPTH else current
        if isinstance(want, pl.Struct) and isinstance(current, pl.Struct) and isinstance(inferred, pl.Struct):
            have = {f.name: f.dtype for f in inferred.fields}
            return pl.Struct(
                {
                    f.name: self._merge(c, have[f.name], f.dtype, f.name, f"{path}.{f.name}") if f.name in have else c
                    for f, c in zip(want.fields, (g.dtype for g in current.fields), strict=True)
                }
            )
        if isinstance(want, pl.List) and isinstance(current, pl.List) and isinstance(inferred, pl.List):
            return pl.List(self._merge(current.inner, inferred.inner, want.inner, name, f"{path}[]"))
        return current

    def _build(self, schema: pl.Schema) -> _State:
        numbers: set[str] = set()  # keys of an integer or a float
        floats: set[str] = set()  # keys of a documented float
        texts: set[str] = set()  # keys of text inside JSON kept as text
        other: set[str] = set()  # every other key
        booleans: dict[str, list[pl.Expr]] = {}  # key -> counts of the boolean fields of that key
        for key, dtype, inside_raw, expr in self._keys(schema):
            if dtype == pl.Int64 or dtype == pl.Float64:
                numbers.add(key)
            if dtype == pl.Boolean:
                booleans.setdefault(key, []).append(expr.count())
            if dtype == pl.Float64 and not inside_raw:
                floats.add(key)
            elif dtype == pl.String and inside_raw:
                texts.add(key)
            else:
                other.add(key)
        # The patterns start with a key's letters, not its opening quote (as fast a search as there is):
        # they also find keys that end with those letters. Suspect patterns then only suspect more;
        # the allowed floats must be exact, so a float key that another key ends with is not allowed.
        allowed = sorted(key for key in floats if not any(o.endswith(key) for o in other | texts))
        keyed = [r'\\(?:[^"\\]|\\.)*"\s*:']  # a key with an escape, which the patterns would not see
        if numbers:  # true or false where a number is: polars reads them as 1 and 0
            keyed.append(rf'(?:{_any(numbers)})"\s*:\s*[tf]')
        if texts:  # a number, true or false where text is, inside JSON kept as text: it would be quoted
            keyed.append(rf'(?:{_any(texts)})"\s*:\s*[-0-9tf]')
        # A float token, or an integer that may not fit 64 bits; then the keyed ones.
        suspect = (r"[:\[,]\s*-?(?:\d+[.eE]|\d{19})", *keyed)
        # A pattern no text matches when no float is allowed: then every float is suspect.
        allowed_pattern = rf'(?:{_any(allowed)})"\s*:\s*{_FLOAT}' if allowed else r"[^\s\S]"
        document = json.dumps({name: _example(dtype) for name, dtype in schema.items()}, separators=(",", ":"))
        # The patterns find the booleans of boolean fields whose key ends as a key they name: no coercion.
        named = numbers | texts
        expected = [c for key, counts in booleans.items() if any(key.endswith(n) for n in named) for c in counts]
        return _State(schema, document.encode(), suspect, allowed_pattern, expected)

    def _keys(self, schema: pl.Schema) -> Iterator[tuple[str, DType, bool, pl.Expr]]:
        """(key, dtype, whether inside JSON kept as text, an expression of its values) of every field
        of the schema, at any depth (the values of a list's elements flattened)."""

        def walk(dtype: DType, name: str, path: str, inside_raw: bool, expr: pl.Expr) -> Iterator[Any]:
            kind = None if inside_raw else self._kind(self._wire_at(path), name, path)
            if kind == "map" and isinstance(dtype, pl.Struct):  # map keys: their values read as text
                yield from ((f.name, pl.Null(), False, expr) for f in dtype.fields)
            yield name, dtype, inside_raw, expr
            if isinstance(dtype, pl.Struct) and kind != "map":
                for f in dtype.fields:
                    inner = expr.struct.field(f.name)
                    yield from walk(f.dtype, f.name, f"{path}.{f.name}", inside_raw or kind == "raw", inner)
            elif isinstance(dtype, pl.List):
                yield from walk(dtype.inner, name, f"{path}[]", inside_raw or kind == "raw", expr.explode())

        for name, dtype in schema.items():
            yield from walk(dtype, name, name, False, pl.col(name))

    def _wire_at(self, path: str) -> DType:
        """The wire dtype at a documented path (``a.b[].c``)."""
        dtype: DType = pl.Struct(self._wire)
        for part in re.findall(r"[^.\[\]]+|\[\]", path):
            if part == "[]":
                dtype = dtype.inner if isinstance(dtype, pl.List) else dtype
            else:
                fields = {f.name: f.dtype for f in dtype.fields} if isinstance(dtype, pl.Struct) else {}
                dtype = fields.get(part, pl.Null())
        return dtype


def _chunks(bodies: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    """Bodies in runs of about _CHUNK bytes: polars' reader is fastest on arrays that fit a CPU
    cache (0.9x the floor at 500 kB, 2x at 8 MB, measured with benchmarks/bench_parse.py's pages)."""
    start, size = 0, 0
    for end, body in enumerate(bodies):
        if size and size + len(body) > _CHUNK:
            yield bodies[start:end]
            start, size = end, 0
        size += len(body)
    yield bodies[start:]


def _any(keys: set[str] | list[str]) -> str:
    """An alternation of the keys, literally (every character but letters, digits and _ as \\x{...})."""
    return "|".join(
        "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"\\x{{{ord(c):x}}}" for c in key)
        for key in sorted(keys)
    )


def _scalar(dtype: DType) -> bool:
    return not isinstance(dtype, (pl.Struct, pl.List))


def _union(a: DType, b: DType) -> DType | None:
    """The dtype both read as (struct fields united), or None where they clash or hold what a
    prototype cannot read exactly (a float, a list of scalars)."""
    if b == pl.Null:
        return a if _learnable(a) else None
    if a == pl.Null:
        return b if _learnable(b) else None
    if isinstance(a, pl.Struct) and isinstance(b, pl.Struct):
        fields = {f.name: f.dtype for f in a.fields}
        for f in b.fields:
            merged = _union(fields[f.name], f.dtype) if f.name in fields else (f.dtype if _learnable(f.dtype) else None)
            if merged is None:
                return None
            fields[f.name] = merged
        return pl.Struct(fields)
    if isinstance(a, pl.List) and isinstance(b, pl.List):
        inner = _union(a.inner, b.inner)
        return pl.List(inner) if inner is not None and not (_scalar(inner) and inner != pl.Null) else None
    return a if a == b and _learnable(a) else None


def _learnable(dtype: DType) -> bool:
    if isinstance(dtype, pl.Struct):
        return all(_learnable(f.dtype) for f in dtype.fields)
    if isinstance(dtype, pl.List):
        return (dtype.inner == pl.Null or not _scalar(dtype.inner)) and _learnable(dtype.inner)
    return dtype in (pl.Null, pl.String, pl.Boolean, pl.Int64)


def _depth(dtype: DType) -> int:
    if isinstance(dtype, pl.Struct):
        return 1 + max((_depth(f.dtype) for f in dtype.fields), default=0)
    if isinstance(dtype, pl.List):
        return 1 + _depth(dtype.inner)
    return 0


def _leaves(schema: pl.Schema) -> Iterator[DType]:
    def walk(dtype: DType) -> Iterator[DType]:
        yield dtype
        if isinstance(dtype, pl.Struct):
            for f in dtype.fields:
                yield from walk(f.dtype)
        elif isinstance(dtype, pl.List):
            yield from walk(dtype.inner)

    for dtype in schema.values():
        yield from walk(dtype)


def _example(dtype: DType) -> Any:
    """A JSON value from which polars infers exactly ``dtype``."""
    if isinstance(dtype, pl.Struct):
        return {f.name: _example(f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        return [] if dtype.inner == pl.Null else [_example(dtype.inner)]
    if dtype == pl.Boolean:
        return True
    if dtype == pl.Int64:
        return 0
    if dtype == pl.Float64:
        return 0.5
    if dtype == pl.String:
        return ""
    return None
