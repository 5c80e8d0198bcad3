"""The wire format: one explicit polars schema per endpoint, and response bytes -> a frame of entities.

Parsing is the whole cost of a pull, so the bytes go straight to polars' JSON reader (no Python
dicts in between). It infers each page's schema, and one cast per column brings the page to the
wire schema below, where open-ended JSON (``fields``, ``extendedFields``, ``segments``, card
details, ...) is declared ``String`` (a ``RAW`` value): keys nobody can know in advance survive as
data. Keys the wire schema does not name show up in the comparison of the two schemas, and
:func:`recover_unknown` keeps their values. Pages whose JSON types clash take an exact, slower path.
"""

from __future__ import annotations

import array
import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

from capframe._prototype import Prototype

__all__ = [
    "CHILDREN_PAGE",
    "CUSTOMERS_PAGE",
    "ENTITY_COLUMNS",
    "WIRE_VERSION",
    "WireFormatError",
    "WireTypeError",
    "children_entities",
    "customer_entities",
    "customer_entities_together",
    "json_text",
    "loads",
    "recover_unknown",
    "whole_object",
]

# Part of each snapshot part's fingerprint, which is otherwise derived from the schemas (a changed
# page schema or stored table needs no bump). Bump only when how values are read changes while no
# schema does. 2: JSON text with keys sorted and null members left out; a number where a boolean is
# documented, or an object or array where text is, refused.
WIRE_VERSION = 2

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


class WireTypeError(WireFormatError):
    """A body of the documented shape with values of other types: asking again gets the same."""


# Fields whose value is open-ended JSON, kept as its JSON text (a List of them: each element).
_RAW_FIELDS = frozenset(
    {
        "fields", "allFields", "attributes", "conflictingProfileList", "attribution", "attributionV2",
        "segments", "extendedFields", "statusInfo", "customFields", "parentCustomer", "warnings",
    }
)  # fmt: skip


# Open-ended maps the tidy step turns into long tables: the fast path leaves them as the structs it
# inferred (turning them into JSON text only to parse it again would double their cost).
_MAPS = frozenset({"fields", "allFields", "extendedFields", "segments"})

# Each page schema's learning reader (see capframe._prototype), found by the schema's identity.
_PROTOTYPES = {id(schema): Prototype(schema, raw=_RAW_FIELDS, maps=_MAPS) for schema in (CUSTOMERS_PAGE, CHILDREN_PAGE)}


class _Drift(Exception):
    """Internal: the inferred page does not fit the wire schema (a type the API changed)."""


def json_text(expr: pl.Expr, have: DType) -> pl.Expr:
    """A column of any dtype read from JSON -> its values as JSON text (strings as they are).

    Objects are written as :func:`compact_json` writes them: keys sorted, null members left out.
    Read beside other objects, an object gets their keys too (as nulls, in the order first seen);
    without them, and sorted, its text is the same whatever was read with it.
    """
    name = expr.meta.output_name()
    if have == pl.String:
        return expr  # a JSON string: its text, as the exact reader keeps it
    if have == pl.Null:
        return pl.lit(None, dtype=pl.String).alias(name)
    if have == pl.Boolean or have.is_numeric():
        return expr.cast(pl.String)
    # A struct cast matches fields by name: to the same fields, sorted, it only reorders them.
    expr = expr.cast(_sorted_keys(have), strict=False)
    text: pl.Expr
    if isinstance(have, pl.Struct):  # json_encode writes a missing struct as the text "null"
        text = pl.when(expr.is_not_null()).then(expr.struct.json_encode())
    else:  # a list: encoded as the one field of a struct, then taken out
        text = pl.struct(expr.alias("v")).struct.json_encode().str.json_path_match("$.v")
    return _without_null_members(text).alias(name)


def _sorted_keys(dtype: DType) -> DType:
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _sorted_keys(f.dtype) for f in sorted(dtype.fields, key=lambda f: f.name)})
    if isinstance(dtype, pl.List):
        return pl.List(_sorted_keys(dtype.inner))
    return dtype


_JSON_STRING = r'"(?:[^"\\]|\\.)*"'


