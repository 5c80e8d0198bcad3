"""Recorded exchanges, replayed offline: the documented one and recordings of the loopback sandbox.

Replay needs no network (pytest-recording's default record mode is ``none``). The sandbox cassettes
are re-recorded with ``python tests/cassette_recorder.py``; the documented exchange is hand-built
from the Get Customers Bulk page. Also here: the scrubbers of ``capframe.testing``, and a scan of
every cassette for credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from vcr import VCR
from vcr.cassette import Cassette
from vcr.request import Request

import capframe
import capframe.testing
from capframe.sandbox import Sandbox, serve
from capframe.testing import CREDENTIAL_HEADERS, scrub_request, scrub_response

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

# In replay no request reaches a server: vcrpy answers them all, matching on everything but host and port.
REPLAY_URL = "http://127.0.0.1:9"
# The faults test's sandbox fails its first three API requests, one way each.
FAULTS = ["503", "429", "truncate"]
# Ids of Sandbox(customers=2000, seed=0), written out so that a replay does not depend on the sandbox's code.
# 25 of its first customers, in no particular order (700000017 was deleted on request: code 8109).
CUSTOMERS = [
    700000103, 700000000, 700000162, 700000130, 700000045, 700000036, 700000054, 700000075, 700000158,
    700000143, 700000033, 700000017, 700000150, 700000022, 700000124, 700000080, 700000139, 700000063,
    700000173, 700000108, 700000118, 700000061, 700000012, 700000094, 700000086,
]  # fmt: skip
FOUND = [700000000, 700000012, 700000022, 700000033]
DELETED_IDS = [564332013, 700000017, 700000733]  # the seed page's deleted customer, and two of the sandbox's
UNKNOWN_IDS = [700000001, 700000013]
DOCUMENTED_IDS = [564332013, 565338404, 566135941]
DELETED = "Customer is deleted after PII delete request"
UNKNOWN = "No customer found with the given identifier(s)"
NOT_IN_SOURCE = "No customer found in the given source with the given identifier"


@pytest.fixture
def vcr_config(vcr_config: dict[str, Any], request: pytest.FixtureRequest, record_mode: str) -> dict[str, Any]:
    """Replaying a ``live`` test's cassette keeps its personal data as stored: such cassettes were scrubbed
    when recorded, or, like the documented exchange, hold only the public documentation's example."""
    if record_mode == "none" and request.node.get_closest_marker("live"):
        return capframe.testing.vcr_config(personal_data=False)
    return vcr_config


@pytest.fixture
def default_cassette_name(default_cassette_name: str, request: pytest.FixtureRequest, record_mode: str) -> str:
    """Recording a ``live`` test writes ``<name>-live.yaml``: the documented cassette stays as the docs have it."""
    if record_mode != "none" and request.node.get_closest_marker("live"):
        return f"{default_cassette_name}-live"
    return default_cassette_name


@pytest.fixture
def sandbox_url(request: pytest.FixtureRequest, record_mode: str) -> str:
    """Where the sandbox tests send requests: when recording, a live sandbox (``CAPFRAME_RECORD_URL``,
    set by tests/cassette_recorder.py, else a server of this session); in replay, nowhere."""
    if record_mode == "none":
        return REPLAY_URL
    url = os.environ.get("CAPFRAME_RECORD_URL")
    return url or str(request.getfixturevalue("sandbox_server").url)


@pytest.fixture
def faulty_sandbox_url(record_mode: str) -> Iterator[str]:
    """A sandbox that fails its first three API requests (503, 429, a body cut in half), when recording."""
    if record_mode == "none":
        yield REPLAY_URL
        return
    with serve(Sandbox(customers=2000, seed=0, faults=FAULTS)) as server:
        yield server.url


def _client(url: str, **options: Any) -> capframe.Client:
    return capframe.Client(url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, **options)


def _replayed_all(cassette: Cassette, record_mode: str) -> None:
    """In replay, every recorded interaction was played exactly once: nothing left over, nothing repeated."""
    if record_mode == "none":
        assert cassette.play_count == len(cassette)
        assert cassette.all_played


