"""Entity frames -> tidy tables, with polars expressions only (no per-row Python on the hot path).

Both endpoints are first brought to one entity frame (``_wire.ENTITY_COLUMNS``: a customer id,
its item errors and warnings, and the nested customer), so one set of functions serves both.
Every table is a LazyFrame over that one frame, and :func:`tidy` collects them together: one
query plan per batch instead of a hundred small eager steps, whose fixed costs dominated.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from capframe._wire import DType, compact_json, json_text

__all__ = [
    "ERRORS",
    "FIELDS",
    "child_table",
    "customer_table",
    "empty",
    "tidy",
    "utc",
]

# Identifier types arrive as "cardNumber" and as "cardnumber": one canonical spelling per type.
_CANONICAL_TYPES = {
    t.lower(): t
    for t in (
        "mobile",
        "email",
        "externalId",
        "cardnumber",
        "cardExternalId",
        "wechat",
        "martjackId",
        "fbId",
        "cuid",
        "unionId",
        "line",
    )
}

FIELDS = pl.Schema(
    {
        "customer_id": pl.Int64,
        "profile_index": pl.Int64,
        "scope": pl.String,
        "name": pl.String,
        "value": pl.String,
    }
)
ERRORS = pl.Schema(
    {
        "customer_id": pl.Int64,
        "level": pl.String,
        "origin": pl.String,
        "code": pl.Int64,
        "message": pl.String,
    }
)


def utc(expr: pl.Expr) -> pl.Expr:
    """An ISO-8601 timestamp with ``Z`` or an offset such as ``+05:30`` -> a UTC Datetime."""
    return expr.str.to_datetime("%+", time_zone="UTC", time_unit="us", strict=False)


def empty(schema: pl.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def _explode_indexed(frame: pl.LazyFrame, column: str, index: str) -> pl.LazyFrame:
    """Explode a list column into one row per element, numbering elements; empty lists give no row."""
    return (
        frame.with_columns(pl.int_ranges(pl.col(column).list.len()).alias(index))
        .explode([column, index], empty_as_null=False, keep_nulls=False)
        .filter(pl.col(column).is_not_null())
    )


def _profiles(entities: pl.LazyFrame) -> pl.LazyFrame:
    return _explode_indexed(entities.select("customer_id", "profiles"), "profiles", "profile_index").unnest("profiles")


def _identifier_type(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().replace_strict(_CANONICAL_TYPES, default=expr)


def _identifiers(profiles: pl.LazyFrame) -> pl.LazyFrame:
    """``identifiers`` and ``identifiersAll`` as one table: each (type, value) once per profile."""
    lists = [
        profiles.select("customer_id", "profile_index", pl.col(name).alias("identifier"))
        .explode("identifier", empty_as_null=False, keep_nulls=False)
        .filter(pl.col("identifier").is_not_null())
        .unnest("identifier")
        .with_columns(in_identifiers=pl.lit(name == "identifiers"))
        for name in ("identifiers", "identifiersAll")
    ]
    return (
        pl.concat(lists)
        # `identifiers` comes first, so a pair listed in both keeps in_identifiers=True. Before the
        # types are mapped: `identifiersAll` mostly repeats `identifiers`, so half the rows go first.
        .unique(["customer_id", "profile_index", "type", "value"], keep="first", maintain_order=True)
        .select(
            "customer_id",
            "profile_index",
            _identifier_type(pl.col("type")).alias("type"),
            "value",
            pl.col("type").alias("raw_type"),
            pl.col("seriesId").alias("series_id"),
            pl.col("statusLabel").alias("status_label"),
            "in_identifiers",
        )
    )


def _comm_channels(profiles: pl.LazyFrame) -> pl.LazyFrame:
    return (
        profiles.select("customer_id", "profile_index", pl.col("commChannels").alias("channel"))
        .explode("channel", empty_as_null=False, keep_nulls=False)
        .filter(pl.col("channel").is_not_null())
        .unnest("channel")
        .pipe(_as_text, "attributes")
        .select(
            "customer_id",
            "profile_index",
            "type",
            "value",
            "primary",
            "verified",
            pl.col("meta").struct.field("residence"),
            pl.col("meta").struct.field("office"),
            "attributes",
        )
    )


def _as_text(frame: pl.LazyFrame, *columns: str) -> pl.LazyFrame:
    """Open-ended JSON columns (inferred as structs, lists or scalars) -> their JSON text."""
    schema = frame.collect_schema()
    return frame.with_columns(json_text(pl.col(c), schema[c]).alias(c) for c in columns)


_ROW = "\x00row"  # a column name no JSON key takes


def _map_to_long(maps: pl.LazyFrame) -> pl.LazyFrame:
    """(customer_id, profile_index, scope, raw JSON object) -> one row per key, values as text.

    Strings as sent, other values as JSON text (``"5"``, ``"true"``, ``"[1,2]"``). Rows follow the
    maps' order, keys sorted within a map: the same input gives the same table, however batched.
    """
    raw: DType = maps.collect_schema()["raw"]
    if raw == pl.Null or (isinstance(raw, pl.Struct) and not raw.fields):
        return empty(FIELDS).lazy()  # all null, or objects that are all empty
    if not isinstance(raw, pl.Struct):
        # JSON text (the exact reader), or a map sent as a list or a number: decode it here, eagerly.
        text = maps.with_columns(json_text(pl.col("raw"), raw).alias("raw")).filter(
            pl.col("raw").is_not_null() & (pl.col("raw") != "{}")
        )
        eager = text.collect()
        try:
            decoded = eager["raw"].str.json_decode(infer_schema_length=None) if eager.height else None
        except pl.exceptions.PolarsError:
            decoded = None
        if decoded is None or not isinstance(decoded.dtype, pl.Struct) or not _as_sent(decoded.dtype):
            return _map_rows(eager) if eager.height else empty(FIELDS).lazy()
        maps, raw = eager.with_columns(decoded).lazy(), decoded.dtype
    if not _as_sent(raw):
        # Values whose inferred type may not be their own (see _as_sent): read row by row, exactly.
        return _map_rows(maps.with_columns(json_text(pl.col("raw"), raw).alias("raw")).collect())
    # The map's keys become columns: every other column, the map's own ones carried through the
    # unpivot (cheaper than joining them back) and the unpivot's, takes a name no JSON key takes.
    scratch = {name: f"{_ROW}.{name}" for name in FIELDS.names()}
    index = [_ROW, scratch["customer_id"], scratch["profile_index"], scratch["scope"]]
    return (
        maps.filter(pl.col("raw").is_not_null())
        .with_row_index(_ROW)
        .select(_ROW, *(pl.col(name).alias(scratch[name]) for name in ("customer_id", "profile_index", "scope")), "raw")
        .unnest("raw")
        .select(*index, *(json_text(pl.col(f.name), f.dtype).alias(f.name) for f in raw.fields))
        .unpivot([f.name for f in raw.fields], index=index, variable_name=scratch["name"], value_name=scratch["value"])
        .drop_nulls(scratch["value"])
        .sort(_ROW, scratch["name"])
        .select(pl.col(alias).alias(name) for name, alias in scratch.items())
    )


def _map_rows(maps: pl.DataFrame) -> pl.LazyFrame:
    """The slow path of _map_to_long, for maps of raw JSON text: one row at a time, exact."""
    rows = [
        (cid, idx, scope, key, value if isinstance(value, str) else compact_json(value))
        for cid, idx, scope, text in maps.select("customer_id", "profile_index", "scope", "raw").iter_rows()
        if text is not None
        for key, value in _items(text)
        if value is not None
    ]
    return pl.DataFrame(rows, schema=FIELDS, orient="row").lazy()


def _as_sent(map_dtype: pl.Struct) -> bool:
    """Whether every value of a map inferred as this struct has the type it was sent with.

    Inference gives a key one type across rows: beside a float, 5 becomes 5.0; beside an integer,
    true becomes 1; beside a list, a scalar becomes a list; objects get each other's keys. Text,
    booleans and nulls alone are safe."""
    return all(f.dtype in (pl.String, pl.Boolean, pl.Null) for f in map_dtype.fields)


def _items(text: str) -> list[tuple[str, object]]:
    """A map's JSON text -> its (key, value) pairs, sorted; a map that is no object is one pair with key ''."""
    try:
        value = json.loads(text, strict=False)  # control characters inside strings are data
    except ValueError:
        return [("", text)]  # text the API sent where an object belongs: kept as it is
    return sorted(value.items()) if isinstance(value, dict) else [("", value)]


