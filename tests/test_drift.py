"""Schema drift: whatever shape Get Customers Bulk takes next, the tables stay valid and nothing is lost.

Response bodies are generated from the documented example entity (the seed page) and bent the
ways real APIs drift: new fields at every level, optional fields missing or null, empty objects,
numbers flipping between int and float, timestamps with ``Z`` and with offsets, identifier types
in other cases, several profiles per customer, entities repeated. For every body:

* ``tidy_customers`` returns tables that pass their pandera models;
* ``customers`` has one row per distinct entity id, in order of first appearance;
* every key capframe does not know is a row of ``fields`` (scope ``unrecognised``, its JSON path and
  its JSON value) and a ``SchemaDriftWarning`` says so; nothing else is reported as drift;
* every identifier sent is a row of ``identifiers``, its type in one spelling, the raw type kept;
* every timestamp is the UTC instant of what was sent; numbers keep their value;
* every key and value of the open-ended maps (fields, allFields, extendedFields, segments) is kept.
"""

from __future__ import annotations

import copy
import json
import string
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import capframe
from capframe import schemas
from capframe._wire import _without_null_members  # tested on its own, below

# The successful entity of the documented example (seed page 000), as sent.
SEED_ITEM: dict[str, Any] = {
    "entity": {
        "id": 565338404,
        "profiles": [
            {
                "firstName": "Muhammad",
                "lastName": "Johns",
                "fields": {},
                "allFields": {},
                "identifiers": [
                    {"type": "mobile", "value": "912726093529"},
                    {"type": "email", "value": "[email protected]"},
                    {"type": "externalId", "value": "00008572"},
                ],
                "commChannels": [
                    {
                        "type": "mobile",
                        "value": "912726093529",
                        "primary": True,
                        "verified": False,
                        "meta": {"residence": False, "office": False},
                        "attributes": {},
                    },
                ],
                "source": "INSTORE",
                "userId": 565338404,
                "accountId": "",
                "conflictingProfileList": [],
                "autoUpdateTime": "2025-09-15T09:29:33Z",
                "identifiersAll": [
                    {"type": "mobile", "value": "912726093529"},
                    {"type": "email", "value": "[email protected]"},
                    {"type": "externalId", "value": "00008572"},
                ],
            }
        ],
        "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 0.000},
        "segments": {},
        "associatedWith": "tj_capillary",
        "extendedFields": {},
        "cardDetails": [],
    },
    "warnings": [],
    "errors": [],
    "success": True,
}
FAILED_ITEM: dict[str, Any] = {
    "entity": {
        "id": 564332013,
        "profiles": [],
        "loyaltyInfo": {"loyaltyType": "loyalty"},
        "segments": {},
        "extendedFields": {},
    },
    "warnings": [],
    "errors": [{"status": False, "code": 8109, "message": "Customer is deleted after PII delete request"}],
    "success": False,
}

# The one spelling of each identifier type (capillary-api.md section 6); other types are kept as sent.
CANONICAL = {
    t.lower(): t
    for t in (
        "mobile", "email", "externalId", "cardnumber", "cardExternalId", "wechat",
        "martjackId", "fbId", "cuid", "unionId", "line",
    )
}  # fmt: skip
ID_TYPES = (
    "mobile", "MOBILE", "email", "Email", "externalId", "externalid", "EXTERNALID",
    "cardNumber", "cardnumber", "CARDNUMBER", "cardExternalId", "unionId", "cuid", "wechat", "loyaltyCard",
)  # fmt: skip
OFFSETS = {
    "Z": UTC,
    "+00:00": UTC,
    "+05:30": timezone(timedelta(hours=5, minutes=30)),
    "-08:00": timezone(timedelta(hours=-8)),
    "+08:00": timezone(timedelta(hours=8)),
    "-03:30": timezone(timedelta(hours=-3, minutes=-30)),
}
TABLE_MODELS = capframe.CustomerTables.MODELS

# --- strategies ---

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def names(prefix: str, alphabet: str, max_size: int) -> st.SearchStrategy[str]:
    """``prefix[alphabet]{0,max_size}``: what st.from_regex draws, at a third of its cost per draw."""
    return st.text(alphabet, max_size=max_size).map(prefix.__add__)


