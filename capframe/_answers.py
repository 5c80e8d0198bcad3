"""Response bodies -> answers (read and checked) -> tidy tables -> one bundle's tables.

Both endpoints go through here (the words are those of :mod:`capframe._engine`). Answers are tidied
together, since a tidy step has fixed costs that one request's 100 entities would pay alone. What the
wire schema does not name is kept in ``fields`` (``unrecognised``).

Reading has fixed costs too (polars' per call, an answer's frames, their concatenation): a Get
Customers Bulk body is read with its group's (:func:`read_group`), in one call of the prototype
reader on arrays of about 500 kB, into one answer; read one by one as they arrived, the same bodies
cost a pull twice the CPU. A hierarchy page is read as it arrives (the next page's request needs it).
The guarantee of a read at arrival is kept: a request is answered only by a body that was read.

- At arrival a body is checked cheaply (:func:`capframe._wire.whole_object`: a JSON object's first
  and last bytes): one cut short, empty or HTML is asked again at once, as before.
- The group's bodies are read together only where the prototype reader vouches for every one and
  each entity is one its request asked for, once (so a group read gives the rows reads one by one
  give: the inferred reader is never used on a group, since inferring one schema for all the bodies
  would give one body's open-ended values another's types). Otherwise each body is read alone,
  exactly as at arrival (unknown keys, entities not asked for or sent twice are handled there).
- A body that cannot be read alone (not JSON after all, hostile) fails its request only: the
  engine asks that request again, alone, as its retry (the same count of attempts and the same
  wait as a body found unreadable at arrival), and its new body is read at arrival. A body of the
  documented shape with values of other types fails its request at once, as at arrival.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from capframe import _tidy, _wire
from capframe.errors import SchemaDriftWarning, UnexpectedEntitiesWarning

__all__ = [
    "NO_UNKNOWN",
    "Answer",
    "GroupRead",
    "Tidied",
    "Unread",
    "answer",
    "combine",
    "in_order",
    "in_order_lazily",
    "no_customer_last",
    "read_group",
    "synthetic_entities",
    "tidy_answers",
]

NO_UNKNOWN = pl.DataFrame(schema={"customer_id": pl.Int64, "name": pl.String, "value": pl.String})


@dataclass
class Tidied:
    """Tables tidied from some answers, with what their reading noticed."""

    tables: dict[str, pl.DataFrame]
    unexpected: list[int] = field(default_factory=list)  # entity ids nobody asked for, dropped
    drift: set[str] = field(default_factory=set)  # JSON paths the wire schema does not name


@dataclass
class Answer:
    """Responses read and checked, not yet tidied."""

    entities: pl.DataFrame
    request_level: pl.DataFrame
    unknown: pl.DataFrame  # values of fields the wire schema does not name (customer_id, name, value)
    unexpected: list[int] = field(default_factory=list)  # entity ids nobody asked for, dropped


def answer(
    bodies: Sequence[bytes], entities: pl.DataFrame, request_level: pl.DataFrame, drift: bool, *, children: bool
) -> Answer:
    """Keep what the wire schema does not name: the slow path, taken only for bodies that have some."""
    unknown = NO_UNKNOWN
    if drift:
        unknown = pl.concat([_wire.recover_unknown(body, children=children) for body in bodies])
        asked = entities.get_column("customer_id").implode()
        unknown = unknown.filter(pl.col("customer_id").is_null() | pl.col("customer_id").is_in(asked))
    return Answer(entities, request_level, unknown)


@dataclass(frozen=True)
class Unread:
    """A Get Customers Bulk body that passed the check at arrival, left to be read with its group's.

    ``alone`` reads it by itself (raising WireFormatError, as a read at arrival does); ``again``, given
    why it could not be read, is its request's retry: the request is asked again as when a body read
    at arrival is unreadable (the same count of attempts, the same wait), its new body read at arrival.
    """

    body: bytes
    asked: tuple[int, ...]
    alone: Callable[[bytes], Answer]
    again: Callable[[_wire.WireFormatError], Awaitable[Answer]]


@dataclass
class GroupRead:
    """A group's bodies, read: answers, and for each body (in order) the ids it answered for, or why
    it could not be read (its request is asked again, or failed when asking again gets the same)."""

    answers: list[Answer]
    outcomes: list[list[int] | _wire.WireFormatError]


def read_group(unread: Sequence[Unread]) -> GroupRead:
    """Bodies read together, in one answer: polars' per-call costs paid once, not per body. Where
    that cannot vouch for every body (a body unreadable, a key the prototype lacks, an entity not
    asked for or sent twice), each body is read alone, exactly as at arrival."""
    together = _read_together(unread)
    if together is not None:
        return together
    read = GroupRead([], [])
    for one in unread:
        try:
            answered = one.alone(one.body)
        except _wire.WireFormatError as exc:
            read.outcomes.append(exc)
            continue
        read.answers.append(answered)
        read.outcomes.append(answered.entities["customer_id"].to_list())
    return read


def _read_together(unread: Sequence[Unread]) -> GroupRead | None:
    read = _wire.customer_entities_together([one.body for one in unread])
    if read is None:
        return None
    entities, request_level = read
    asked = pl.DataFrame(
        {
            "_body": [body for body, one in enumerate(unread) for _ in one.asked],
            "customer_id": [i for one in unread for i in one.asked],
        },
        schema={"_body": pl.UInt32, "customer_id": pl.Int64},
    )
    answered = entities.select("_body", "customer_id")
    # Rare, and handled by the reader of one body (dropped, with a warning; the first kept): read alone.
    if (
        answered.join(asked, on=["_body", "customer_id"], how="anti").height
        or answered["customer_id"].is_duplicated().any()
    ):
        return None
    ids = answered.group_by("_body").agg("customer_id")
    by_body: dict[int, list[int]] = dict(zip(ids["_body"].to_list(), ids["customer_id"].to_list(), strict=True))
    return GroupRead(
        [Answer(entities.drop("_body"), request_level, NO_UNKNOWN)],
        [by_body.get(body, []) for body in range(len(unread))],
    )


def tidy_answers(answers: Sequence[Answer], *, main: str, main_table: Callable[[pl.LazyFrame], pl.LazyFrame]) -> Tidied:
    """Answers -> one set of tables, tidied together (each alone if their JSON types clash)."""
    try:
        entities, request_level = (
            pl.concat([getattr(a, part) for a in answers], how="vertical_relaxed")
            for part in ("entities", "request_level")
        )
        if len(answers) > 1:  # a schema is made anew, as Python objects of every nested dtype, when asked for
            merged = entities.schema
            if any(_retyped(have[c], merged[c]) for have in [a.entities.schema for a in answers] for c in merged):
                raise TypeError("JSON of clashing types")
    except (pl.exceptions.PolarsError, TypeError):
        parts = [tidy_answers([a], main=main, main_table=main_table) for a in answers]
        return Tidied(
            {name: pl.concat([p.tables[name] for p in parts]) for name in parts[0].tables},
            [i for p in parts for i in p.unexpected],
            {path for p in parts for path in p.drift},
        )
    unknown = pl.concat([a.unknown for a in answers])
    tables = _tidy.tidy(entities, request_level, unknown, main=main, main_table=main_table)
    return Tidied(tables, [i for a in answers for i in a.unexpected], set(unknown["name"]))


def _retyped(have: _wire.DType, merged: _wire.DType) -> bool:
    """Whether merging answers changed the JSON type of one's values: an object or list garbled into
    text, 5 written 5.0 beside a float, true written 1 beside an integer. Absent values (Null) and
    objects gaining the keys of others' are no change."""
    if have == merged or have == pl.Null:
        return False
    if isinstance(merged, pl.Struct) and isinstance(have, pl.Struct):
        fields = {f.name: f.dtype for f in merged.fields}
        return any(_retyped(f.dtype, fields.get(f.name, pl.Null())) for f in have.fields)
    if isinstance(merged, pl.List) and isinstance(have, pl.List):
        return _retyped(have.inner, merged.inner)
    return True