def _fields(entities: pl.LazyFrame, profiles: pl.LazyFrame, unknown: pl.LazyFrame) -> pl.LazyFrame:
    null_index = pl.lit(None, dtype=pl.Int64).alias("profile_index")
    scopes = [
        profiles.select("customer_id", "profile_index", pl.lit("custom").alias("scope"), pl.col("fields").alias("raw")),
        profiles.select("customer_id", "profile_index", pl.lit("all").alias("scope"), pl.col("allFields").alias("raw")),
        entities.select(
            "customer_id", null_index, pl.lit("extended").alias("scope"), pl.col("extendedFields").alias("raw")
        ),
    ]
    unrecognised = unknown.select("customer_id", null_index, pl.lit("unrecognised").alias("scope"), "name", "value")
    return pl.concat([*map(_map_to_long, scopes), unrecognised])


def _segments(entities: pl.LazyFrame) -> pl.LazyFrame:
    null_index = pl.lit(None, dtype=pl.Int64).alias("profile_index")
    segments = entities.select(
        "customer_id", null_index, pl.lit("segment").alias("scope"), pl.col("segments").alias("raw")
    )
    return _map_to_long(segments).select("customer_id", pl.col("name").alias("segment"), "value")


def _cards(entities: pl.LazyFrame) -> pl.LazyFrame:
    return (
        entities.select("customer_id", pl.col("cardDetails").alias("card"))
        .explode("card", empty_as_null=False, keep_nulls=False)
        .filter(pl.col("card").is_not_null())
        .unnest("card")
        .pipe(_as_text, "statusInfo", "customFields", "extendedFields")
        .select(
            "customer_id",
            pl.col("cardNumber").alias("card_number"),
            pl.col("cardExternalId").alias("card_external_id"),
            pl.col("cardId").alias("card_id"),
            pl.col("seriesId").alias("series_id"),
            pl.col("seriesCode").alias("series_code"),
            pl.col("seriesName").alias("series_name"),
            pl.col("type").alias("card_type"),
            pl.col("issuedDate").alias("issued_date"),
            pl.col("createdDate").alias("created_date"),
            pl.col("expiryDays").alias("expiry_days"),
            pl.col("transactionNotAllowed").alias("transaction_not_allowed"),
            pl.col("statusInfo").alias("status_info"),
            pl.col("customFields").alias("custom_fields"),
            pl.col("extendedFields").alias("extended_fields"),
            # What the card sends beyond these is in its raw id fields.
            pl.col("id").alias("id"),
            pl.col("customerId").alias("card_customer_id"),
            pl.col("maxActiveCards").alias("max_active_cards"),
            pl.col("orgId").alias("org_id"),
            pl.col("entityId").alias("entity_id"),
        )
    )