# Names no version of the wire schema uses: a new field the API starts sending.
unknown_names = names("zq", string.ascii_letters + string.digits + "_", 8)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(names("k", string.ascii_lowercase, 4), inner, max_size=3)
    ),
    max_leaves=6,
)
# Open-ended maps: keys that are never keys of the wire schema, scalar values. Backslashes and control
# characters are left out here: test_a_backslash_in_a_field_... and test_a_control_character_... test them.
map_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"), max_size=12)
# A key keeps one JSON type across customers, except text and integers (fm...), which mix safely; keys whose
# values mix booleans, integers and floats across customers are test_a_number_in_a_field_keeps_its_value's.
_ints = st.integers(-(10**12), 10**12)


# Built once: a strategy built inside a draw is validated again at every draw (most of this module's time).
_map_parts = [
    st.dictionaries(names(prefix, string.ascii_lowercase + "_", 3), st.none() | values, max_size=2)
    for prefix, values in (("fi", _ints), ("fb", st.booleans()), ("ft", map_text), ("fm", _ints | map_text))
]


@st.composite
def maps(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for part in _map_parts:
        result |= draw(part)
    return result


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, datetime]:
    """An ISO-8601 timestamp as the API writes it, and the instant it means."""
    suffix = draw(st.sampled_from(sorted(OFFSETS)))
    local = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31)))
    digits = draw(st.sampled_from([0, 0, 3, 6]))
    local = local.replace(microsecond=local.microsecond // 10 ** (6 - digits) * 10 ** (6 - digits) if digits else 0)
    fraction = f".{local.microsecond:06d}"[: digits + 1] if digits else ""
    written = local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + suffix
    return written, local.replace(tzinfo=OFFSETS[suffix]).astimezone(UTC)


_unknown_name_lists = st.lists(unknown_names, max_size=2, unique=True)


class Drift:
    """The unknown keys put into one body: (customer id or None, JSON path, value)."""

    def __init__(self) -> None:
        self.added: list[tuple[int | None, str, str]] = []

    def maybe_add(self, draw: st.DrawFn, obj: dict[str, Any], customer_id: int | None, path: str) -> None:
        for name in draw(_unknown_name_lists):
            if name in obj:
                continue
            value = draw(json_values)
            obj[name] = value
            self.added.append(
                (
                    customer_id,
                    f"{path}.{name}" if path else name,
                    json_text(value),
                )
            )


def json_text(value: Any, sort_keys: bool = True) -> str:
    """JSON as capframe writes it as text: compact, keys sorted, members whose value is null left out."""
    return json.dumps(without_nulls(value), ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return [without_nulls(v) for v in value] if isinstance(value, list) else value


def maybe_drop_or_null(draw: st.DrawFn, obj: dict[str, Any], optional: tuple[str, ...]) -> None:
    for key in optional:
        how = draw(st.sampled_from(["keep", "keep", "keep", "drop", "null"]))
        if how == "drop":
            obj.pop(key, None)
        elif how == "null":
            obj[key] = None


@st.composite
def identifiers(draw: st.DrawFn) -> dict[str, Any]:
    identifier: dict[str, Any] = {"type": draw(st.sampled_from(ID_TYPES)), "value": draw(text)}
    if draw(st.booleans()):
        identifier["seriesId"] = draw(st.integers(1, 10**6))
        identifier["statusLabel"] = draw(st.sampled_from(["ACTIVE", "active", "Suspended"]))
    maybe_drop_or_null(draw, identifier, ("type", "value"))
    return identifier


@st.composite
def profiles(draw: st.DrawFn, customer_id: int, drift: Drift) -> tuple[dict[str, Any], datetime | None]:
    profile = copy.deepcopy(SEED_ITEM["entity"]["profiles"][0])
    written, instant = draw(timestamps())
    profile.update(
        firstName=draw(text),
        lastName=draw(text),
        fields=draw(maps()),
        allFields=draw(maps()),
        identifiers=draw(st.lists(identifiers(), max_size=4)),
        identifiersAll=draw(st.lists(identifiers(), max_size=4)),
        source=draw(st.sampled_from(["INSTORE", "WECHAT", "MARTJACK"])),
        userId=customer_id,
        autoUpdateTime=written,
    )
    for channel in profile["commChannels"]:
        channel["meta"] = draw(st.sampled_from([{}, {"residence": True, "office": False}, None]))
    maybe_drop_or_null(
        draw,
        profile,
        ("firstName", "lastName", "fields", "allFields", "identifiers", "commChannels", "source", "userId",
         "accountId", "conflictingProfileList", "autoUpdateTime", "identifiersAll"),
    )  # fmt: skip
    path = "data[].entity.profiles[]"
    for identifier in profile.get("identifiers") or []:
        drift.maybe_add(draw, identifier, customer_id, f"{path}.identifiers[]")
    for channel in profile.get("commChannels") or []:
        if isinstance(channel["meta"], dict):
            drift.maybe_add(draw, channel["meta"], customer_id, f"{path}.commChannels[].meta")
        drift.maybe_add(draw, channel, customer_id, f"{path}.commChannels[]")
    drift.maybe_add(draw, profile, customer_id, path)
    return profile, instant if profile.get("autoUpdateTime") else None


@st.composite
def items(draw: st.DrawFn, customer_id: int, drift: Drift) -> dict[str, Any]:
    if draw(st.integers(0, 5)) == 0:
        item = copy.deepcopy(FAILED_ITEM)
        item["entity"]["id"] = customer_id
    else:
        item = copy.deepcopy(SEED_ITEM)
        entity = item["entity"]
        entity["id"] = customer_id
        drawn = [draw(profiles(customer_id, drift)) for _ in range(draw(st.integers(1, 3)))]
        entity["profiles"] = [p for p, _ in drawn]
        item["_instants"] = [t for _, t in drawn]
        purchases = draw(st.integers(0, 10**7))
        entity["loyaltyInfo"] = draw(
            st.sampled_from(
                [
                    {"loyaltyType": "loyalty", "lifetimePurchases": purchases},  # 230
                    {"loyaltyType": "loyalty", "lifetimePurchases": float(purchases), "score": purchases % 1000},
                    {"loyaltyType": "non_loyalty", "lifetimePurchases": purchases / 8, "score": float(purchases % 7)},
                    {},
                ]
            )
        )
        entity["segments"] = {f"s{k}": v for k, v in draw(maps()).items() if v is not None}
        entity["extendedFields"] = draw(maps())
        maybe_drop_or_null(draw, entity, ("loyaltyInfo", "segments", "associatedWith", "extendedFields", "cardDetails"))
        if isinstance(entity.get("loyaltyInfo"), dict):
            drift.maybe_add(draw, entity["loyaltyInfo"], customer_id, "data[].entity.loyaltyInfo")
        drift.maybe_add(draw, entity, customer_id, "data[].entity")
        if draw(st.booleans()):
            item["success"] = None  # success missing: no errors means it worked
    drift.maybe_add(draw, item, customer_id, "data[]")
    return item


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]], Drift]:
    """A Get Customers Bulk body, the items as sent, and the unknown keys in it."""
    drift = Drift()
    ids = draw(st.lists(st.integers(1, 2**62), min_size=1, max_size=3, unique=True))
    sent = [draw(items(customer_id, drift)) for customer_id in ids]
    page: dict[str, Any] = {"data": [{k: v for k, v in item.items() if k != "_instants"} for item in sent]}
    if draw(st.booleans()) and not any(c == ids[0] for c, _, _ in drift.added):  # an entity sent twice
        page["data"].insert(draw(st.integers(1, len(page["data"]))), copy.deepcopy(page["data"][0]))
    page["warnings"], page["errors"] = [], []
    drift.maybe_add(draw, page, None, "")
    indent = draw(st.sampled_from([None, 4]))
    body = json.dumps(page, indent=indent, ensure_ascii=draw(st.booleans())).encode()
    return body, sent, drift