def synthetic_entities(ids: Sequence[int], message: str) -> pl.DataFrame:
    """Entity rows for ids the API never answered for: failed, with capframe's reason, no data."""
    frame = pl.DataFrame({"customer_id": list(ids)}, schema={"customer_id": pl.Int64})
    error = {"status": False, "code": None, "message": message}
    return frame.with_columns(
        success=pl.lit(False),
        errors=pl.lit([error], dtype=_wire.ENTITY_COLUMNS["errors"]),
        warnings=pl.lit([], dtype=_wire.ENTITY_COLUMNS["warnings"]),
        profiles=pl.lit([], dtype=_wire.ENTITY_COLUMNS["profiles"]),
        **{
            name: pl.lit(None, dtype=dtype)
            for name, dtype in _wire.ENTITY_COLUMNS.items()
            if name not in ("customer_id", "success", "errors", "warnings", "profiles")
        },
    )


def combine(
    parts: Sequence[Tidied], names: Sequence[str], main: str, notices: list[tuple[str, type[Warning]]]
) -> dict[str, pl.DataFrame]:
    """Concatenate tidied tables in order (parts with no tables add their warnings only); warn once,
    in ``notices``, about drift and about entities nobody asked for.

    An id answered in two of ``parts`` keeps its first answer, in every table.
    """
    unexpected = sorted({i for part in parts for i in part.unexpected})
    if unexpected:
        notices.append(
            (
                f"the API sent {len(unexpected)} customer(s) that were not asked for (ids {unexpected[:5]}"
                f"{'...' if len(unexpected) > 5 else ''}); they were left out",
                UnexpectedEntitiesWarning,
            )
        )
    drift = sorted({path for part in parts for path in part.drift})
    if drift:
        notices.append(
            (
                f"the API sent field(s) capframe does not know: {', '.join(drift[:10])}"
                f"{'...' if len(drift) > 10 else ''}. Their values are kept in the fields table with "
                "scope='unrecognised'; please report them so capframe can name them.",
                SchemaDriftWarning,
            )
        )
    parts = [part for part in parts if part.tables]
    tables = {name: pl.concat([part.tables[name] for part in parts]) for name in names}
    unread = tables["errors"].filter((pl.col("origin") == "capframe") & (pl.col("level") == "warning")).height
    if unread:
        notices.append(
            (
                f"{unread} value(s) could not be read as documented (a score with a fraction, a timestamp without "
                "an offset): they are null in the tables and listed, as sent, in the errors table (origin 'capframe').",
                SchemaDriftWarning,
            )
        )
    key: list[str] = [c for c in ("parent_type", "parent_value", "customer_id") if c in tables[main].columns]
    # A struct of one column costs far more memory to hash than the column: 250 MB for a million ids.
    keyed = pl.struct(key) if len(key) > 1 else pl.col(key[0])
    if tables[main].select(keyed.n_unique()).item() < tables[main].height:  # rare: numbered parts only then
        numbered = {
            name: pl.concat([part.tables[name].with_columns(_part=pl.lit(i)) for i, part in enumerate(parts)])
            for name in names
        }
        tables = {name: _first_answers(frame, numbered[main], key).drop("_part") for name, frame in numbered.items()}
    return tables