def item_errors(entities: pl.LazyFrame) -> pl.LazyFrame:
    """Each item's errors and warnings, one row each."""
    errors = (
        entities.select("customer_id", pl.col("errors").alias("e"))
        .explode("e", empty_as_null=False, keep_nulls=False)
        .filter(pl.col("e").is_not_null())
        .unnest("e")
        .select(
            "customer_id",
            pl.lit("error").alias("level"),
            # An error with no code is one capframe wrote itself (an id the API never returned).
            pl.when(pl.col("code").is_null()).then(pl.lit("capframe")).otherwise(pl.lit("api")).alias("origin"),
            "code",
            "message",
        )
    )
    return pl.concat([errors, _warnings(entities.select("customer_id", "warnings"))])


def _warnings(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Raw JSON warnings -> rows; their shape is undocumented, so the message is the warning's JSON."""
    return (
        frame.explode("warnings", empty_as_null=False, keep_nulls=False)
        .filter(pl.col("warnings").is_not_null())
        .pipe(_as_text, "warnings")
        .select(
            "customer_id",
            pl.lit("warning").alias("level"),
            pl.lit("api").alias("origin"),
            pl.lit(None, dtype=pl.Int64).alias("code"),
            pl.col("warnings").alias("message"),
        )
    )


def request_errors(request_level: pl.LazyFrame) -> pl.LazyFrame:
    """Request-level errors and warnings of a response (not tied to one customer)."""
    frame = request_level.with_columns(pl.lit(None, dtype=pl.Int64).alias("customer_id"))
    errors = (
        frame.select("customer_id", pl.col("errors").alias("e"))
        .explode("e", empty_as_null=False, keep_nulls=False)
        .filter(pl.col("e").is_not_null())
        .unnest("e")
        .select("customer_id", pl.lit("error").alias("level"), pl.lit("api").alias("origin"), "code", "message")
    )
    return pl.concat([errors, _warnings(frame.select("customer_id", "warnings"))])


def tidy(
    entities: pl.DataFrame,
    request_level: pl.DataFrame,
    unknown: pl.DataFrame,
    *,
    main: str,
    main_table: Callable[[pl.LazyFrame], pl.LazyFrame],
) -> dict[str, pl.DataFrame]:
    """Every table of a batch, keyed by ``customer_id``; ``main`` is ``customers`` or ``children``.

    Each table is built list by list; :func:`capframe._answers.in_order` puts the bundle's rows in
    customer order once, at the end.
    """
    frame = entities.lazy()
    profiles = _profiles(frame)
    tables = {
        main: main_table(frame),
        "profiles": profiles.pipe(_as_text, "conflictingProfileList", "attribution").select(
            "customer_id",
            "profile_index",
            pl.col("userId").alias("user_id"),
            "source",
            pl.col("accountId").alias("account_id"),
            pl.col("firstName").alias("first_name"),
            pl.col("lastName").alias("last_name"),
            utc(pl.col("autoUpdateTime")).alias("auto_update_time"),
            pl.col("conflictingProfileList").alias("conflicting_profiles"),
            "attribution",
        ),
        "identifiers": _identifiers(profiles),
        "comm_channels": _comm_channels(profiles),
        "fields": _fields(frame, profiles, unknown.lazy()),
        "segments": _segments(frame),
        "cards": _cards(frame),
        "errors": pl.concat([item_errors(frame), _lossy(frame, profiles), request_errors(request_level.lazy())]),
    }
    return dict(zip(tables, pl.collect_all(tables.values(), engine="in-memory"), strict=True))


def _lossy(entities: pl.LazyFrame, profiles: pl.LazyFrame) -> pl.LazyFrame:
    """Values a table cannot hold as sent (a score with a fraction, a timestamp without an offset):
    the table has null there, and this says so, with the value, as warnings of origin capframe."""
    score = pl.col("loyaltyInfo").struct.field("score")
    checks = [
        entities.filter(score.is_not_null() & (score != score.round())).select(
            "customer_id",
            pl.format("loyaltyInfo.score {} is not an integer: customers.score is null", score).alias("message"),
        ),
        profiles.filter(pl.col("autoUpdateTime").is_not_null() & utc(pl.col("autoUpdateTime")).is_null()).select(
            "customer_id",
            pl.format(
                "profiles[{}].autoUpdateTime {} is not an ISO-8601 time with an offset: auto_update_time is null",
                "profile_index",
                "autoUpdateTime",
            ).alias("message"),
        ),
    ]
    if "createdDate" in entities.collect_schema():
        checks.append(
            entities.filter(pl.col("createdDate").is_not_null() & utc(pl.col("createdDate")).is_null()).select(
                "customer_id",
                pl.format(
                    "createdDate {} is not an ISO-8601 time with an offset: created_date is null", "createdDate"
                ).alias("message"),
            )
        )
    return pl.concat(
        frame.select(
            "customer_id",
            pl.lit("warning").alias("level"),
            pl.lit("capframe").alias("origin"),
            pl.lit(None, dtype=pl.Int64).alias("code"),
            "message",
        )
        for frame in checks
    )


_FIRST = "\x00first"  # a column name no JSON key takes


def _with_first_profile(entities: pl.LazyFrame) -> pl.LazyFrame:
    """``entities`` with the fields of its first profile that the main table keeps, as one struct.

    Only those fields are gathered: the first profile whole (its maps, channels and identifier lists)
    cost the customers table half its time, each time a column took a field of it.
    """
    keep = ("firstName", "lastName", "source", "accountId", "autoUpdateTime", "identifiers")
    return entities.with_columns(
        pl.col("profiles").list.eval(pl.struct(pl.element().struct.field(*keep))).list.first().alias(_FIRST)
    )


def _first_identifier(type_: str) -> pl.Expr:
    """The first profile's first identifier of a type, whatever the case of its spelling."""
    element = pl.element().struct
    return (
        pl.col(_FIRST)
        .struct.field("identifiers")
        .list.eval(element.field("value").filter(element.field("type").str.to_lowercase() == type_.lower()))
        .list.first()
    )


def _profile_columns() -> list[pl.Expr]:
    """The main table's columns of the first profile (of :func:`_with_first_profile`)."""
    first = pl.col(_FIRST).struct
    return [
        first.field("firstName").alias("first_name"),
        first.field("lastName").alias("last_name"),
        first.field("source").alias("source"),
        first.field("accountId").alias("account_id"),
        _first_identifier("mobile").alias("mobile"),
        _first_identifier("email").alias("email"),
        _first_identifier("externalId").alias("external_id"),
    ]


def customer_table(entities: pl.LazyFrame) -> pl.LazyFrame:
    """One row per customer: the item's outcome, its first profile and its loyalty summary."""
    loyalty = pl.col("loyaltyInfo").struct
    first_error = pl.col("errors").list.first().struct
    score = loyalty.field("score")
    entities = (
        entities.pipe(_with_first_profile)
        .with_columns(loyalty.field("attributionV2").alias("_attribution"))
        .pipe(_as_text, "_attribution")
    )
    return entities.select(
        "customer_id",
        pl.col("success").fill_null(pl.col("errors").list.len() == 0),
        first_error.field("code").alias("error_code"),
        first_error.field("message").alias("error_message"),
        *_profile_columns(),
        loyalty.field("loyaltyType").alias("loyalty_type"),
        loyalty.field("lifetimePurchases").alias("lifetime_purchases"),
        # Documented as an integer; read as a float so that 2.0 does not fail the page.
        pl.when(score == score.round()).then(score.cast(pl.Int64)).alias("score"),
        pl.col("associatedWith").alias("associated_with"),
        pl.col(_FIRST).struct.field("autoUpdateTime").pipe(utc).alias("auto_update_time"),
        pl.col("profiles").list.len().cast(pl.Int64).fill_null(0).alias("profile_count"),
        pl.col("_attribution").alias("loyalty_attribution"),
    )


def child_table(entities: pl.LazyFrame) -> pl.LazyFrame:
    """One row per child customer of a parent."""
    return (
        entities.pipe(_with_first_profile)
        .pipe(_as_text, "parentCustomer")
        .select(
            "parent_type",
            "parent_value",
            "customer_id",
            *_profile_columns(),
            pl.col("roleCode").alias("role_code"),
            pl.col("createdDate").pipe(utc).alias("created_date"),
            pl.col("noOfChildren").alias("no_of_children"),
            pl.col("defaultChild").alias("default_child"),
            pl.col(_FIRST).struct.field("autoUpdateTime").pipe(utc).alias("auto_update_time"),
            pl.col("parentCustomer").alias("parent_customer"),
        )
    )