def tidy(body: bytes) -> tuple[capframe.CustomerTables, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = capframe.tidy_customers([body])
    return tables, caught


PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# --- the properties (one generated body checked for all of them: generating is the slow part) ---

Case = tuple[bytes, list[dict[str, Any]], Drift]


@PROPERTY
@given(bodies())
def test_drifted_bodies_keep_everything_the_api_sent(case: Case) -> None:
    body, sent, drift = case
    tables, caught = tidy(body)
    check_valid_tables_one_row_per_customer(tables, sent)
    check_unknown_keys_kept_and_warned(tables, caught, drift)
    check_identifiers_kept_with_one_spelling(tables, sent)
    check_timestamps_are_utc_instants(tables, sent)
    check_open_ended_maps_kept(tables, sent)


def check_valid_tables_one_row_per_customer(tables: capframe.CustomerTables, sent: list[dict[str, Any]]) -> None:
    """Every table passes its model; customers has one row per distinct id, values as sent."""
    for name, model in TABLE_MODELS.items():
        model.validate(getattr(tables, name))
    customers = tables.customers
    assert customers["customer_id"].to_list() == [item["entity"]["id"] for item in sent]
    for item, row in zip(sent, customers.iter_rows(named=True), strict=True):
        entity = item["entity"]
        profiles = entity.get("profiles") or []
        assert row["profile_count"] == len(profiles)
        assert row["success"] is (item["success"] if item["success"] is not None else not item["errors"])
        assert row["error_code"] == (item["errors"][0]["code"] if item["errors"] else None)
        loyalty = entity.get("loyaltyInfo") or {}
        assert row["lifetime_purchases"] == loyalty.get("lifetimePurchases")
        assert row["score"] == loyalty.get("score")  # 7 and 7.0 are both the integer 7
        assert row["associated_with"] == entity.get("associatedWith")
        if profiles:
            assert row["first_name"] == profiles[0].get("firstName")


def check_unknown_keys_kept_and_warned(
    tables: capframe.CustomerTables, caught: list[warnings.WarningMessage], drift: Drift
) -> None:
    """Each unknown key is one 'unrecognised' row of fields (path, JSON value); one warning names them."""
    unrecognised = tables.fields.filter(pl.col("scope") == "unrecognised")
    got = Counter(unrecognised.select("customer_id", "name", "value").rows())
    assert got == Counter(drift.added), "unknown keys must each be one row, and nothing else is drift"
    warned = [w for w in caught if issubclass(w.category, capframe.SchemaDriftWarning)]
    if drift.added:
        assert len(warned) == 1
        message = str(warned[0].message)
        assert "unrecognised" in message
        paths = sorted({path for _, path, _ in drift.added})
        assert all(path in message for path in paths[:10]) or "..." in message
    else:
        assert not warned


def check_identifiers_kept_with_one_spelling(tables: capframe.CustomerTables, sent: list[dict[str, Any]]) -> None:
    """Every identifier of every profile is a row, once; its type in one spelling, the raw type as sent."""
    expected: set[tuple[Any, ...]] = set()
    listed: set[tuple[Any, ...]] = set()
    for item in sent:
        customer_id = item["entity"]["id"]
        for index, profile in enumerate(item["entity"].get("profiles") or []):
            for key in ("identifiers", "identifiersAll"):
                for identifier in profile.get(key) or []:
                    pair = (customer_id, index, identifier.get("type"), identifier.get("value"))
                    expected.add(pair)
                    if key == "identifiers":
                        listed.add(pair)
    identifiers = tables.identifiers
    got = identifiers.select("customer_id", "profile_index", "raw_type", "value").rows()
    assert set(got) == expected
    assert len(got) == len(expected), "each (type, value) once per profile"
    for row in identifiers.iter_rows(named=True):
        raw = row["raw_type"]
        assert row["type"] == (CANONICAL.get(raw.lower(), raw) if raw is not None else None)
        key = (row["customer_id"], row["profile_index"], raw, row["value"])
        assert row["in_identifiers"] is (key in listed)
    assert not set(identifiers["type"].drop_nulls()) & {"cardNumber", "CARDNUMBER", "MOBILE", "EXTERNALID"}


def check_timestamps_are_utc_instants(tables: capframe.CustomerTables, sent: list[dict[str, Any]]) -> None:
    """Z, +05:30, -08:00...: every timestamp is the UTC instant that was sent."""
    assert tables.profiles["auto_update_time"].dtype == schemas.UTC
    for item in sent:
        customer_id = item["entity"]["id"]
        instants = item.get("_instants", [])
        got = tables.profiles.filter(pl.col("customer_id") == customer_id).sort("profile_index")
        assert got["auto_update_time"].to_list() == instants
        first = tables.customers.filter(pl.col("customer_id") == customer_id)["auto_update_time"][0]
        assert first == (instants[0] if instants else None)


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_open_ended_maps_kept(tables: capframe.CustomerTables, sent: list[dict[str, Any]]) -> None:
    """Every key and non-null value of fields, allFields, extendedFields and segments is a row."""
    expected: Counter[tuple[Any, ...]] = Counter()
    segments: Counter[tuple[Any, ...]] = Counter()
    for item in sent:
        entity = item["entity"]
        customer_id = entity["id"]
        for index, profile in enumerate(entity.get("profiles") or []):
            for scope, key in (("custom", "fields"), ("all", "allFields")):
                for name, value in (profile.get(key) or {}).items():
                    if value is not None:
                        expected[(customer_id, index, scope, name, as_text(value))] += 1
        for name, value in (entity.get("extendedFields") or {}).items():
            if value is not None:
                expected[(customer_id, None, "extended", name, as_text(value))] += 1
        for name, value in (entity.get("segments") or {}).items():
            segments[(customer_id, name, as_text(value))] += 1
    known = tables.fields.filter(pl.col("scope") != "unrecognised")
    assert Counter(known.rows()) == expected
    assert Counter(tables.segments.rows()) == segments


# --- what the properties found, one example each ---


def page_of(*items: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"data": list(items), "warnings": [], "errors": [], **top}).encode()


