"""The prototype reader (capframe._prototype) gives what the exact reader gives, or declines.

The exact reader (Python's JSON parser, each value checked against the wire schema) is the
reference: every page of the sandbox, of both endpoints, and hostile pages are tidied once through
the reader capframe uses (the prototype, falling back to the inferred and the exact reader) and
once through the exact reader alone, and the tables must be equal, frame for frame. On sandbox
pages the prototype must also be the reader that read them (else the comparison proves nothing
about it); on hostile pages it must decline wherever polars would coerce.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import capframe
from capframe import _customers, _prototype, _tidy, _wire
from capframe._answers import answer, tidy_answers
from capframe.sandbox import Sandbox
from tests.test_drift import FAILED_ITEM, SEED_ITEM, page_of, seed_item

Tables = dict[str, pl.DataFrame]


def exactly(bodies: Sequence[bytes], schema: pl.Schema) -> tuple[pl.DataFrame, bool]:
    """capframe._wire._read_pages with the exact reader only (its checks first, as there)."""
    if not all(body.lstrip().startswith(b"{") for body in bodies):
        raise _wire.WireFormatError("the body is not a JSON object")
    bodies = [_wire.escape_lone_surrogates(body) for body in bodies]
    if any(_wire.too_deep(body) for body in bodies):
        raise _wire._too_deep()
    page = _wire._read_exactly(bodies, schema)
    if page.height != len(bodies):
        raise _wire.WireFormatError("the body is not a single JSON object")
    return page, True  # the exact reader drops unknown keys: recover_unknown looks for them


def customer_tables(bodies: Sequence[bytes]) -> Tables:
    return _customers.tidy_customer_answers([_customers.read_customers(bodies)]).tables


def children_tables(bodies: Sequence[bytes]) -> Tables:
    (body,) = bodies
    entities, request_level, _, drift = _wire.children_entities(body)
    entities = entities.with_columns(parent_type=pl.lit("mobile"), parent_value=pl.lit("1"))
    read = answer([body], entities, request_level, drift, children=True)
    return tidy_answers([read], main="children", main_table=_tidy.child_table).tables


def both_ways(
    monkeypatch: pytest.MonkeyPatch, tables: Callable[[Sequence[bytes]], Tables], bodies: list[bytes]
) -> None:
    """The tables through capframe's reader equal those through the exact reader (or both refuse)."""
    try:
        got: Tables | type[Exception] = tables(bodies)
    except _wire.WireFormatError as exc:
        got = type(exc)
    with monkeypatch.context() as patched:
        patched.setattr(_wire, "_read_pages", exactly)
        try:
            expected: Tables | type[Exception] = tables(bodies)
        except _wire.WireFormatError as exc:
            expected = type(exc)
    if isinstance(expected, dict) and isinstance(got, dict):
        assert got.keys() == expected.keys()
        for name in expected:
            assert_frame_equal(got[name], expected[name], check_dtypes=True)
    else:
        assert got == expected


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each call of a Prototype's read read its bodies (True) or declined (False)."""
    seen: list[bool] = []
    original = _prototype.Prototype.read

    def spy(self: _prototype.Prototype, bodies: Sequence[bytes]) -> pl.DataFrame | None:
        page = original(self, bodies)
        seen.append(page is not None)
        return page

    monkeypatch.setattr(_prototype.Prototype, "read", spy)
    return seen


# -- every page of the sandbox ---------------------------------------------------------------------


def _sandbox_customer_pages(source: str) -> Iterator[bytes]:
    sandbox = Sandbox()
    headers = {"Authorization": _basic()}
    ids = [*sandbox.customer_ids(), *sandbox.pii_deleted_ids(), *sandbox.unknown_ids(100)]
    url = f"{Sandbox.BASE_URL}/v2/bulk/getCustomers?source={source}"
    for start in range(0, len(ids), 100):
        response = sandbox.handle(httpx.Request("POST", url, json=ids[start : start + 100], headers=headers))
        assert response.status_code == 200
        yield response.content


def _sandbox_children_pages() -> Iterator[bytes]:
    sandbox = Sandbox()
    headers = {"Authorization": _basic()}
    for family in sandbox.families():
        for offset in range(0, len(family.child_ids) + 1, sandbox.max_page_size):
            params = {
                "associationEntityType": family.entity_type,
                "associationEntityIdentifierType": family.identifier_type,
                "associationEntityIdentifierValue": family.identifier_value,
                "limit": str(sandbox.max_page_size),
                "offset": str(offset),
                "includeNoOfChildren": "true",
                "includeCustomerAssociateDetail": "true",
            }
            request = httpx.Request("GET", f"{Sandbox.BASE_URL}/v2/customers/bulk", params=params, headers=headers)
            response = sandbox.handle(request)
            assert response.status_code == 200
            yield response.content