# --- 1. the documented exchange --------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.vcr
def test_documented_exchange(vcr: Cassette, record_mode: str) -> None:
    """The Get Customers Bulk page's example request and response, exactly as documented.

    The cassette is hand-built from the page (seeds/000): its request with the ids as capframe sends
    them (compact JSON, sorted) and the documented response verbatim. With CAPILLARY_* set and
    ``--record-mode=rewrite`` the same request goes to your cluster and is recorded, scrubbed, as
    ``test_documented_exchange-live.yaml``; only the invariants are checked then.
    """
    live = record_mode != "none"
    client = capframe.Client.from_env() if live else capframe.Client("eu", username="store123", password="Pass123")
    tables = capframe.fetch_customer_tables(DOCUMENTED_IDS, "INSTORE", client=client, progress=False)

    customers = tables.customers
    assert customers["customer_id"].to_list() == DOCUMENTED_IDS
    assert customers.filter(~pl.col("success"))["error_code"].null_count() == 0
    if live:
        return
    _replayed_all(vcr, record_mode)
    assert vcr.requests[0].body == b"[564332013,565338404,566135941]"
    assert vcr.requests[0].uri == "https://eu.api.capillarytech.com/v2/bulk/getCustomers?source=INSTORE"

    columns = [
        "customer_id", "success", "error_code", "error_message", "first_name", "last_name", "source", "mobile",
        "email", "external_id", "loyalty_type", "lifetime_purchases", "score", "associated_with", "profile_count",
    ]  # fmt: skip
    assert customers.select(columns).rows() == [
        (564332013, False, 8109, DELETED, None, None, None, None, None, None, "loyalty", None, None, None, 0),
        (565338404, True, None, None, "Muhammad", "Johns", "INSTORE", "912726093529", "[email\xa0protected]",
         "00008572", "loyalty", 0.0, None, "tj_capillary", 1),
        (566135941, True, None, None, "John", "Pork", "INSTORE", "918088369835", None,
         "696969", "loyalty", 201000.0, 0, "naman_doc", 1),
    ]  # fmt: skip
    updated = datetime(2025, 9, 15, 9, 29, 33, tzinfo=UTC)
    assert customers["auto_update_time"].to_list() == [None, updated, updated]
    assert tables.identifiers.select("customer_id", "type", "value").rows() == [
        (565338404, "mobile", "912726093529"),
        (565338404, "email", "[email\xa0protected]"),
        (565338404, "externalId", "00008572"),
        (566135941, "externalId", "696969"),
        (566135941, "mobile", "918088369835"),
    ]
    assert tables.comm_channels.select("customer_id", "type", "value", "primary", "verified").rows() == [
        (565338404, "mobile", "912726093529", True, False),
        (565338404, "email", "[email\xa0protected]", True, False),
        (566135941, "mobile", "918088369835", True, False),
    ]
    assert tables.errors.select("customer_id", "code", "message").rows() == [(564332013, 8109, DELETED)]
    assert tables.cards.is_empty()
    assert tables.segments.is_empty()


# --- 2. recordings of the loopback sandbox -----------------------------------------------------------


def _check_joins(tables: capframe.CustomerTables) -> None:
    """Scrubbed or not, a customer's mobile, email and card agree across the tables."""
    customers = tables.customers
    assert customers.filter(pl.col("success"))["mobile"].str.contains(r"^91\d{10}$").all()
    assert customers.filter(pl.col("success"))["email"].drop_nulls().str.contains("@").all()
    by_type = tables.identifiers.filter(pl.col("profile_index") == 0)
    for kind, column in (("mobile", "mobile"), ("email", "email"), ("externalId", "external_id")):
        joined = customers.join(by_type.filter(pl.col("type") == kind), on="customer_id")
        assert (joined[column] == joined["value"]).all(), kind
    channels = tables.comm_channels.join(
        tables.identifiers, on=["customer_id", "profile_index", "type", "value"], how="anti"
    )
    assert channels.is_empty(), "a comm channel whose value is not among the identifiers"
    cards = tables.cards.join(
        tables.identifiers.filter(pl.col("type") == "cardnumber"),
        left_on=["customer_id", "card_number"],
        right_on=["customer_id", "value"],
        how="anti",
    )
    assert cards.is_empty(), "a card whose number is not among the identifiers"