def seed_item(**entity_changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(SEED_ITEM)
    item["entity"].update(entity_changes)
    return item


def test_the_seed_page_entity_is_read_as_documented() -> None:
    tables, caught = tidy(page_of(copy.deepcopy(FAILED_ITEM), seed_item()))
    assert not caught
    assert tables.customers.select("customer_id", "success", "error_code", "mobile", "external_id").rows() == [
        (564332013, False, 8109, None, None),
        (565338404, True, None, "912726093529", "00008572"),
    ]


def test_a_number_of_another_type_in_an_integer_field_is_refused_loudly() -> None:
    """Not silently: userId 5.0 where an integer is documented makes the page unreadable, so a pull
    fails the batch with FetchError (never a quiet null)."""
    item = seed_item()
    item["entity"]["profiles"][0]["userId"] = 565338404.0
    with pytest.raises(capframe.CapframeError, match="not a Get Customers Bulk response"):
        capframe.tidy_customers([page_of(item)])


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], ["x"]], ids=["object", "array of numbers", "array of text"])
def test_an_object_or_array_where_text_is_documented_is_refused_naming_the_field(value: Any) -> None:
    """Not read as "{1}", and not mistaken for a page without data: the error names the field."""
    item = seed_item()
    item["entity"]["profiles"][0]["firstName"] = value
    with pytest.raises(capframe.CapframeError, match=r"at data\[\]\.entity\.profiles\[\]\.firstName where"):
        capframe.tidy_customers([page_of(item)])