def _basic() -> str:
    import base64
    import hashlib

    digest = hashlib.md5(Sandbox.PASSWORD.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{Sandbox.USERNAME}:{digest}".encode()).decode()


@pytest.fixture
def fresh_prototypes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prototypes that have learnt nothing yet: what other tests taught the shared ones (thousands of
    generated keys reach the learning bound) must not make this test's outcome depend on the order."""
    fresh = {key: _prototype.Prototype(p._wire, raw=p._raw, maps=p._maps) for key, p in _wire._PROTOTYPES.items()}
    monkeypatch.setattr(_wire, "_PROTOTYPES", fresh)


# One case per endpoint and source (the three run on any free worker): the prototype learns from
# the pages it is then checked on, by reading them (tidying them teaches it nothing more).
@pytest.mark.usefixtures("fresh_prototypes")
@pytest.mark.parametrize(
    ("pages", "learn", "tables"),
    [
        (partial(_sandbox_customer_pages, "INSTORE"), lambda body: _wire.customer_entities([body]), customer_tables),
        (partial(_sandbox_customer_pages, "WECHAT"), lambda body: _wire.customer_entities([body]), customer_tables),
        (_sandbox_children_pages, _wire.children_entities, children_tables),
    ],
    ids=["customers INSTORE", "customers WECHAT", "children"],
)
def test_every_sandbox_page_is_read_by_the_prototype_as_the_exact_reader_reads_it(
    monkeypatch: pytest.MonkeyPatch,
    reads: list[bool],
    pages: Callable[[], Iterator[bytes]],
    learn: Callable[[bytes], object],
    tables: Callable[[Sequence[bytes]], Tables],
) -> None:
    bodies = list(pages())
    for body in bodies:  # the prototype learns the sandbox's open-ended fields
        learn(body)
    reads.clear()
    for body in bodies:
        both_ways(monkeypatch, tables, [body])
    assert len(reads) == len(bodies)
    assert all(reads), f"the prototype declined {reads.count(False)} of {len(bodies)} sandbox pages"


# -- hostile pages ---------------------------------------------------------------------------------


def _with(path: Sequence[str | int], value: Any, item: dict[str, Any] | None = None) -> dict[str, Any]:
    item = copy.deepcopy(item or SEED_ITEM)
    target: Any = item
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return item


_PROFILE = ("entity", "profiles", 0)
_CARD = {
    "cardNumber": "C1",
    "cardId": 5,
    "statusInfo": {"label": "Active", "labelId": 1, "isActive": True, "actions": []},
    "extendedFields": {},
}
HOSTILE: dict[str, bytes] = {
    "seed page": page_of(copy.deepcopy(FAILED_ITEM), seed_item()),
    "unknown key in an entity": page_of(seed_item(zqTier="GOLD")),
    "unknown key at the top": page_of(seed_item(), zqNext="x"),
    "unknown key in a profile": page_of(_with([*_PROFILE, "zqNew"], {"a": [1, 2.5]})),
    "nulls everywhere": page_of(
        _with(["entity", "loyaltyInfo"], None, _with([*_PROFILE, "firstName"], None)), warnings=None, errors=None
    ),
    "entity of nulls": page_of(
        {"entity": {"id": 9, "profiles": None, "segments": None, "extendedFields": None}, "errors": None}
    ),
    "huge integer in an id": page_of(seed_item(id=2**64 + 5)),
    "19-digit id": page_of(seed_item(id=2**62 + 1)),
    "huge integer in a map": page_of(_with([*_PROFILE, "fields"], {"n": 10**30})),
    "1e20 in an integer field": page_of(_with([*_PROFILE, "userId"], 1e20)),
    "float in an integer field": page_of(_with([*_PROFILE, "userId"], 565338404.0)),
    "fraction in an integer field": page_of(_with([*_PROFILE, "userId"], 2.5)),
    "boolean in an integer field": page_of(_with([*_PROFILE, "userId"], True)),
    "boolean in a float field": page_of(seed_item(loyaltyInfo={"lifetimePurchases": True})),
    "string in an integer field": page_of(_with([*_PROFILE, "userId"], "7")),
    "int and float flip": page_of(
        seed_item(loyaltyInfo={"lifetimePurchases": 230, "score": 5.0}),
        seed_item(id=7, loyaltyInfo={"lifetimePurchases": 2400.0, "score": 3}),
    ),
    "float in a text field": page_of(_with([*_PROFILE, "firstName"], 5.0)),
    "integer and boolean in text fields": page_of(
        _with([*_PROFILE, "lastName"], True, _with([*_PROFILE, "firstName"], 7))
    ),
    "floats in a map": page_of(_with([*_PROFILE, "fields"], {"a": 5.0, "b": 1e20, "c": 1.5e-7, "d": -0.0})),
    "numbers and booleans in a map": page_of(_with([*_PROFILE, "fields"], {"a": 5, "b": True, "c": "x", "d": None})),
    "a float keyed like a float field in a map": page_of(_with([*_PROFILE, "fields"], {"score": 5.0})),
    "nested values in a map": page_of(_with([*_PROFILE, "fields"], {"address": {"city": "Pune"}, "tags": [1]})),
    "map sent as text": page_of(seed_item(extendedFields="free text")),
    "number in JSON kept as text": page_of(
        seed_item(cardDetails=[_with(["statusInfo", "label"], 5, {"statusInfo": copy.deepcopy(_CARD["statusInfo"])})])
    ),
    "boolean in JSON kept as text": page_of(
        seed_item(
            cardDetails=[_with(["statusInfo", "label"], False, {"statusInfo": copy.deepcopy(_CARD["statusInfo"])})]
        )
    ),
    "float in JSON kept as text": page_of(
        seed_item(
            cardDetails=[_with(["statusInfo", "labelId"], 2.5, {"statusInfo": copy.deepcopy(_CARD["statusInfo"])})]
        )
    ),
    "a card": page_of(seed_item(cardDetails=[copy.deepcopy(_CARD)])),
    "a card without statusInfo beside one with": page_of(
        seed_item(cardDetails=[copy.deepcopy(_CARD), {"cardNumber": "C2"}])
    ),
    "scalar where a list is": page_of(seed_item(cardDetails={"cardNumber": "C1"})),
    "object where text is": page_of(_with([*_PROFILE, "firstName"], {"given": "M"})),
    "a warning that is text": page_of(_with(["warnings"], "careful")),
    "warnings as objects": page_of(_with(["warnings"], [{"code": 1, "message": "m"}]), warnings=[{"a": 1}]),
    "deep nesting": b'{"data":[{"entity":{"id":1,"extendedFields":{"a":' + b"[" * 300 + b"]" * 300 + b"}}}]}",
    "deep nesting in an unknown key": b'{"data":[],"zq":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "lone surrogate": page_of(_with([*_PROFILE, "firstName"], "a\ud800b")),
    "surrogate pair": page_of(_with([*_PROFILE, "firstName"], "a\U0001f600b")),
    "offsets": page_of(
        _with([*_PROFILE, "autoUpdateTime"], "2025-09-15T09:29:33+05:30"),
        _with([*_PROFILE, "autoUpdateTime"], "2025-09-15T09:29:33.123-08:00", seed_item(id=7)),
    ),
    "escaped key": page_of(seed_item()).replace(b'"userId"', b'"user\\u0049d"'),
    "escaped quote in a key of a map": page_of(_with([*_PROFILE, "fields"], {'a"b': 5.0})),
    "float in a string": page_of(_with([*_PROFILE, "firstName"], "x:1.5,")),
    "entity sent twice": page_of(seed_item(zqA=1), seed_item(zqA=1)),
    "a key sent twice in an object": page_of(seed_item()).replace(
        b'"firstName": "Muhammad"', b'"firstName": "A", "firstName": "B"'
    ),
    "a key sent twice in a map": page_of(seed_item(extendedFields={"city": "Pune"})).replace(
        b'"city": "Pune"', b'"city": "Pune", "city": "Goa"'
    ),
    "not an object": b"[1,2]",
    "two objects": page_of(seed_item()) + page_of(seed_item()),
    "truncated": page_of(seed_item())[:-5],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_page_gives_the_exact_readers_tables_or_its_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    both_ways(monkeypatch, customer_tables, [HOSTILE[name]])


def test_hostile_pages_read_together_give_the_exact_readers_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    readable = []
    for body in HOSTILE.values():
        try:
            exactly([body], _wire.CUSTOMERS_PAGE)
        except _wire.WireFormatError:
            continue
        readable.append(body)
    for start in range(0, len(readable), 5):
        group = readable[start : start + 5]
        try:
            customer_tables(group)
        except _wire.WireFormatError:
            continue  # types that clash across pages: a fetch reads each answer alone
        both_ways(monkeypatch, customer_tables, group)


# -- what the prototype declines -------------------------------------------------------------------


def _learnt() -> _prototype.Prototype:
    prototype = _prototype.Prototype(_wire.CUSTOMERS_PAGE, raw=_wire._RAW_FIELDS, maps=_wire._MAPS)
    page = page_of(_with([*_PROFILE, "fields"], {"gender": "F", "n": 5}, seed_item(cardDetails=[copy.deepcopy(_CARD)])))
    prototype.learn(pl.read_json(page).schema)
    assert prototype.read([page]) is not None
    return prototype


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(page_of(seed_item(zqNew=1)), id="an unknown key"),
        pytest.param(page_of(_with([*_PROFILE, "fields"], {"other": "x"})), id="a map key not learnt yet"),
        pytest.param(page_of(_with([*_PROFILE, "userId"], 5.0)), id="5.0 where an integer is"),
        pytest.param(page_of(_with([*_PROFILE, "userId"], True)), id="true where an integer is"),
        pytest.param(page_of(_with([*_PROFILE, "userId"], 2**63)), id="an integer beyond 64 bits"),
        pytest.param(page_of(seed_item(loyaltyInfo={"score": False})), id="false where a float is"),
        pytest.param(page_of(_with([*_PROFILE, "firstName"], 5.0)), id="5.0 where text is"),
        pytest.param(page_of(_with([*_PROFILE, "fields"], {"gender": 2.5})), id="a float in a map"),
        pytest.param(
            page_of(seed_item(cardDetails=[_with(["statusInfo", "label"], 5, copy.deepcopy(_CARD))])),
            id="a number where JSON kept as text has text",
        ),
        pytest.param(
            page_of(seed_item(cardDetails=[_with(["statusInfo", "label"], True, copy.deepcopy(_CARD))])),
            id="a boolean where JSON kept as text has text",
        ),
        pytest.param(page_of(seed_item()).replace(b'"firstName"', b'"first\\u004eame"'), id="a key with an escape"),
        pytest.param(b"\xff" + page_of(seed_item()), id="not UTF-8"),
    ],
)
def test_the_prototype_declines_what_polars_would_coerce(body: bytes) -> None:
    assert _learnt().read([body]) is None