def _check_scrubbed(tables: capframe.CustomerTables, record_mode: str) -> None:
    """In replay the personal data are the scrubber's placeholders (while recording, the client saw the real ones)."""
    if record_mode != "none":
        return
    found = tables.customers.filter(pl.col("success"))
    assert found["first_name"].str.contains(r"^Name-[0-9a-f]{10}$").all()
    assert found["last_name"].str.contains(r"^Name-[0-9a-f]{10}$").all()
    assert found["mobile"].str.starts_with("910").all()
    assert found["email"].drop_nulls().str.ends_with("@example.invalid").all()


@pytest.mark.vcr
def test_sandbox_batches(vcr: Cassette, sandbox_url: str, record_mode: str) -> None:
    """25 ids in three concurrent batches of up to 10: three POSTs, each matched by its body."""
    client = _client(sandbox_url, batch_size=10, concurrency=4, requests_per_minute=None)
    tables = capframe.fetch_customer_tables(CUSTOMERS, "INSTORE", client=client, progress=False)

    assert len(vcr) == 3
    _replayed_all(vcr, record_mode)
    sent = sorted(json.loads(request.body) for request in vcr.requests)
    assert sorted(len(batch) for batch in sent) == [5, 10, 10]
    assert all(batch == sorted(batch) for batch in sent), "ids are sorted inside a batch"
    assert sorted(i for batch in sent for i in batch) == sorted(CUSTOMERS)

    customers = tables.customers
    assert customers["customer_id"].to_list() == CUSTOMERS, "one row per id, in request order"
    assert tables.errors.select("customer_id", "code", "message").rows() == [
        (700000017, 8109, DELETED),
        (700000108, 8065, NOT_IN_SOURCE),  # a customer with a WECHAT profile only
    ]
    failed = customers.filter(~pl.col("success")).select("customer_id", "error_code").sort("customer_id")
    assert failed.rows() == [(700000017, 8109), (700000108, 8065)]
    first = customers.filter(pl.col("customer_id") == 700000000).row(0, named=True)
    assert (first["lifetime_purchases"], first["score"], first["associated_with"]) == (22674.0, None, "sbx.till1")
    assert tables.segments.filter(pl.col("customer_id") == 700000000).sort("segment").rows() == [
        (700000000, "Activity segment", "Lapsed"),
        (700000000, "Value segment", "Medium"),
    ]
    assert tables.cards.select("customer_id", "card_id", "series_code", "card_type").sort("customer_id").rows() == [
        (700000000, 9000000, "SBX_DIGITAL_101", "DIGITAL"),
        (700000143, 9000143, "SBX_DIGITAL_102", "DIGITAL"),
        (700000173, 9000173, "SBX_DIGITAL_102", "DIGITAL"),
    ]
    _check_joins(tables)
    _check_scrubbed(tables, record_mode)


@pytest.mark.vcr
def test_sandbox_failed_ids(vcr: Cassette, sandbox_url: str, record_mode: str) -> None:
    """PII-deleted (8109) and unknown (8015) ids come back as failed rows, beside found ones, each once."""
    found, deleted, unknown = FOUND, DELETED_IDS, UNKNOWN_IDS
    ids = [found[0], deleted[0], unknown[0], found[1], deleted[1], found[0], found[2], deleted[2], unknown[1], found[3]]
    client = _client(sandbox_url, requests_per_minute=None)
    tables = capframe.fetch_customer_tables(ids, "INSTORE", client=client, progress=False)

    assert len(vcr) == 1
    _replayed_all(vcr, record_mode)
    customers = tables.customers
    assert customers["customer_id"].to_list() == list(dict.fromkeys(ids)), "duplicates asked once, first order kept"
    outcome = {
        row[0]: row[1:] for row in customers.select("customer_id", "success", "error_code", "error_message").rows()
    }
    assert {i: outcome[i] for i in found} == dict.fromkeys(found, (True, None, None))
    assert {i: outcome[i] for i in deleted} == dict.fromkeys(deleted, (False, 8109, DELETED))
    assert {i: outcome[i] for i in unknown} == dict.fromkeys(unknown, (False, 8015, UNKNOWN))
    assert sorted(tables.errors.select("customer_id", "code").rows()) == sorted(
        [(i, 8109) for i in deleted] + [(i, 8015) for i in unknown]
    )
    failed = customers.filter(~pl.col("success"))
    assert failed["first_name"].null_count() == failed.height
    assert set(tables.identifiers["customer_id"]) == set(found)
    _check_joins(tables)
    _check_scrubbed(tables, record_mode)