def _without_null_members(text: pl.Expr) -> pl.Expr:
    """Compact JSON text -> the same without object members whose value is null.

    One pattern, matched left to right: a member ``,"key":null``; or a ``{`` and its first members
    while they are null (and the comma after them); or a whole string token, put back as it is, so
    text inside strings is never touched. The pattern runs only on texts holding ``":null`` (every
    null member does): a literal search is far cheaper, and most texts hold none.
    """
    member = rf"{_JSON_STRING}:null"
    pattern = rf"(?s),{member}|(\{{){member}(?:,{member})*,?|({_JSON_STRING})"
    with_nulls = pl.when(text.str.contains('":null', literal=True)).then(text)  # others: null, skipped
    return pl.coalesce(with_nulls.str.replace_all(pattern, "$1$2"), text)


def _target(have: DType, want: DType, path: str, raw: bool, drift: list[str]) -> DType:
    """The dtype to cast an inferred column to: the wire dtype, but open-ended JSON as it was inferred.

    A struct cast matches fields by name and fills those missing with nulls, so one cast per column
    does the whole job. Fields the wire schema does not name are listed in ``drift`` (a cast would
    drop them). Open-ended JSON stays as inferred; the tidy step makes it text where a table keeps text.
    """
    if have == pl.Null:
        return want
    if raw and want == pl.String:
        is_map = isinstance(have, pl.Struct) and path.rsplit(".", 1)[-1] in _MAPS and "cardDetails" not in path
        # Inference gives a key one type for the whole page: beside a float, 5 becomes 5.0 (and a big
        # integer loses digits); beside an integer, true becomes 1; beside a list, a scalar becomes a
        # list; objects get each other's keys. Only text, booleans and nulls are taken as inferred;
        # maps holding anything else are read exactly.
        if is_map and not all(f.dtype in (pl.String, pl.Boolean, pl.Null) for f in have.fields):  # type: ignore[union-attr]
            raise _Drift(path)
        return have
    if isinstance(want, pl.Struct):
        if not isinstance(have, pl.Struct):
            raise _Drift(path)
        present = {f.name: f.dtype for f in have.fields}
        drift.extend(f"{path}.{name}" for name in present if name not in {f.name for f in want.fields})
        return pl.Struct(
            {
                f.name: _target(present[f.name], f.dtype, f"{path}.{f.name}", f.name in _RAW_FIELDS, drift)
                if f.name in present
                # An absent open-ended field is Null, not String: answers tidied together then merge
                # it with another answer's inferred struct instead of forcing that struct into text.
                else (pl.Null() if f.name in _RAW_FIELDS and f.dtype == pl.String else f.dtype)
                for f in want.fields
            }
        )
    if isinstance(want, pl.List):
        if not isinstance(have, pl.List):
            raise _Drift(path)
        return pl.List(_target(have.inner, want.inner, f"{path}[]", raw, drift))
    # Widening only: an integer read as a float is exact; a float where an integer is documented
    # (even 5.0), or an integer where a boolean is, goes to the exact reader, which refuses it loudly
    # rather than truncate it or read 2 as true.
    widening = have.is_signed_integer() and (want == pl.Int64 or want == pl.Float64)
    # Any scalar may be text; an object or array may not (a cast would write "{1}", or null the page).
    as_text = want == pl.String and not isinstance(have, (pl.Struct, pl.List))
    if have == want or as_text or widening:
        return want
    raise _Drift(path)


# -- JSON from the wire, read defensively ------------------------------------------------------