def in_order(tables: dict[str, pl.DataFrame], ids: Sequence[int] | pl.Series) -> dict[str, pl.DataFrame]:
    """Every table's rows grouped by customer, in the order of ``ids`` (stable within a customer;
    rows tied to no customer last): the same answers give the same tables however they were requested.

    Only the keys are joined, every table's at once (a join's fixed costs, a hash table of the ids each,
    were most of the cost of ordering a read's tables), so rows are copied once, by a gather (joining
    every column and then sorting copied each twice); tables already in order are not copied.
    """
    position = pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.Int64}).with_row_index("_position")
    positions = (
        pl.concat([frame.select(pl.col("customer_id").cast(pl.Int64)) for frame in tables.values()])
        .join(position, on="customer_id", how="left", maintain_order="left")
        .get_column("_position")
    )
    ends = itertools.accumulate(frame.height for frame in tables.values())
    at = {name: positions[end - frame.height : end] for (name, frame), end in zip(tables.items(), ends, strict=True)}
    moved = [name for name, rows in at.items() if not rows.is_sorted(nulls_last=True)]
    orders = [
        at[name].to_frame().select(pl.arg_sort_by("_position", maintain_order=True, nulls_last=True)).to_series()
        for name in moved
    ]
    gathered = pl.collect_all(
        tables[name].lazy().select(pl.all().gather(order)) for name, order in zip(moved, orders, strict=True)
    )
    return {**tables, **dict(zip(moved, gathered, strict=True))}


def in_order_lazily(tables: dict[str, pl.LazyFrame], ids: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """:func:`in_order`, for LazyFrames (a sink's tables, read when collected): rows grouped by
    customer in the order of ``ids`` (a frame of distinct ``customer_id``; stable within a customer,
    rows tied to no customer last)."""
    position = ids.select(pl.col("customer_id").cast(pl.Int64)).with_row_index("_position")
    return {
        name: frame.join(position, on="customer_id", how="left", maintain_order="left")
        .sort("_position", maintain_order=True, nulls_last=True)
        .drop("_position")
        for name, frame in tables.items()
    }


def no_customer_last(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Every table's rows tied to no customer (request-level errors, unknown page-level keys) moved
    last, the others' order kept: chunks each in :func:`in_order`, stacked, are then in order as one."""
    moved = {}
    for name, frame in tables.items():
        nulls = frame["customer_id"].null_count()
        if nulls and frame["customer_id"].tail(nulls).null_count() < nulls:
            tied = pl.col("customer_id").is_not_null()
            moved[name] = pl.concat([frame.filter(tied), frame.filter(~tied)])
    return {**tables, **moved}


def _first_answers(frame: pl.DataFrame, main: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Keep the rows of each customer's first part (rows tied to no customer stay)."""
    key = key if set(key) <= set(frame.columns) else ["customer_id"]
    first = main.group_by(key, maintain_order=True).agg(pl.col("_part").first())
    answered = frame.join(first, on=[*key, "_part"], how="semi", maintain_order="left")
    return pl.concat([answered, frame.filter(pl.col("customer_id").is_null())])