@pytest.mark.vcr
def test_sandbox_faults(vcr: Cassette, faulty_sandbox_url: str, record_mode: str, fast: dict[str, Any]) -> None:
    """A 503, a 429 and a truncated 200 on the first three requests: each is retried, nothing is lost.

    The cassette holds the failures and the retries. A retry sends the same body as the failed
    request, so in replay it matches the same batch's interactions, which vcrpy plays in recorded
    order (failure first); no ``allow_playback_repeats`` is needed.
    """
    client = _client(faulty_sandbox_url, batch_size=10, concurrency=4, requests_per_minute=None, **fast)
    tables = capframe.fetch_customer_tables(CUSTOMERS, "INSTORE", client=client, progress=False)

    assert tables.customers["customer_id"].to_list() == CUSTOMERS
    assert tables.customers.filter(~pl.col("success"))["customer_id"].to_list() == [700000017, 700000108]
    _replayed_all(vcr, record_mode)
    assert len(vcr) == 6, "three batches, three failures"
    statuses = sorted(response["status"]["code"] for response in vcr.responses)
    assert statuses == [200, 200, 200, 200, 429, 503]
    bodies = [bytes(response["body"]["string"]) for response in vcr.responses]
    readable = [_is_json(body) for body in bodies]
    assert readable.count(False) == 1, "the 503 and 429 error bodies are JSON; the truncated 200 is not"
    assert sum(1 for body, ok in zip(bodies, readable, strict=True) if not ok and b'"data":[' in body) == 1
    by_batch: dict[bytes, list[int]] = {}
    for request, response in zip(vcr.requests, vcr.responses, strict=True):
        by_batch.setdefault(request.body, []).append(response["status"]["code"])
    assert len(by_batch) == 3
    assert all(codes[-1] == 200 for codes in by_batch.values()), "every batch ends with an answer"
    _check_joins(tables)
    _check_scrubbed(tables, record_mode)


@pytest.mark.vcr
def test_sandbox_oauth(vcr: Cassette, sandbox_url: str, record_mode: str) -> None:
    """OAuth: the token request's key and secret and the token itself are not in the cassette."""
    ids = FOUND
    client = capframe.Client(
        sandbox_url, client_key=Sandbox.CLIENT_KEY, client_secret=Sandbox.CLIENT_SECRET, requests_per_minute=None
    )
    tables = capframe.fetch_customer_tables(ids, "INSTORE", client=client, progress=False)

    assert tables.customers["customer_id"].to_list() == ids
    assert tables.customers["success"].all()
    assert len(vcr) == 2
    _replayed_all(vcr, record_mode)
    token_request, bulk_request = vcr.requests
    assert token_request.path == "/v3/oauth/token/generate"
    assert json.loads(token_request.body) == {"key": "REDACTED", "secret": "REDACTED"}
    assert json.loads(vcr.responses[0]["body"]["string"])["data"] == {"accessToken": "REDACTED", "ttlSeconds": 300}
    assert bulk_request.path == "/v2/bulk/getCustomers"
    assert not {name.lower() for name in bulk_request.headers} & set(CREDENTIAL_HEADERS)


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


# --- 3. the scrubbers ----------------------------------------------------------------------------------