def test_a_pull_answered_with_undocumented_types_fails_at_once_and_says_so() -> None:
    """Asking again gets the same types: each batch is asked once, and the error says to report it
    rather than to try again later."""
    asked: list[list[int]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)
        asked.append(ids)
        items = [seed_item(id=i) for i in ids]
        for item in items:
            item["entity"]["profiles"][0]["firstName"] = {"given": "Muhammad"}
        return httpx.Response(200, content=page_of(*items), headers={"Content-Type": "application/json"})

    client = capframe.Client(
        "eu", username="till", password="secret", batch_size=2, transport=httpx.MockTransport(handle)
    )
    with pytest.raises(capframe.FetchError) as info:
        capframe.fetch_customer_tables([1, 2, 3], "INSTORE", client=client)
    assert sorted(map(sorted, asked)) == [[1, 2], [3]]
    message = str(info.value)
    assert "a JSON object at data[].entity.profiles[].firstName where String is documented" in message
    assert "asking again will not help" in message
    assert "try again later" not in message
    partial = info.value.partial
    assert isinstance(partial, capframe.CustomerTables)
    assert partial.customers.select("customer_id", "success").sort("customer_id").rows() == [
        (1, False),
        (2, False),
        (3, False),
    ]


@pytest.mark.parametrize("neighbour", [None, True], ids=["alone", "beside a boolean"])
@pytest.mark.parametrize("primary", [1, 0, 2])
def test_a_number_in_a_boolean_field_is_refused_loudly(primary: int, neighbour: bool | None) -> None:
    """As for integers: commChannels[].primary 1 where a boolean is documented is not read as True,
    whether the page's other channels send booleans or not (polars reads true beside 1 as 1)."""
    item = seed_item()
    item["entity"]["profiles"][0]["commChannels"][0]["primary"] = primary
    items = [item]
    if neighbour is not None:
        items.append(seed_item(id=7))
        items[-1]["entity"]["profiles"][0]["commChannels"][0]["primary"] = neighbour
    with pytest.raises(capframe.CapframeError, match="not a Get Customers Bulk response"):
        capframe.tidy_customers([page_of(*items)])