# A \\uXXXX escape of half a surrogate pair, not part of a pair (after an even run of backslashes: an
# escaped backslash followed by "ud800" is text). polars reads one as "\\x00" and Python's encoders refuse
# it: it is kept as its six characters of text instead, so nothing is changed without trace.
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)((?:\\\\)*)(\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
# Python's parser and the slow paths recurse once per level, and polars takes time cubic in the depth
# (10 s for one page nesting 600 levels): deeper JSON is refused before either reads it. The
# documented shapes nest under 10 levels.
MAX_DEPTH = 128
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_NOT_BRACKET_OR_QUOTE = bytes(b for b in range(256) if b not in b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")  # the kind of bracket does not change the depth
_STEP = bytes.maketrans(b"[]", b"\x01\xff")


def escape_lone_surrogates(body: bytes) -> bytes:
    """``body`` with each lone surrogate escape written as text (``"\\ud800"`` -> the text ``\\ud800``)."""
    if not _SURROGATE_HINT.search(body):  # the common case: one scan, no copy
        return body
    return _LONE_SURROGATE.sub(rb"\1\\\2", body)


def too_deep(body: bytes) -> bool:
    """Whether the JSON text nests deeper than MAX_DEPTH (brackets inside strings do not count).

    On the hot path, so it works with whole-buffer byte operations, not a loop per byte: the
    brackets outside strings are kept (as ``[`` and ``]``), then innermost pairs removed, one level a pass.
    """
    if b'\\"' in body:  # an escaped quote: strings are found exactly, by regex (slower)
        brackets = _STRING.sub(b"", body).translate(_SQUARE, _NOT_BRACKET)
    else:  # every quote delimits a string: a string holding no bracket is left as "" and removed
        brackets = body.translate(_SQUARE, _NOT_BRACKET_OR_QUOTE).replace(b'""', b"")
        if b'"' in brackets:  # some string holds a bracket
            brackets = _STRING.sub(b"", body).translate(_SQUARE, _NOT_BRACKET)
    for removed in range(MAX_DEPTH + 1):
        if removed + len(brackets) <= MAX_DEPTH:
            return False
        shorter = brackets.replace(b"[]", b"")  # bytes.replace does not rescan what it joined: one level
        if len(shorter) == len(brackets):  # unbalanced (a body cut short): count the rest exactly
            steps = array.array("b", brackets.translate(_STEP))
            return removed + max(itertools.accumulate(steps), default=0) > MAX_DEPTH
        brackets = shorter
    return True


def _too_deep() -> WireTypeError:
    return WireTypeError(f"the body nests JSON more than {MAX_DEPTH} levels deep, which capframe does not read")


def loads(body: bytes) -> Any:
    """Python's JSON parser, refusing what it cannot read safely: nesting beyond MAX_DEPTH (WireTypeError:
    asking again gets the same), text that is not JSON (WireFormatError). Lone surrogates are kept as text;
    a key sent twice in an object keeps its first value."""
    if too_deep(body):
        raise _too_deep()
    try:
        return json.loads(escape_lone_surrogates(body), object_pairs_hook=_first_of_each_key)
    except ValueError:  # also: not UTF-8, an integer of more than 4,300 digits
        raise WireFormatError("the body is not valid JSON (truncated, or not JSON at all)") from None


def _first_of_each_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object sent with a key twice keeps the key's first value, as polars' reader does (Python's keeps
    the last): every reader gives the same table."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        document.setdefault(key, value)
    return document


def _read_pages(bodies: Sequence[bytes], schema: pl.Schema) -> tuple[pl.DataFrame, bool]:
    """Response bodies -> (a frame of the wire schema, one row per body; whether any holds unknown fields).

    Several bodies are read in one call, as one JSON array: per-call costs are then paid once.

    First :mod:`capframe._prototype`'s reader, which reads at about the cost of parsing the JSON
    and gives what the exact reader gives, or declines. Then polars' JSON reader with the page's
    own inferred schema (slower), one cast per column bringing it to the wire schema; open-ended
    JSON stays as inferred and the tidy step makes it text. Where inference meets values of
    clashing JSON types, or maps whose inferred types may not be their own, :func:`_read_exactly`
    reads the page; slower still.
    """
    if not all(body.lstrip().startswith(b"{") for body in bodies):
        raise WireFormatError("the body is not a JSON object")
    bodies = [escape_lone_surrogates(body) for body in bodies]
    prototype = _PROTOTYPES[id(schema)]
    read = prototype.read(bodies)
    if read is not None:
        return read, False
    # Deeper JSON than the prototype's makes it decline at once; the readers below are not so quick.
    if any(too_deep(body) for body in bodies):
        raise _too_deep()
    drift: list[str] = []
    try:
        page = pl.read_json(bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]")
        have = page.schema
        prototype.learn(have)
        page = page.select(
            # strict=False lets a struct cast add the fields a page lacks; _target allows only casts
            # that cannot fail on a value (same type, integer widening, to text).
            pl.col(name).cast(_target(have[name], want, name, name in _RAW_FIELDS, drift), strict=False)
            if name in have
            else pl.lit(None, dtype=want).alias(name)
            for name, want in schema.items()
        )
        drift.extend(name for name in have if name not in schema)
    except (pl.exceptions.PolarsError, _Drift):
        page = _read_exactly(bodies, schema)
        drift = ["?"]  # the exact reader drops unknown keys: let the slow path look for them
    if page.height != len(bodies):
        raise WireFormatError("the body is not a single JSON object")
    return page, bool(drift)


def _read_exactly(bodies: Sequence[bytes], schema: pl.Schema) -> pl.DataFrame:
    """The exact path, for pages whose JSON types clash: Python's JSON parser, each open-ended value
    turned into its own JSON text, and polars building the frame strictly (a float where an integer
    is documented is refused, not truncated). Slow, and rare."""
    rows = []
    for body in bodies:
        document = loads(body)
        if not isinstance(document, dict):
            raise WireFormatError("the body is not a JSON object")
        rows.append(
            {name: _as_wire(document.get(name), dtype, name in _RAW_FIELDS, name) for name, dtype in schema.items()}
        )
    try:
        return pl.DataFrame(rows, schema=schema, strict=True)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        raise WireTypeError(f"the body does not have the documented types ({exc.__class__.__name__})") from None


def _as_wire(value: Any, dtype: DType, raw: bool, path: str) -> Any:
    """A parsed JSON value -> what the wire dtype holds: open-ended JSON as its text."""
    if value is None:
        return None
    if raw and dtype == pl.String:
        return value if isinstance(value, str) else compact_json(value)
    if isinstance(dtype, pl.Struct) and isinstance(value, dict):
        return {
            f.name: _as_wire(value.get(f.name), f.dtype, f.name in _RAW_FIELDS, f"{path}.{f.name}")
            for f in dtype.fields
        }
    if isinstance(dtype, pl.List) and isinstance(value, list):
        return [_as_wire(element, dtype.inner, raw, f"{path}[]") for element in value]
    # The same conversions as the fast path, and no others: integers widen to floats, scalars may be
    # text; a float where an integer is documented, or a number where a boolean is, is refused.
    if isinstance(value, (dict, list)) or isinstance(dtype, (pl.Struct, pl.List)):
        raise _wrong_type(value, dtype, path)
    if dtype == pl.Float64 and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if dtype == pl.String and not isinstance(value, str):
        return compact_json(value)
    if (dtype == pl.Int64 and not isinstance(value, int)) or (isinstance(value, bool) != (dtype == pl.Boolean)):
        raise _wrong_type(value, dtype, path)
    return value


def _wrong_type(value: Any, dtype: DType, path: str) -> WireTypeError:
    """Says where, and which JSON type was sent; never the value, which may be personal data."""
    kinds = {bool: "boolean", str: "string", float: "float", int: "integer", dict: "object", list: "array"}
    documented = "an object" if isinstance(dtype, pl.Struct) else "an array" if isinstance(dtype, pl.List) else dtype
    return WireTypeError(f"a JSON {kinds.get(type(value), 'value')} at {path} where {documented} is documented")


def whole_object(body: bytes) -> bytes:
    """``body``, if it may be a JSON object: a cheap check at arrival for a body read later (one cut
    short, empty or HTML is asked again at once); the read finds the rest."""
    if not (body.lstrip()[:1] == b"{" and body.rstrip()[-1:] == b"}"):
        raise WireFormatError("the body is not a JSON object (truncated, or not JSON at all)")
    return body


def customer_entities(bodies: Sequence[bytes]) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """Get Customers Bulk responses -> (entity frame, request-level errors and warnings, drift)."""
    page, drift = _read_pages(bodies, CUSTOMERS_PAGE)
    return _customer_items(page), _request_level(page), drift


def customer_entities_together(bodies: Sequence[bytes]) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """Get Customers Bulk responses of several requests read in one call -> (entity frame with the
    ``_body`` each entity came from, request-level errors and warnings); None where the prototype
    reader cannot vouch for them (the caller reads each body alone, as :func:`customer_entities`).

    The prototype reader only: the inferred reader would infer one schema for all the bodies, and a
    body's open-ended values would take types of another's (5 written 5.0 beside a float).
    """
    if not all(body.lstrip().startswith(b"{") for body in bodies):
        return None
    page = _PROTOTYPES[id(CUSTOMERS_PAGE)].read([escape_lone_surrogates(body) for body in bodies])
    if page is None:
        return None
    try:
        return _customer_items(page, numbered=True), _request_level(page)
    except WireFormatError:
        return None


def _customer_items(page: pl.DataFrame, *, numbered: bool = False) -> pl.DataFrame:
    """A page frame's items as entity rows (``numbered``: with the ``_body`` each came from)."""
    if page["data"].null_count():
        raise WireFormatError('the body has no "data" array')
    keep = ["_body"] if numbered else []
    if numbered:
        page = page.with_row_index("_body")
    items = page.select(*keep, "data").explode("data", empty_as_null=False, keep_nulls=False)
    entities = items.unnest("data").unnest("entity").rename({"id": "customer_id"})
    if entities["customer_id"].null_count():
        raise WireFormatError("an entity in the body has no id")
    return entities.select(*keep, *ENTITY_COLUMNS.names())


def children_entities(body: bytes) -> tuple[pl.DataFrame, pl.DataFrame, bool, bool]:
    """One hierarchy page -> (entity frame, request-level errors and warnings, success, drift)."""
    page, drift = _read_pages([body], CHILDREN_PAGE)
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
    request_level = pl.concat([_request_level(page), _request_level(entity)])
    return children, request_level, success, drift


def _request_level(frame: pl.DataFrame) -> pl.DataFrame:
    """A page's errors and warnings, each warning as its JSON text. Warnings are undocumented: one
    page may send objects and the next text, and stacked as read, polars would write an object as
    "{1}" or refuse. They are a few per page, so Python writes them, unless all are text or null (most
    pages: then building them in Python was a tenth of a read's time outside polars)."""
    if frame.schema["warnings"] in (pl.List(pl.Null), pl.List(pl.String)):
        return frame.select("errors", pl.col("warnings").cast(pl.List(RAW)).fill_null(pl.lit([], dtype=pl.List(RAW))))
    texts = [
        [w if w is None or isinstance(w, str) else compact_json(w) for w in warnings or ()]
        for warnings in frame["warnings"].to_list()
    ]
    return frame.select("errors", pl.Series("warnings", texts, dtype=pl.List(RAW)))


# -- schema drift: the slow path, for a page with fields the schema does not name ----------------


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

    The slow path, taken only for a page whose schema names keys the wire schema does not.
    """
    document = loads(body)
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
    seen: set[int | None] = set()
    for item in items:
        customer_id = _item_id(item, children=children)
        if customer_id in seen and customer_id is not None:
            continue  # an entity sent twice keeps its first answer, here as in every table
        seen.add(customer_id)
        found: list[tuple[str, Any]] = []
        _walk(item, item_dtype, prefix, found)
        rows.extend((customer_id, path, compact_json(value)) for path, value in found)
    # Unknown keys outside the items: at the page level.
    top: list[tuple[str, Any]] = []
    page_dtype = pl.Struct({k: v for k, v in schema.items() if k != ("entity" if children else "data")})
    _walk({k: v for k, v in document.items() if k != ("entity" if children else "data")}, page_dtype, "", top)
    if children:
        entity_dtype = CHILDREN_PAGE["entity"]
        entity = {k: v for k, v in (document.get("entity") or {}).items() if k != "customers"}
        _walk(entity, entity_dtype, "entity", top)
    rows.extend((None, path, compact_json(value)) for path, value in top)
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.Int64, "name": pl.String, "value": pl.String},
        orient="row",
    )


def compact_json(value: Any) -> str:
    """Compact JSON text, keys sorted and null members left out, as :func:`json_text` writes it."""
    return json.dumps(_drop_null_members(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _drop_null_members(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_null_members(inner) for key, inner in value.items() if inner is not None}
    if isinstance(value, list):
        return [_drop_null_members(element) for element in value]
    return value


def _item_id(item: Any, *, children: bool) -> int | None:
    try:
        if children:
            return int(item["profiles"][0]["userId"])
        return int(item["entity"]["id"])
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):  # OverflowError: an id of 1e999
        return None