BASIC = "Basic c3RvcmUxMjM6MmYyM2ZhMzU3OWYzZjc1MTc1NzkzNjQ5MTE1YzFiMjU="
COOKIE = "_cfuvid=pG2dUTv9AmZsbCWt8RQ1DqWpR2Clfbg.S4lVYFcivvI-1726479424405-0.0.1.1-604800000"
PROFILE = {
    "data": [
        {
            "entity": {
                "id": 565338404,
                "profiles": [
                    {
                        "firstName": "Muhammad",
                        "lastName": "Johns",
                        "identifiers": [
                            {"type": "mobile", "value": "912726093529"},
                            {"type": "email", "value": "muhammad.johns@example.com"},
                            {"type": "externalId", "value": "00008572"},
                            {"type": "cardNumber", "value": "SBX009100000000", "seriesId": 101},
                        ],
                        "commChannels": [
                            {"type": "mobile", "value": "912726093529", "primary": True, "verified": False},
                            {"type": "email", "value": "muhammad.johns@example.com", "primary": True},
                        ],
                        "userId": 565338404,
                        "accountId": "",
                    }
                ],
                "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 0.000, "score": 0},
                "extendedFields": {"dob": "1984-01-24T00:00:00Z", "city": "Pune"},
                "cardDetails": [{"cardId": 9000000, "cardNumber": "SBX009100000000", "seriesId": 101}],
            },
            "errors": [],
            "success": True,
        }
    ],
    "warnings": [],
    "errors": [],
}


def _response(body: bytes | str, **headers: list[str]) -> dict[str, Any]:
    return {"status": {"code": 200, "message": "OK"}, "headers": headers, "body": {"string": body}}


def _same_request(a: Request, b: Request) -> bool:
    return (a.method, a.uri, a.body, dict(a.headers)) == (b.method, b.uri, b.body, dict(b.headers))


def test_scrub_request_removes_credentials() -> None:
    bulk = Request(
        "POST",
        "https://eu.api.capillarytech.com/v2/bulk/getCustomers?source=INSTORE",
        b"[564332013,565338404,566135941]",
        {"Authorization": BASIC, "Cookie": COOKIE, "Content-Type": "application/json"},
    )
    token = Request(
        "POST",
        "https://eu.api.capillarytech.com/v3/oauth/token/generate",
        b'{"key": "my-client-key", "secret": "my-client-secret"}',
        {"Content-Type": "application/json", "Content-Length": "54"},
    )
    oauth = Request("POST", bulk.uri, bulk.body, {"X-CAP-API-OAUTH-TOKEN": "eyJhbGciOi.eyJzdWIi.sig"})
    # Through vcrpy's own pipeline (filter_headers first, then the scrubber), as pytest-recording runs it.
    pipeline = VCR().get_merged_config(**capframe.testing.vcr_config())["before_record_request"]
    for scrub in (scrub_request, pipeline):
        clean = scrub(bulk)
        assert dict(clean.headers) == {"Content-Type": "application/json"}
        assert clean.body == bulk.body, "ids are not personal data: the body is kept byte for byte"
        assert _same_request(scrub(clean), clean)
        clean_token = scrub(token)
        assert json.loads(clean_token.body) == {"key": "REDACTED", "secret": "REDACTED"}
        assert clean_token.headers["Content-Length"] == str(len(clean_token.body))
        assert _same_request(scrub(clean_token), clean_token)
        assert dict(scrub(oauth).headers) == {}
    assert bulk.headers["Authorization"] == BASIC, "the request given is not changed"
    assert (token.headers["Content-Length"], token.body) == (
        "54",
        b'{"key": "my-client-key", "secret": "my-client-secret"}',
    )


def test_scrub_request_query_identifiers() -> None:
    """An identifier in the query (hierarchy lookups) is replaced the same way each time, so replays still match."""
    uri = (
        "https://eu.api.capillarytech.com/v2/customers/bulk?associationEntityType=parentCustomer"
        "&associationEntityIdentifierType=mobile&associationEntityIdentifierValue=919876543210&limit=10"
    )
    clean = scrub_request(Request("GET", uri, None, {}))
    assert "919876543210" not in clean.uri
    assert re.search(r"associationEntityIdentifierValue=910\d{9}&limit=10$", clean.uri)
    assert scrub_request(clean).uri == clean.uri
    assert scrub_request(Request("GET", uri, None, {})).uri == clean.uri