def _card_status(item: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    item["entity"]["cardDetails"] = [{"cardNumber": f"C{item['entity']['id']}", "statusInfo": status}]
    item["entity"]["profiles"][0]["commChannels"][0]["attributes"] = status
    return item


def test_json_kept_as_text_is_the_same_whatever_is_read_with_it() -> None:
    """Text (a card's status, a channel's attributes) does not list the keys of the objects read with
    it, nor take their key order: null members are left out and keys sorted, on every path, so a
    report reads the same text alone, beside other pages, from a cache or through the exact reader."""
    one = _card_status(seed_item(), {"status": "ACTIVE", "reason": None, "history": [{"at": "x", "by": None}]})
    other = _card_status(seed_item(id=7), {"label": "Gold", "status": "OK", "history": [{"by": "y", "at": "z"}]})
    expected = '{"history":[{"at":"x"}],"status":"ACTIVE"}'
    pages = {
        "alone": page_of(copy.deepcopy(one)),
        "beside another": page_of(copy.deepcopy(other), copy.deepcopy(one)),
        "exact reader": _with_a_clash(copy.deepcopy(one)),
    }
    for how, page in pages.items():
        tables, _ = tidy(page)
        mine = pl.col("customer_id") == 565338404
        assert tables.cards.filter(mine)["status_info"].to_list() == [expected], how
        assert tables.comm_channels.filter(mine)["attributes"].to_list() == [expected], how


# Keys and text made of what JSON is made of: quotes, backslashes, commas, colons, braces and null.
json_like_text = st.lists(
    st.sampled_from(['"', "\\", ",", ":", "{", "}", "[", "null", ":null", ',"k":null}', "é", "\n", "a"]), max_size=6
).map("".join)
tricky_scalars = st.none() | st.booleans() | st.integers() | json_like_text | text
any_objects = st.recursive(
    st.dictionaries(json_like_text | text, tricky_scalars, max_size=3),
    lambda inner: st.dictionaries(
        json_like_text | text, tricky_scalars | inner | st.lists(tricky_scalars | inner, max_size=3), max_size=3
    ),
    max_leaves=8,
)


@PROPERTY
@given(any_objects)
def test_null_members_are_left_out_of_any_json_text_and_nothing_else(value: dict[str, Any]) -> None:
    """The one regular expression in capframe, on its own: it must never touch text inside a string."""
    sent = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    written = pl.select(_without_null_members(pl.lit(sent))).item()
    assert written == json_text(value, sort_keys=False)


def test_null_members_are_left_out_of_a_column_of_texts_with_and_without_them() -> None:
    # Only texts holding '":null' go through the pattern; the others, and missing texts, stay as they are.
    texts = {
        '{"a":null,"b":null,"c":1}': '{"c":1}',
        '{"a":null,"b":null}': "{}",
        '{"a":{"b":null,"c":null},"d":[null,{"e":null}],"f":null}': '{"a":{},"d":[null,{}]}',
        '["x,",":null"]': '["x,",":null"]',
        '{"k":"\\":null"}': '{"k":"\\":null"}',
        '[null,1,"null"]': '[null,1,"null"]',
        None: None,
    }
    written = pl.select(_without_null_members(pl.Series(list(texts), dtype=pl.String).alias("t"))).to_series()
    assert written.to_list() == list(texts.values())
    assert written.name == "t"


# polars' inference gives a key one type across the rows read together and reads true beside integers
# as 1: capframe cannot tell afterwards. Strict xfails: when polars (or capframe) learns, they fail.
@pytest.mark.xfail(strict=True, reason="polars reads true as 1 beside integers; capframe cannot tell")
def test_a_boolean_beside_integers_in_an_integer_field_is_refused() -> None:
    item = seed_item()
    item["entity"]["profiles"][0]["userId"] = True
    with pytest.raises(capframe.CapframeError, match="not a Get Customers Bulk response"):
        capframe.tidy_customers([page_of(item, seed_item(id=7))])


@pytest.mark.xfail(strict=True, reason="JSON kept as text is re-encoded from the type polars inferred for its group")
def test_json_kept_as_text_keeps_its_types_whatever_the_other_customers_send() -> None:
    one = seed_item(cardDetails=[{"cardNumber": "C1", "statusInfo": {"isActive": True, "labelId": 5}}])
    other = seed_item(id=7, cardDetails=[{"cardNumber": "C2", "statusInfo": {"isActive": 1, "labelId": 2.5}}])
    tables, _ = tidy(page_of(one, other))
    text = tables.cards.filter(pl.col("customer_id") == 565338404)["status_info"].item()
    assert json.loads(text) == {"isActive": True, "labelId": 5}
    assert "5.0" not in text  # 5 == 5.0 in Python: the text itself must say 5


@pytest.mark.parametrize(
    ("where", "name"),
    [("entity", "type"), ("entity", "value"), ("profile", "id"), ("loyaltyInfo", "code"), ("entity", "message")],
)
def test_an_unknown_key_named_like_a_known_key_elsewhere_is_kept(where: str, name: str) -> None:
    item = seed_item()
    target = {
        "entity": item["entity"],
        "profile": item["entity"]["profiles"][0],
        "loyaltyInfo": item["entity"]["loyaltyInfo"],
    }[where]
    target[name] = "sent by the API"
    tables, caught = tidy(page_of(item))
    assert any(issubclass(w.category, capframe.SchemaDriftWarning) for w in caught)
    assert '"sent by the API"' in tables.fields.filter(pl.col("scope") == "unrecognised")["value"].to_list()


def test_an_unknown_key_also_used_inside_a_map_is_kept() -> None:
    item = seed_item(tier="GOLD")
    item["entity"]["profiles"][0]["commChannels"][0]["attributes"] = {"tier": "unrelated"}
    tables, caught = tidy(page_of(item))
    assert any(issubclass(w.category, capframe.SchemaDriftWarning) for w in caught)
    assert tables.fields.filter(pl.col("name") == "data[].entity.tier")["value"].to_list() == ['"GOLD"']


@pytest.mark.parametrize("profiles", ["missing", None])
def test_an_entity_without_profiles_is_a_row_with_no_profile(profiles: Any) -> None:
    item = seed_item()
    if profiles == "missing":
        del item["entity"]["profiles"]
    else:
        item["entity"]["profiles"] = None
    tables, _ = tidy(page_of(item))
    assert tables.customers.select("customer_id", "profile_count").rows() == [(565338404, 0)]


def assert_read_or_reported(tables: capframe.CustomerTables, caught: list[Any], read: bool, sent: str) -> None:
    """A value capframe cannot read as documented is either read, or null with a SchemaDriftWarning and
    the value as sent in the errors table: never a quiet null."""
    if read:
        return
    assert any(issubclass(w.category, capframe.SchemaDriftWarning) for w in caught)
    assert any(sent in message for message in tables.errors["message"].drop_nulls()), tables.errors


def test_a_fractional_score_is_not_lost() -> None:
    item = seed_item(loyaltyInfo={"loyaltyType": "loyalty", "lifetimePurchases": 10, "score": 2.5})
    tables, caught = tidy(page_of(item))
    assert_read_or_reported(tables, caught, tables.customers["score"][0] is not None, "2.5")


@pytest.mark.parametrize("written", ["2025-09-15T09:29:33", "2025-09-15 09:29:33Z", "2025-09-15T09:29Z", "15/09/2025"])
def test_a_timestamp_capframe_cannot_read_is_not_lost_silently(written: str) -> None:
    item = seed_item()
    item["entity"]["profiles"][0]["autoUpdateTime"] = written
    tables, caught = tidy(page_of(item))
    assert_read_or_reported(tables, caught, tables.profiles["auto_update_time"][0] is not None, written)


@pytest.mark.parametrize("value", ["free text", [1, 2], 5])
def test_an_open_ended_map_of_another_shape_is_kept_or_refused_clearly(value: Any) -> None:
    try:
        tables, _ = tidy(page_of(seed_item(extendedFields=value)))
    except capframe.CapframeError:
        return
    assert (
        json.dumps(value, separators=(",", ":")) in tables.fields["value"].to_list()
        or str(value) in tables.fields["value"].to_list()
    )


def test_a_nested_field_value_is_kept_as_sent_whatever_the_other_customers_send() -> None:
    one = seed_item()
    one["entity"]["profiles"][0]["fields"] = {"address": {"city": "Pune"}}
    other = seed_item(id=7)
    other["entity"]["profiles"][0]["fields"] = {"address": {"street": "MG Road"}, "tags": [1]}
    alone, _ = tidy(page_of(one))
    together, _ = tidy(page_of(one, other))
    value = together.fields.filter(pl.col("customer_id") == 565338404)["value"].to_list()
    assert value == alone.fields["value"].to_list()
    assert json.loads(value[0]) == {"city": "Pune"}


def test_an_entity_sent_twice_keeps_its_unknown_keys_once() -> None:
    item = seed_item(zqTier="GOLD")
    tables, _ = tidy(page_of(item, copy.deepcopy(item)))
    assert tables.customers.height == 1
    assert tables.fields.filter(pl.col("scope") == "unrecognised").height == 1


def _with_a_clash(item: dict[str, Any]) -> bytes:
    """A page where two customers send a new field with values of different JSON types: polars cannot
    infer one type for it, so capframe reads the page with its exact (slower) reader."""
    item["entity"]["zqNew"] = [1]
    return page_of(item, seed_item(id=7, zqNew={"a": 1}))


def test_a_backslash_in_a_field_survives_the_exact_reader() -> None:
    value = "C:\\new folder\\table.csv"
    item = seed_item()
    item["entity"]["profiles"][0]["fields"] = {"path": value}
    tables, _ = tidy(_with_a_clash(item))
    assert tables.fields.filter(pl.col("name") == "path")["value"].to_list() == [value]


@pytest.mark.parametrize("value", ["tab\there", "vertical\x0btab", "unit\x1fseparator"])
def test_a_control_character_in_a_field_is_kept(value: str) -> None:
    item = seed_item()
    item["entity"]["profiles"][0]["fields"] = {"note": value}
    tables, _ = tidy(_with_a_clash(item))
    assert tables.fields.filter(pl.col("name") == "note")["value"].to_list() == [value]


def test_a_scalar_field_stays_a_scalar_whatever_the_other_customers_send() -> None:
    one = seed_item()
    one["entity"]["profiles"][0]["fields"] = {"path": "C:/data"}
    other = seed_item(id=7)
    other["entity"]["profiles"][0]["fields"] = {"path": ["x", "y"]}
    tables, _ = tidy(page_of(one, other))
    assert tables.fields.filter(pl.col("customer_id") == 565338404)["value"].to_list() == ["C:/data"]


@pytest.mark.parametrize(
    ("sent", "other", "text"),
    [
        pytest.param(True, 429605, "true", id="a boolean beside an integer"),
        pytest.param(2**60 + 1, 2.5, str(2**60 + 1), id="a big integer beside a float"),
        pytest.param(5, 2.5, "5", id="an integer beside a float"),
    ],
)
def test_a_number_in_a_field_keeps_its_value(sent: Any, other: Any, text: str) -> None:
    one = seed_item()
    one["entity"]["profiles"][0]["fields"] = {"loyalty_no": sent}
    neighbour = seed_item(id=7)
    neighbour["entity"]["profiles"][0]["fields"] = {"loyalty_no": other}
    tables, _ = tidy(page_of(one, neighbour))
    assert tables.fields.filter(pl.col("customer_id") == 565338404)["value"].to_list() == [text]
