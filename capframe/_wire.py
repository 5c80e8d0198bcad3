"""The wire format: one explicit polars schema per endpoint, and response bytes -> a frame of entities.

Parsing is the whole cost of a pull, so the bytes go straight to polars' JSON reader with an
explicit schema (no Python dicts in between). Open-ended maps (``fields``, ``extendedFields``,
``segments``, ...) are declared ``String``: the reader then keeps each one as its raw JSON text,
so keys nobody can know in advance survive as data. A reader with a schema drops keys the schema
does not name; :func:`find_unknown_keys` notices those, and :func:`recover_unknown` keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

__all__ = [
    "CHILDREN_PAGE",
    "CUSTOMERS_PAGE",
    "ENTITY_COLUMNS",
    "WIRE_VERSION",
    "WireFormatError",
    "children_entities",
    "customer_entities",
    "find_unknown_keys",
    "recover_unknown",
]

# Bump when the schemas below change: cached batches of another version are fetched again.
WIRE_VERSION = 1

RAW = pl.String()  # an open-ended JSON value, kept as its JSON text
DType = pl.DataType | DataTypeClass

ERROR = pl.Struct({"status": pl.Boolean, "code": pl.Int64, "message": pl.String})
IDENTIFIER = pl.Struct({"type": pl.String, "value": pl.String, "seriesId": pl.Int64, "statusLabel": pl.String})
COMM_CHANNEL = pl.Struct(
    {
        "type": pl.String,
        "value": pl.String,
        "primary": pl.Boolean,
        "verified": pl.Boolean,
        "meta": pl.Struct({"residence": pl.Boolean, "office": pl.Boolean}),
        "attributes": RAW,
    }
)
PROFILE = pl.Struct(
    {
        "firstName": pl.String,
        "lastName": pl.String,
        "fields": RAW,
        "allFields": RAW,
        "identifiers": pl.List(IDENTIFIER),
        "commChannels": pl.List(COMM_CHANNEL),
        "source": pl.String,
        "userId": pl.Int64,
        "accountId": pl.String,
        "conflictingProfileList": RAW,
        "autoUpdateTime": pl.String,
        "identifiersAll": pl.List(IDENTIFIER),
        "attribution": RAW,
    }
)
CARD = pl.Struct(
    {
        "id": pl.Int64,
        "cardId": pl.Int64,
        "cardNumber": pl.String,
        "cardExternalId": pl.String,
        "customerId": pl.Int64,
        "seriesId": pl.Int64,
        "seriesCode": pl.String,
        "seriesName": pl.String,
        "type": pl.String,
        "issuedDate": pl.String,
        "createdDate": pl.String,
        "expiryDays": pl.Int64,
        "maxActiveCards": pl.Int64,
        "orgId": pl.Int64,
        "entityId": pl.Int64,
        "transactionNotAllowed": pl.Boolean,
        "statusInfo": RAW,
        "customFields": RAW,
        "extendedFields": RAW,
    }
)
LOYALTY_INFO = pl.Struct(
    {
        "loyaltyType": pl.String,
        # 230 in one answer, 2400.0 in another: read both as floats.
        "lifetimePurchases": pl.Float64,
        "score": pl.Float64,
        "attributionV2": RAW,
    }
)
# What customers of both endpoints share; the tidy step reads these columns.
CUSTOMER_FIELDS: dict[str, DType] = {
    "profiles": pl.List(PROFILE),
    "loyaltyInfo": LOYALTY_INFO,
    "segments": RAW,
    "associatedWith": pl.String,
    "extendedFields": RAW,
    "cardDetails": pl.List(CARD),
}
CUSTOMERS_PAGE = pl.Schema(
    {
        "data": pl.List(
            pl.Struct(
                {
                    "entity": pl.Struct({"id": pl.Int64, **CUSTOMER_FIELDS}),
                    "warnings": pl.List(RAW),
                    "errors": pl.List(ERROR),
                    "success": pl.Boolean,
                }
            )
        ),
        "warnings": pl.List(RAW),
        "errors": pl.List(ERROR),
    }
)
CHILD = pl.Struct(
    {
        **CUSTOMER_FIELDS,
        "roleCode": pl.String,
        "createdDate": pl.String,
        "noOfChildren": pl.Int64,
        "defaultChild": pl.Boolean,
        "parentCustomer": RAW,
    }
)
CHILDREN_PAGE = pl.Schema(
    {  # type: ignore[arg-type]  # mypy widens a dict of mixed dtypes to object
        "entity": pl.Struct(
            {
                "customers": pl.List(CHILD),
                "count": pl.Int64,
                "errors": pl.List(ERROR),
                "warnings": pl.List(RAW),
            }
        ),
        "warnings": pl.List(RAW),
        "errors": pl.List(ERROR),
        "success": pl.Boolean,
    }
)

# The columns of an entity frame, the shape both endpoints are brought to before tidying.
ENTITY_COLUMNS = pl.Schema(
    {
        "customer_id": pl.Int64,
        "success": pl.Boolean,
        "errors": pl.List(ERROR),
        "warnings": pl.List(RAW),
        **CUSTOMER_FIELDS,
    }
)


class WireFormatError(Exception):
    """A body that is not the JSON the endpoint documents (truncated, HTML, another shape)."""


def _read_page(body: bytes, schema: pl.Schema) -> pl.DataFrame:
    # A page is one JSON object; the NDJSON reader (one line) keeps String-typed objects as raw JSON,
    # which the plain JSON reader refuses to do.
    if not body.strip().startswith(b"{"):
        raise WireFormatError("the body is not a JSON object")
    try:
        page = pl.read_ndjson(body.replace(b"\n", b" ").replace(b"\r", b" "), schema=schema)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise WireFormatError(f"the body could not be read as the documented JSON ({exc.__class__.__name__})") from None
    if page.height != 1:
        raise WireFormatError("the body is not a single JSON object")
    return page


def customer_entities(body: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One Get Customers Bulk response -> (entity frame, request-level errors and warnings)."""
    page = _read_page(body, CUSTOMERS_PAGE)
    if page["data"].null_count():
        raise WireFormatError('the body has no "data" array')
    items = page.select("data").explode("data", empty_as_null=False, keep_nulls=False)
    entities = items.unnest("data").unnest("entity").rename({"id": "customer_id"})
    if entities["customer_id"].null_count():
        raise WireFormatError("an entity in the body has no id")
    return entities.select(ENTITY_COLUMNS.names()), page.select("errors", "warnings")