def test_scrub_response_removes_cookies_tokens_and_personal_data() -> None:
    token = _response(
        b'{"data":{"accessToken":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl","ttlSeconds":300},"errors":null}',
        **{"set-cookie": [COOKIE], "content-type": ["application/json"]},
    )
    clean = scrub_response(token)
    assert clean["headers"] == {"content-type": ["application/json"]}
    assert json.loads(clean["body"]["string"]) == {
        "data": {"accessToken": "REDACTED", "ttlSeconds": 300},
        "errors": None,
    }
    assert scrub_response(clean) == clean

    raw = json.dumps(PROFILE).encode()
    profile = _response(raw, **{"Set-Cookie": [COOKIE], "content-length": [str(len(raw))]})
    once = scrub_response(profile)
    assert scrub_response(once) == once, "idempotent"
    assert once["headers"] == {"content-length": [str(len(once["body"]["string"]))]}
    assert profile["body"]["string"] == raw, "the response given is not changed"
    text = once["body"]["string"].decode()
    for value in ("Muhammad", "Johns", "912726093529", "muhammad.johns", "00008572", "SBX009100000000", "01-24"):
        assert value not in text, value
    entity = json.loads(text)["data"][0]["entity"]
    person = entity["profiles"][0]
    assert re.fullmatch(r"Name-[0-9a-f]{10}", person["firstName"])
    assert person["firstName"] != person["lastName"]
    mobile, email, external, card = (i["value"] for i in person["identifiers"])
    assert re.fullmatch(r"91\d{10}", mobile)
    assert re.fullmatch(r"user-[0-9a-f]{12}@example\.invalid", email)
    assert external.startswith("ext-")
    assert card.startswith("card-")
    assert [c["value"] for c in person["commChannels"]] == [mobile, email], "the same value, the same placeholder"
    assert entity["cardDetails"][0]["cardNumber"] == card
    assert entity["extendedFields"] == {"dob": "1984-01-01T00:00:00Z", "city": "Pune"}
    # Everything that is not personal data is untouched: ids, numbers, booleans, the structure.
    assert (entity["id"], person["userId"], person["accountId"]) == (565338404, 565338404, "")
    assert (person["commChannels"][0]["primary"], person["commChannels"][0]["verified"]) == (True, False)
    assert '"lifetimePurchases":0.0,' in text
    assert _skeleton(json.loads(text)) == _skeleton(PROFILE)
    # Deterministic: the same original gives the same placeholder in another response.
    again = scrub_response(_response(json.dumps({"mobile": "912726093529"})))
    assert json.loads(again["body"]["string"]) == {"mobile": mobile}


def test_scrub_response_keeps_number_text_and_clean_bodies() -> None:
    body = b'{"id": 566135941, "firstName": "John", "loyaltyInfo": {"lifetimePurchases": 201000.000, "score": 0}}'
    text = scrub_response(_response(body))["body"]["string"]
    assert b'"lifetimePurchases":201000.000' in text
    assert b'"id":566135941' in text
    clean = b'{\n  "data": [],\n  "warnings": [],\n  "errors": [{"code": 8015, "message": "No customer found"}]\n}'
    assert scrub_response(_response(clean))["body"]["string"] is clean, "nothing to scrub: kept byte for byte"
    assert scrub_response(_response(clean.decode()))["body"]["string"] == clean.decode(), "text bodies stay text"


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"data": [' + bytes(range(0x80, 0xA0)) + b"\x00\xff\xfe<<garbage>>",
        b"[" * 100_000,
        b'"just a string"',
        b"123",
        b"[1, 2.50, true, null]",
        b'{"firstName": 5, "mobile": null, "email": [], "lastName": {"x": "y"}}',
        b'{"accessToken": {"nested": "object"}, "value": 1, "type": 2}',
        {"not": "bytes"},
    ],
)
def test_scrubbers_survive_odd_bodies(body: Any) -> None:
    response = scrub_response(_response(body))
    assert scrub_response(response) == response
    request = scrub_request(Request("POST", "https://x.invalid/v3/oauth/token/generate", body, {}))
    assert _same_request(scrub_request(request), request)
    for odd in (None, "text", 42, {"body": None}, {"body": {"string": 3}}, {"headers": None}):
        assert scrub_response(odd) == odd