def test_the_prototype_reads_what_it_learnt_and_numbers_and_booleans_in_a_map_as_text() -> None:
    body = page_of(_with([*_PROFILE, "fields"], {"gender": True, "n": "x"}), seed_item(id=7))
    page = _learnt().read([body])
    assert page is not None
    fields = page["data"].explode().struct.field("entity").struct.field("profiles").explode().struct.field("fields")
    assert fields.to_list() == [{"gender": "true", "n": "x"}, {"gender": None, "n": None}]


def test_the_prototype_learns_no_float_and_no_list_of_scalars_in_json_kept_as_text() -> None:
    prototype = _learnt()
    before = prototype._state.schema
    for status in ({"labelId": 2.5}, {"actions": ["a"]}):
        card = _with(["statusInfo"], status, copy.deepcopy(_CARD))
        prototype.learn(pl.read_json(page_of(seed_item(cardDetails=[card]))).schema)
    assert prototype._state.schema == before


def test_rows_unknown_to_the_prototype_are_still_kept_as_unrecognised(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = customer_tables([page_of(seed_item(zqTier="GOLD"))])
    assert tables["fields"].filter(pl.col("scope") == "unrecognised")["value"].to_list() == [json.dumps("GOLD")]


@pytest.mark.xfail(
    strict=True,
    reason="known, not fixed: bodies read together are one JSON array, so a body cut short can be completed by "
    "the next (and one holding two objects fill the gap): one row per body, though none is JSON alone. Telling "
    "needs each body's brackets counted outside its strings, a few regex passes over every body",
)
def test_bodies_that_are_no_json_alone_are_refused_though_together_they_make_one_row_each() -> None:
    two_objects = b'{"data":[{"entity":{"id":1},"errors":[],"success":true}]},{"data":[]}'
    cut_in_a_string = b'{"data":[{"entity":{"id":3,"associatedWith":"}'
    its_end = b'{"},"errors":[],"success":true}]}'
    with pytest.raises(capframe.InvalidArgumentError, match="page 0"):
        capframe.tidy_customers([two_objects, cut_in_a_string, its_end])


@pytest.mark.parametrize(
    ("dtype", "warnings"),
    [
        (pl.List(pl.String), [["a warning", None], None, []]),
        (pl.List(pl.Null), [[None], None, []]),
        (pl.List(pl.Struct({"code": pl.Int64})), [[{"code": 5}, None], None, []]),
    ],
)
def test_request_level_warnings_are_text_as_python_writes_them(dtype: pl.DataType, warnings: list[Any]) -> None:
    """Warnings read as text or nulls are taken as read (no Python per page); others are written by
    Python: either way, each warning as compact_json writes it, and a missing list empty."""
    frame = pl.DataFrame(
        {"errors": [[], None, []], "warnings": warnings},
        schema={"errors": _wire.CUSTOMERS_PAGE["errors"], "warnings": dtype},
    )
    written = [
        [w if w is None or isinstance(w, str) else _wire.compact_json(w) for w in page or ()]
        for page in frame["warnings"].to_list()
    ]
    expected = frame.select("errors", pl.Series("warnings", written, dtype=pl.List(pl.String)))
    assert_frame_equal(_wire._request_level(frame), expected)