def children_entities(body: bytes) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """One hierarchy page -> (entity frame, request-level errors and warnings, success)."""
    page = _read_page(body, CHILDREN_PAGE)
    success = bool(page["success"][0]) if page["success"][0] is not None else True
    entity = page.select(pl.col("entity").struct.field("customers", "errors", "warnings"))
    children = (
        entity.select("customers")
        .explode("customers", empty_as_null=False, keep_nulls=False)
        .unnest("customers")
        .with_columns(
            customer_id=pl.col("profiles").list.first().struct.field("userId"),
            success=pl.lit(True),
            errors=pl.lit([], dtype=pl.List(ERROR)),
            warnings=pl.lit([], dtype=pl.List(RAW)),
        )
    )
    if children["customer_id"].null_count():
        raise WireFormatError("a child in the body has no profiles[].userId")
    request_level = pl.concat([page.select("errors", "warnings"), entity.select("errors", "warnings")], how="vertical")
    return children, request_level, success


# -- schema drift ---------------------------------------------------------------------------------

_KEY = r'"((?:[^"\\]|\\.)*)"\s*:'


def _schema_keys(dtype: DType | pl.Schema) -> Iterator[str]:
    fields: Iterable[tuple[str, DType]] = dtype.items() if isinstance(dtype, pl.Schema) else []
    if isinstance(dtype, pl.Struct):
        fields = ((f.name, f.dtype) for f in dtype.fields)
    elif isinstance(dtype, pl.List):
        yield from _schema_keys(dtype.inner)
    for name, inner in fields:
        yield name
        yield from _schema_keys(inner)


_KNOWN_KEYS = frozenset(_schema_keys(CUSTOMERS_PAGE)) | frozenset(_schema_keys(CHILDREN_PAGE))


def _keys_in(texts: pl.Series) -> set[str]:
    return set(texts.str.extract_all(_KEY).explode().drop_nulls().str.extract(_KEY).unique())


def find_unknown_keys(body: bytes, raw_texts: pl.Series) -> set[str]:
    """Object keys in ``body`` that the wire schema does not name.

    A regex over the bytes, run by polars: cheap beside the parse. Keys found inside the raw
    open-ended maps (``raw_texts``) are legitimate and subtracted.
    """
    found = _keys_in(pl.Series([body.decode("utf-8", "replace")])) - _KNOWN_KEYS
    if found:
        found -= _keys_in(raw_texts)
    return found


def _walk(value: Any, dtype: DType, path: str, sink: list[tuple[str, Any]]) -> None:
    if isinstance(dtype, pl.Struct) and isinstance(value, dict):
        known = {f.name: f.dtype for f in dtype.fields}
        for key, inner in value.items():
            if key in known:
                _walk(inner, known[key], f"{path}.{key}" if path else key, sink)
            else:
                sink.append((f"{path}.{key}" if path else key, inner))
    elif isinstance(dtype, pl.List) and isinstance(value, list):
        for element in value:
            _walk(element, dtype.inner, f"{path}[]", sink)


def recover_unknown(body: bytes, *, children: bool) -> pl.DataFrame:
    """The values of keys the schema does not name, as rows of the long ``fields`` table.

    The slow path, taken only for a page where :func:`find_unknown_keys` found something.
    """
    document = json.loads(body)
    rows: list[tuple[int | None, str, str]] = []
    schema = CHILDREN_PAGE if children else CUSTOMERS_PAGE
    items: list[Any]
    if children:
        item_dtype = CHILDREN_PAGE["entity"].fields[0].dtype.inner  # type: ignore[attr-defined]
        items = (document.get("entity") or {}).get("customers") or []
        prefix = "entity.customers[]"
    else:
        item_dtype = CUSTOMERS_PAGE["data"].inner  # type: ignore[attr-defined]
        items = document.get("data") or []
        prefix = "data[]"
    for item in items:
        found: list[tuple[str, Any]] = []
        _walk(item, item_dtype, prefix, found)
        customer_id = _item_id(item, children=children)
        rows.extend((customer_id, path, json.dumps(value)) for path, value in found)
    # Unknown keys outside the items: at the page level.
    top: list[tuple[str, Any]] = []
    page_dtype = pl.Struct({k: v for k, v in schema.items() if k != ("entity" if children else "data")})
    _walk({k: v for k, v in document.items() if k != ("entity" if children else "data")}, page_dtype, "", top)
    if children:
        entity_dtype = CHILDREN_PAGE["entity"]
        entity = {k: v for k, v in (document.get("entity") or {}).items() if k != "customers"}
        _walk(entity, entity_dtype, "entity", top)
    rows.extend((None, path, json.dumps(value)) for path, value in top)
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.Int64, "name": pl.String, "value": pl.String},
        orient="row",
    )


def _item_id(item: Any, *, children: bool) -> int | None:
    try:
        if children:
            return int(item["profiles"][0]["userId"])
        return int(item["entity"]["id"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