def test_scrubber_on_a_body_cut_short() -> None:
    """A truncated JSON body (retried by the client, but recorded) is scrubbed as far as it goes."""
    full = json.dumps(PROFILE, separators=(",", ":")).encode()
    cut = full[: full.index(b"muhammad.johns") + 5]
    once = scrub_response(_response(cut))["body"]["string"]
    for value in (b"Muhammad", b"912726093529", b"muhammad"):
        assert value not in once
    assert not _is_json(once)
    assert scrub_response(_response(once))["body"]["string"] == once


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["firstName", "lastName", "mobile", "email", "value", "type", "id", "accessToken", "dob"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(database=None, max_examples=200, deadline=None)
@given(_JSON)
def test_scrubbing_is_idempotent_and_keeps_structure(value: Any) -> None:
    body = json.dumps(value).encode()
    once = scrub_response(_response(body))
    assert scrub_response(once) == once
    assert _skeleton(json.loads(once["body"]["string"])) == _skeleton(value)


def _skeleton(value: Any) -> Any:
    """The JSON with every string blanked: the structure, numbers, booleans and nulls the scrubber must keep."""
    if isinstance(value, dict):
        return {key: _skeleton(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_skeleton(item) for item in value]
    return "" if isinstance(value, str) else value


# --- 4. no credential in any cassette ------------------------------------------------------------------


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


FORBIDDEN = {
    "a Basic credential": re.compile(r"Basic\s+[A-Za-z0-9+/]{8,}={0,2}"),
    "a cookie": re.compile(r"_cfuvid|\b(?:set-)?cookie\s*:", re.IGNORECASE),
    "an OAuth token header": re.compile(r"x-cap-api-oauth-token|cap-api-access-token", re.IGNORECASE),
    "an access token": re.compile(r'accessToken\\?"\s*:\s*\\?"(?!REDACTED\\?")'),
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."),
    "the sandbox password's MD5": re.compile(_md5(Sandbox.PASSWORD)),
    "the documented password's MD5": re.compile(f"{_md5('Pass123')}|bdc87b9c894da5168059e00ebffb9077"),
    "the sandbox client secret": re.compile(re.escape(Sandbox.CLIENT_SECRET)),
}


def _findings(text: str) -> list[str]:
    return [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]


def test_the_scan_finds_credentials() -> None:
    assert _findings(f"Authorization:\n- {BASIC}") == ["a Basic credential"]
    assert _findings(f"Cookie:\n- {COOKIE}") == ["a cookie"]
    assert _findings('{"data":{"accessToken":"abc","ttlSeconds":300}}') == ["an access token"]
    assert _findings('string: \'{"data":{"accessToken":"REDACTED"}}\'') == []
    assert _findings(_md5("sandbox")) == ["the sandbox password's MD5"]


def test_no_credentials_in_cassettes() -> None:
    files = [path for path in CASSETTES.rglob("*") if path.is_file()]
    assert files, f"no cassettes under {CASSETTES}"
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{path.relative_to(CASSETTES)}: {what}" for what in _findings(text)]
        if path.suffix == ".yaml":
            for interaction in yaml.safe_load(text).get("interactions", []):
                for part in ("request", "response"):
                    names = {str(name).lower() for name in interaction[part].get("headers", {})}
                    problems += [
                        f"{path.relative_to(CASSETTES)}: {part} header {n}" for n in names & set(CREDENTIAL_HEADERS)
                    ]
    assert not problems, "\n".join(problems)


def test_cassette_folder_is_the_repository_one(vcr_cassette_dir: str) -> None:
    assert Path(vcr_cassette_dir) == CASSETTES / "test_cassettes"
