"""The embedded sandbox on its own: wire shapes, codes, auth, rate limit, faults, hierarchy, server."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import json
import selectors
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest

from capframe.sandbox import FAULT_KINDS, Faults, Sandbox, serve

BULK = "/v2/bulk/getCustomers"
CHILDREN = "/v2/customers/bulk"
TOKEN = "/v3/oauth/token/generate"

# The example response of the "Get Customers Bulk" page, verbatim (its masked emails included).
SEED_PAGE_RESPONSE = """
{"data": [
  {"entity": {"id": 564332013, "profiles": [], "loyaltyInfo": {"loyaltyType": "loyalty"},
              "segments": {}, "extendedFields": {}},
   "warnings": [],
   "errors": [{"status": false, "code": 8109, "message": "Customer is deleted after PII delete request"}],
   "success": false},
  {"entity": {"id": 565338404,
              "profiles": [{"firstName": "Muhammad", "lastName": "Johns", "fields": {}, "allFields": {},
                            "identifiers": [{"type": "mobile", "value": "912726093529"},
                                            {"type": "email", "value": "[email protected]"},
                                            {"type": "externalId", "value": "00008572"}],
                            "commChannels": [{"type": "mobile", "value": "912726093529", "primary": true,
                                              "verified": false, "meta": {"residence": false, "office": false},
                                              "attributes": {}},
                                             {"type": "email", "value": "[email protected]", "primary": true,
                                              "verified": false, "meta": {"residence": false, "office": false},
                                              "attributes": {}}],
                            "source": "INSTORE", "userId": 565338404, "accountId": "",
                            "conflictingProfileList": [], "autoUpdateTime": "2025-09-15T09:29:33Z",
                            "identifiersAll": [{"type": "mobile", "value": "912726093529"},
                                               {"type": "email", "value": "[email protected]"},
                                               {"type": "externalId", "value": "00008572"}]}],
              "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 0.000},
              "segments": {}, "associatedWith": "tj_capillary", "extendedFields": {}, "cardDetails": []},
   "warnings": [], "errors": [], "success": true},
  {"entity": {"id": 566135941,
              "profiles": [{"firstName": "John", "lastName": "Pork", "fields": {}, "allFields": {},
                            "identifiers": [{"type": "externalId", "value": "696969"},
                                            {"type": "mobile", "value": "918088369835"}],
                            "commChannels": [{"type": "mobile", "value": "918088369835", "primary": true,
                                              "verified": false, "meta": {"residence": false, "office": false},
                                              "attributes": {}}],
                            "source": "INSTORE", "userId": 566135941, "accountId": "",
                            "conflictingProfileList": [], "autoUpdateTime": "2025-09-15T09:29:33Z",
                            "identifiersAll": [{"type": "externalId", "value": "696969"},
                                               {"type": "mobile", "value": "918088369835"}]}],
              "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 201000.000, "score": 0},
              "segments": {}, "associatedWith": "naman_doc", "extendedFields": {}, "cardDetails": []},
   "warnings": [], "errors": [], "success": true}
 ],
 "warnings": [], "errors": []}
"""


def basic(user: str, password: str) -> str:
    """Capillary's Basic scheme: base64(user + ":" + md5_hex(password))."""
    digest = hashlib.md5(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{user}:{digest}".encode()).decode()


GOOD_AUTH = {"Authorization": basic(Sandbox.USERNAME, Sandbox.PASSWORD)}


def client(sandbox: Sandbox, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        transport=sandbox.sync_transport(),
        base_url=Sandbox.BASE_URL,
        headers=GOOD_AUTH if headers is None else headers,
    )


@pytest.fixture(scope="module")
def org() -> Sandbox:
    """A shared fault-free sandbox large enough for the 1234-children family."""
    return Sandbox(customers=2000)


@pytest.fixture
def http(org: Sandbox) -> Iterator[httpx.Client]:
    with client(org) as c:
        yield c


def children(c: httpx.Client, id_type: str, value: str, **params: str) -> httpx.Response:
    query = {
        "associationEntityType": "parentCustomer",
        "associationEntityIdentifierType": id_type,
        "associationEntityIdentifierValue": value,
        **params,
    }
    return c.get(CHILDREN, params=query)


def user_ids(page: dict[str, Any]) -> list[int]:
    # A child with two profiles (INSTORE + WECHAT) carries its userId in both.
    return [child["profiles"][0]["userId"] for child in page["entity"]["customers"]]


# --- determinism and the documented exchanges ---


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def exchange(seed: int) -> list[bytes]:
        sb = Sandbox(customers=3000, seed=seed)
        with client(sb) as c:
            ids = sb.customer_ids(300) + sb.pii_deleted_ids()[:3] + sb.unknown_ids(3)
            parent = sb.parents()[1]
            return [
                c.post(BULK, params={"source": "ALL"}, json=ids).content,
                c.post(BULK, params={"source": "INSTORE"}, json=ids).content,
                children(c, *parent, includeNoOfChildren="true", includeCustomerAssociateDetail="true").content,
            ]

    first, again, other = exchange(0), exchange(0), exchange(1)
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_seed_page_exchange_is_the_documented_one(http: httpx.Client) -> None:
    r = http.post(BULK, params={"source": "INSTORE"}, content=b"[564332013,565338404, 566135941]")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-cap-requestid"].startswith("sbx-")
    assert r.json() == json.loads(SEED_PAGE_RESPONSE)


def test_seed_page_customers_are_outside_the_counted_org(org: Sandbox) -> None:
    ids = org.customer_ids()
    assert len(ids) == len(set(ids)) == org.customers == 2000
    assert {564332013, 565338404, 566135941}.isdisjoint(ids)
    assert org.pii_deleted_ids()[0] == 564332013
    assert all(100_000_000 <= i <= 999_999_999 for i in ids)
    assert ids == sorted(ids)  # stable order, and customer_ids(n) is a prefix
    assert org.customer_ids(10) == ids[:10]


def test_item_codes_pii_unknown_and_source_mismatch(org: Sandbox, http: httpx.Client) -> None:
    deleted = org.pii_deleted_ids()[1]
    unknown = org.unknown_ids(2)
    assert set(unknown).isdisjoint(org.customer_ids())
    data = http.post(BULK, params={"source": "INSTORE"}, json=[deleted, *unknown]).json()["data"]
    assert data[0] == {
        "entity": {
            "id": deleted,
            "profiles": [],
            "loyaltyInfo": {"loyaltyType": "loyalty"},
            "segments": {},
            "extendedFields": {},
        },
        "warnings": [],
        "errors": [{"status": False, "code": 8109, "message": "Customer is deleted after PII delete request"}],
        "success": False,
    }
    for item, uid in zip(data[1:], unknown, strict=True):
        assert item["entity"] == {"id": uid, "profiles": []}
        assert item["errors"][0]["code"] == 8015
        assert item["success"] is False

    # A customer whose only profile is ECOMMERCE: found with ALL, 8065 with INSTORE.
    everyone = [
        d["entity"] for d in http.post(BULK, params={"source": "ALL"}, json=org.customer_ids(1000)).json()["data"]
    ]
    sources = {e["id"]: {p["source"] for p in e["profiles"]} for e in everyone}
    ecommerce = next(i for i, s in sources.items() if s == {"ECOMMERCE"})
    item = http.post(BULK, params={"source": "INSTORE"}, json=[ecommerce]).json()["data"][0]
    assert item["entity"]["profiles"] == []
    assert item["errors"] == [
        {"status": False, "code": 8065, "message": "No customer found in the given source with the given identifier"}
    ]
    assert item["success"] is False
    # ~5% have INSTORE + WECHAT; ALL returns both, WECHAT only the WeChat one (accountId wx-1).
    both = next(i for i, s in sources.items() if s == {"INSTORE", "WECHAT"})
    wechat = http.post(BULK, params={"source": "WECHAT"}, json=[both]).json()["data"][0]["entity"]["profiles"]
    assert [(p["source"], p["accountId"]) for p in wechat] == [("WECHAT", "wx-1")]


def test_entities_have_the_documented_variety(org: Sandbox, http: httpx.Client) -> None:
    data = http.post(BULK, params={"source": "ALL"}, json=org.customer_ids(1000)).json()["data"]
    entities = [d["entity"] for d in data if d["success"]]
    profiles = [p for e in entities for p in e["profiles"]]
    card_types = {i["type"] for p in profiles for i in p["identifiers"] if i["type"].lower() == "cardnumber"}
    assert card_types == {"cardnumber", "cardNumber"}
    purchases = [e["loyaltyInfo"]["lifetimePurchases"] for e in entities]
    assert any(isinstance(x, int) for x in purchases)
    assert any(isinstance(x, float) for x in purchases)
    stamps = [p["autoUpdateTime"] for p in profiles]
    assert {s[-1] == "Z" for s in stamps} == {True, False}
    assert any(s.endswith("+05:30") for s in stamps)
    emails = [i["value"] for p in profiles for i in p["identifiers"] if i["type"] == "email"]
    assert emails
    assert all(e.endswith(("@example.com", "@example.org")) for e in emails)
    mobiles = [i["value"] for p in profiles for i in p["identifiers"] if i["type"] == "mobile"]
    assert all(len(m) == 12 and m.startswith("91") for m in mobiles)
    assert any(e["cardDetails"] for e in entities)
    assert any("score" in e["loyaltyInfo"] for e in entities)
    assert 0.01 < sum(not d["success"] for d in data) / len(data) < 0.06  # ~3% PII-deleted


# --- request-level errors ---


@pytest.mark.parametrize(
    ("params", "body", "status", "code"),
    [
        ({}, b"[1]", 400, 8012),
        ({"source": "NOWHERE"}, b"[1]", 400, 8012),
        ({"source": "INSTORE"}, b"", 405, 405),
        ({"source": "INSTORE"}, b'{"ids": [1]}', 400, 400),
        ({"source": "INSTORE"}, b'["565338404"]', 400, 400),
        ({"source": "INSTORE"}, b"[true]", 400, 400),
        ({"source": "INSTORE"}, b"[-5]", 400, 400),
        ({"source": "INSTORE"}, b"[1,", 400, 400),
        ({"source": "INSTORE"}, json.dumps(list(range(1, 1002))).encode(), 400, 1060),
    ],
)
def test_bulk_request_errors(http: httpx.Client, params: dict[str, str], body: bytes, status: int, code: int) -> None:
    r = http.post(BULK, params=params, content=body)
    assert r.status_code == status
    payload = r.json()
    assert payload["data"] == []
    assert payload["warnings"] == []
    assert payload["errors"][0]["code"] == code
    assert payload["errors"][0]["status"] is False


def test_bulk_error_messages_and_batch_edge(org: Sandbox, http: httpx.Client) -> None:
    assert http.post(BULK, params={"source": "X"}, json=[1]).json()["errors"][0]["message"] == "Invalid source"
    missing = http.post(BULK, params={"source": "INSTORE"}).json()["errors"][0]["message"]
    assert missing == "Method not allowed. Request body missing."
    over = http.post(BULK, params={"source": "INSTORE"}, json=org.customer_ids(1001)).json()
    assert over["errors"][0]["message"] == "Batch limit size exceeded"
    exactly = http.post(BULK, params={"source": "INSTORE"}, json=org.customer_ids(1000))
    assert exactly.status_code == 200
    assert len(exactly.json()["data"]) == 1000
    assert http.get(BULK, params={"source": "INSTORE"}).status_code == 405
    assert http.get("/v2/nowhere").status_code == 404


# --- auth ---


def test_basic_auth_follows_the_md5_rule() -> None:
    # The rule from the docs (not the example's inconsistent digest).
    assert basic("store123", "Pass123") == "Basic c3RvcmUxMjM6MmYyM2ZhMzU3OWYzZjc1MTc1NzkzNjQ5MTE1YzFiMjU="
    sb = Sandbox(customers=10)
    unauthorized = {"errors": [{"status": False, "code": 401, "message": "Unauthorized"}]}
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": basic(Sandbox.USERNAME, "wrong")},
        # The plain password instead of its MD5 is wrong too.
        {"Authorization": "Basic " + base64.b64encode(b"sandbox.till:sandbox").decode()},
        {"Authorization": "Basic !!!not-base64"},
    ]
    for headers in bad_headers:
        with client(sb, headers) as c:
            r = c.post(BULK, params={"source": "INSTORE"}, json=[565338404])
            assert r.status_code == 401
            assert r.json() == unauthorized
            assert "x-cap-requestid" in r.headers
    with client(sb) as c:
        assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404]).status_code == 200


def test_oauth_token_flow_and_expiry() -> None:
    sb = Sandbox(customers=10, token_ttl=300)
    now = [1000.0]
    sb._clock = lambda: now[0]
    with client(sb, {}) as c:
        bad = c.post(TOKEN, json={"key": Sandbox.CLIENT_KEY, "secret": "nope"})
        assert bad.status_code == 401
        assert bad.json()["data"] is None
        assert bad.json()["errors"][0]["message"] == "Invalid key or secret"
        r = c.post(TOKEN, json={"key": Sandbox.CLIENT_KEY, "secret": Sandbox.CLIENT_SECRET})
        assert r.status_code == 200
        body = r.json()
        assert body["errors"] is None
        assert body["data"]["ttlSeconds"] == 300
        token = body["data"]["accessToken"]
        headers = {"X-CAP-API-OAUTH-TOKEN": token}
        assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404], headers=headers).status_code == 200
        now[0] += 299
        assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404], headers=headers).status_code == 200
        now[0] += 2
        expired = c.post(BULK, params={"source": "INSTORE"}, json=[565338404], headers=headers)
        assert expired.status_code == 401
        assert expired.json()["errors"][0]["code"] == 401
        assert (
            c.post(BULK, params={"source": "INSTORE"}, json=[1], headers={"X-CAP-API-OAUTH-TOKEN": "x"}).status_code
            == 401
        )


# --- rate limit ---


def test_rate_limit_sliding_window() -> None:
    sb = Sandbox(customers=10, requests_per_minute=3)
    now = [0.0]
    sb._clock = lambda: now[0]
    with client(sb) as c:
        for t in (0.0, 10.0, 20.0):
            now[0] = t
            assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404]).status_code == 200
        now[0] = 30.0
        limited = c.post(BULK, params={"source": "INSTORE"}, json=[565338404])
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "30"
        # Token requests are not limited.
        assert c.post(TOKEN, json={"key": Sandbox.CLIENT_KEY, "secret": Sandbox.CLIENT_SECRET}).status_code == 200
        now[0] = 60.5  # the first slot has freed
        assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404]).status_code == 200
        assert c.get(CHILDREN, params={}).status_code == 429
    assert [r.status for r in sb.request_log] == [200, 200, 200, 429, 200, 200, 429]


# --- faults ---


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="known kinds: 500, 502"):
        Sandbox(faults=["boom"])
    with pytest.raises(ValueError, match="unknown fault"):
        Sandbox(faults={"nope": 0.1})
    with pytest.raises(ValueError, match="sum"):
        Faults(rates={"500": 0.7, "503": 0.5})
    with pytest.raises(TypeError):
        Sandbox(faults="500")
    assert Faults(script=["ok", "500"]) == Faults(script=("ok", "500"))
    assert Sandbox(faults={"500": 0.5}).faults.rates == {"500": 0.5}


def _normal_and_faulted(kind: str, ids: list[int]) -> tuple[httpx.Response, httpx.Response, Sandbox]:
    """The same request to a fault-free twin and to a sandbox whose second request gets ``kind``."""
    twin = Sandbox(customers=100)
    sb = Sandbox(customers=100, faults=["ok", kind])
    with client(twin) as c:
        c.post(BULK, params={"source": "INSTORE"}, json=ids)
        normal = c.post(BULK, params={"source": "INSTORE"}, json=ids)
    with client(sb) as c:
        first = c.post(BULK, params={"source": "INSTORE"}, json=ids)
        assert first.status_code == 200
        assert first.content == normal.content
        faulted = c.post(BULK, params={"source": "INSTORE"}, json=ids)
    assert [r.fault for r in sb.request_log] == [None, kind]
    return normal, faulted, sb


@pytest.mark.parametrize("kind", ["500", "503", "521"])
def test_json_status_faults(kind: str) -> None:
    _, r, _ = _normal_and_faulted(kind, [565338404])
    assert r.status_code == int(kind)
    assert r.headers["content-type"] == "application/json"
    assert r.json()["errors"][0]["code"] == int(kind)
    if kind == "521":
        assert r.json()["errors"][0]["message"] == "Multiple actions running on the same customer, retry later"


@pytest.mark.parametrize("kind", ["502", "504"])
def test_gateway_html_faults(kind: str) -> None:
    _, r, _ = _normal_and_faulted(kind, [565338404])
    assert r.status_code == int(kind)
    assert r.headers["content-type"] == "text/html"
    assert r.text.startswith("<html>")


def test_429_faults() -> None:
    _, r, _ = _normal_and_faulted("429", [565338404])
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    _, r, _ = _normal_and_faulted("429-bare", [565338404])
    assert r.status_code == 429
    assert "retry-after" not in r.headers
    _, r, _ = _normal_and_faulted("429-date", [565338404])
    when = email.utils.parsedate_to_datetime(r.headers["retry-after"])
    ahead = (when - dt.datetime.now(dt.UTC)).total_seconds()
    assert r.status_code == 429
    assert -1 <= ahead <= 2


def test_body_faults() -> None:
    ids = [565338404, 566135941, 564332013]
    normal, r, _ = _normal_and_faulted("truncate", ids)
    assert r.status_code == 200
    assert r.content == normal.content[: len(normal.content) // 2]
    with pytest.raises(json.JSONDecodeError):
        r.json()
    _, r, _ = _normal_and_faulted("malformed", ids)
    assert r.status_code == 200
    assert r.content.startswith(b'{"data": [')
    with pytest.raises(UnicodeDecodeError):
        json.loads(r.content)
    _, r, _ = _normal_and_faulted("html", ids)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html"
    assert b"<html>" in r.content
    normal, r, _ = _normal_and_faulted("content-type", ids)
    assert r.headers["content-type"] == "text/plain"
    assert r.content == normal.content


def test_entity_set_faults() -> None:
    ids = [565338404, 566135941, 564332013]
    _, r, _ = _normal_and_faulted("drop", ids)
    assert [d["entity"]["id"] for d in r.json()["data"]] == ids[:-1]
    _, r, _ = _normal_and_faulted("duplicate", ids)
    got = [d["entity"]["id"] for d in r.json()["data"]]
    assert len(got) == 4
    assert set(got) == set(ids)
    _, r, sb = _normal_and_faulted("extra", ids)
    got = [d["entity"]["id"] for d in r.json()["data"]]
    assert got[:3] == ids
    assert got[3] not in ids
    assert got[3] in sb.customer_ids()


def test_connection_faults_raise_in_process() -> None:
    sb = Sandbox(customers=10, faults=["reset", "timeout", "ok"])
    with client(sb) as c:
        with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected"):
            c.post(BULK, params={"source": "INSTORE"}, json=[565338404])
        with pytest.raises(httpx.ReadTimeout):
            c.post(BULK, params={"source": "INSTORE"}, json=[565338404])
        assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404]).status_code == 200
    assert [(r.status, r.fault, r.n_ids) for r in sb.request_log] == [
        (0, "reset", 0),
        (0, "timeout", 0),
        (200, None, 1),
    ]


def test_token_expiry_fault_revokes_the_token() -> None:
    sb = Sandbox(customers=10, faults=["token-expiry", "token-expiry", "ok"])
    with client(sb, {}) as c:
        new_token = {"key": Sandbox.CLIENT_KEY, "secret": Sandbox.CLIENT_SECRET}
        token = c.post(TOKEN, json=new_token).json()["data"]["accessToken"]  # token requests skip the script
        headers = {"X-CAP-API-OAUTH-TOKEN": token}
        r = c.post(BULK, params={"source": "INSTORE"}, json=[565338404], headers=headers)
        assert r.status_code == 401
        assert r.json() == {"errors": [{"status": False, "code": 401, "message": "Invalid or expired token"}]}
        # Basic auth is not affected by a token-expiry fault.
        assert c.post(BULK, params={"source": "INSTORE"}, json=[1], headers=GOOD_AUTH).status_code == 200
        assert c.post(BULK, params={"source": "INSTORE"}, json=[1], headers=headers).status_code == 401
        fresh = c.post(TOKEN, json=new_token).json()["data"]["accessToken"]
        assert fresh != token
        ok = c.post(BULK, params={"source": "INSTORE"}, json=[1], headers={"X-CAP-API-OAUTH-TOKEN": fresh})
        assert ok.status_code == 200


def test_every_fault_kind_in_script_order() -> None:
    sb = Sandbox(customers=10, faults=list(FAULT_KINDS))
    statuses = []
    with client(sb) as c:
        for _ in FAULT_KINDS:
            try:
                statuses.append(c.post(BULK, params={"source": "INSTORE"}, json=[565338404]).status_code)
            except httpx.TransportError:
                statuses.append(0)
        assert c.post(BULK, params={"source": "INSTORE"}, json=[565338404]).status_code == 200  # script done
    assert [r.fault for r in sb.request_log] == [*FAULT_KINDS, None]
    expected = {"reset": 0, "timeout": 0, "token-expiry": 200}  # Basic auth: token-expiry acts like ok
    for kind, status in zip(FAULT_KINDS, statuses, strict=True):
        want = expected.get(kind, int(kind[:3]) if kind[:3].isdigit() else 200)
        assert status == want, kind


def test_fault_rates_are_seeded() -> None:
    def run(seed: int) -> list[str | None]:
        sb = Sandbox(customers=10, faults=Faults(rates={"500": 0.3, "drop": 0.2}, seed=seed))
        with client(sb) as c:
            for _ in range(60):
                c.post(BULK, params={"source": "INSTORE"}, json=[565338404])
        return [r.fault for r in sb.request_log]

    a, b = run(7), run(7)
    assert a == b
    assert a != run(8)
    assert {"500", "drop", None} == set(a)
    assert all(Sandbox(faults={"503": 1.0})._draw_fault() == "503" for _ in range(3))


# --- hierarchy ---

DOCUMENTED_CHILDREN = [
    {
        "profiles": [
            {
                "firstName": "tom",
                "lastName": "sawyer",
                "fields": {},
                "identifiers": [
                    {"type": "email", "value": "tom.sawyer@capillarytech.com"},
                    {"type": "mobile", "value": "917799889933"},
                ],
                "commChannels": [
                    {
                        "type": "email",
                        "value": "tom.sawyer@capillarytech.com",
                        "primary": True,
                        "verified": False,
                        "meta": {"residence": False, "office": False},
                        "attributes": {},
                    }
                ],
                "source": "INSTORE",
                "userId": 134094571,
                "accountId": "",
                "conflictingProfileList": [],
                "autoUpdateTime": "2023-07-21T05:54:37Z",
                "identifiersAll": [
                    {"type": "email", "value": "tom.sawyer@capillarytech.com"},
                    {"type": "mobile", "value": "917799889933"},
                ],
            }
        ],
        "extendedFields": {"dob": "1980-05-08T00:00:00Z"},
        "roleCode": "Senior_Manager",
        "createdDate": "2023-04-14T03:29:31Z",
        "noOfChildren": 1,
        "defaultChild": False,
    },
]


def test_documented_family(org: Sandbox, http: httpx.Client) -> None:
    assert org.parents()[0] == ("mobile", "917799889933")
    flags = {"includeNoOfChildren": "true", "includeCustomerAssociateDetail": "true"}
    page = children(http, "mobile", "917799889933", sortOrder="ASC", **flags).json()
    assert page["success"] is True
    assert page["errors"] == []
    assert page["warnings"] == []
    assert page["entity"]["count"] == 2
    assert page["entity"]["errors"] == []
    assert page["entity"]["warnings"] == []
    tom, lalit = page["entity"]["customers"]
    assert tom == DOCUMENTED_CHILDREN[0]
    assert lalit["profiles"][0]["firstName"] == "Lalit"
    assert {k: lalit[k] for k in ("extendedFields", "roleCode", "createdDate", "noOfChildren", "defaultChild")} == {
        "extendedFields": {"dob": "1983-12-31T00:00:00Z"},
        "roleCode": "Manager",
        "createdDate": "2023-04-14T03:31:01Z",
        "noOfChildren": 2,
        "defaultChild": False,
    }
    assert list(tom) == ["profiles", "extendedFields", "roleCode", "createdDate", "noOfChildren", "defaultChild"]
    # Default DESC by createdDate: Lalit (created later) first; no flags, no extra keys.
    plain = children(http, "mobile", "917799889933").json()["entity"]["customers"]
    assert [c["profiles"][0]["firstName"] for c in plain] == ["Lalit", "tom"]
    assert all(set(c) == {"profiles", "extendedFields"} for c in plain)
    # The children are customers the bulk endpoint knows too.
    data = http.post(BULK, params={"source": "INSTORE"}, json=[134094571]).json()["data"]
    assert data[0]["success"]
    assert data[0]["entity"]["profiles"][0]["lastName"] == "sawyer"


def test_big_family_pagination_covers_every_child_once(org: Sandbox, http: httpx.Client) -> None:
    big = next(f for f in org.families() if len(f.child_ids) > 1000)
    assert len(big.child_ids) == 1234
    seen: list[int] = []
    stamps: list[tuple[dt.datetime, int]] = []
    for offset in range(0, 1400, 150):
        page = children(
            http,
            big.identifier_type,
            big.identifier_value,
            limit="150",
            offset=str(offset),
            includeCustomerAssociateDetail="true",
        ).json()
        customers = page["entity"]["customers"]
        assert page["entity"]["count"] == len(customers) == max(0, min(150, 1234 - offset))
        seen += user_ids(page)
        stamps += [(dt.datetime.fromisoformat(c["createdDate"]), c["profiles"][0]["userId"]) for c in customers]
    assert len(seen) == len(set(seen)) == 1234
    assert set(seen) == set(big.child_ids)
    assert stamps == sorted(stamps, reverse=True)  # DESC by createdDate, then userId
    assert {c.isoformat()[-6:] for c, _ in stamps} >= {"+00:00", "+05:30"}


def test_page_size_cap_and_paging_params(org: Sandbox, http: httpx.Client) -> None:
    big = next(f for f in org.families() if len(f.child_ids) > 1000)
    key = (big.identifier_type, big.identifier_value)
    assert children(http, *key, limit="5000").json()["entity"]["count"] == 200
    assert children(http, *key).json()["entity"]["count"] == 10  # default limit
    assert children(http, *key, offset="5000").json()["entity"] == {
        "customers": [],
        "count": 0,
        "errors": [],
        "warnings": [],
    }
    asc = user_ids(children(http, *key, sortOrder="asc", limit="1234").json())
    desc = user_ids(children(http, *key, sortOrder="DESC", limit="1234").json())
    assert len(asc) == 200
    assert asc != desc
    small = Sandbox(customers=2000, max_page_size=7)
    with client(small) as c:
        assert children(c, *key, limit="100").json()["entity"]["count"] == 7


def test_hierarchy_errors(org: Sandbox, http: httpx.Client) -> None:
    r = children(http, "mobile", "910000000000")
    assert r.status_code == 200
    assert r.json() == {
        "entity": {"customers": [], "count": 0, "errors": [], "warnings": []},
        "warnings": [],
        "errors": [{"status": False, "code": 8015, "message": "No customer found with the given identifier(s)"}],
        "success": False,
    }
    parent = org.parents()[1]
    bad: list[dict[str, str]] = [
        {"associationEntityType": "CUSTOMER"},
        {"associationEntityIdentifierType": "id"},
        {"associationEntityIdentifierValue": ""},
        {"limit": "ten"},
        {"offset": "-1"},
        {"sortOrder": "UP"},
        {"includeNoOfChildren": "yes"},
        {"source": "NOWHERE"},
    ]
    for override in bad:
        query = {
            "associationEntityType": "parentCustomer",
            "associationEntityIdentifierType": parent[0],
            "associationEntityIdentifierValue": parent[1],
            **override,
        }
        r = http.get(CHILDREN, params=query)
        assert r.status_code == 400, override
        assert r.json()["errors"][0]["status"] is False
    missing = http.get(CHILDREN, params={"associationEntityType": "parentCustomer"})
    assert missing.status_code == 400
    assert "associationEntityIdentifierType" in missing.json()["errors"][0]["message"]
    assert http.post(CHILDREN).status_code == 405


def test_families_by_identifier_company_and_nesting(org: Sandbox, http: httpx.Client) -> None:
    types = {t for t, _ in org.parents()}
    assert {"mobile", "email", "externalId"} <= types
    for family in org.families():
        query = {
            "associationEntityType": family.entity_type,
            "associationEntityIdentifierType": family.identifier_type,
            "associationEntityIdentifierValue": family.identifier_value,
            "limit": "200",
            "source": "instore",  # case-insensitive here
        }
        page = http.get(CHILDREN, params=query).json()
        assert page["success"] is True, family
        got = set(user_ids(page))
        assert got == set(family.child_ids) if len(family.child_ids) <= 200 else got < set(family.child_ids)
    assert org.companies() == [("externalId", "COMPANY-1"), ("externalId", "COMPANY-2")]
    # A company is not a customer: as parentCustomer it is unknown.
    assert children(http, "externalId", "COMPANY-1").json()["errors"][0]["code"] == 8015
    # The first child of the first family is itself a parent (noOfChildren 2), reachable as parentChildCustomer.
    first = org.families()[1]
    page = children(http, first.identifier_type, first.identifier_value, includeNoOfChildren="true", limit="50").json()
    counts = {c["profiles"][0]["userId"]: c["noOfChildren"] for c in page["entity"]["customers"]}
    assert counts[first.child_ids[0]] == 2
    assert sum(counts.values()) == 2
    nested = next(f for f in org.families() if f.parent_id == first.child_ids[0])
    query = {
        "associationEntityType": "parentChildCustomer",
        "associationEntityIdentifierType": nested.identifier_type,
        "associationEntityIdentifierValue": nested.identifier_value,
    }
    assert len(http.get(CHILDREN, params=query).json()["entity"]["customers"]) == 2
    # defaultChild marks the first child of a family.
    page = children(http, first.identifier_type, first.identifier_value, includeCustomerAssociateDetail="true").json()
    defaults = [c["profiles"][0]["userId"] for c in page["entity"]["customers"] if c["defaultChild"]]
    assert defaults == [first.child_ids[0]]


def test_hierarchy_faults() -> None:
    sb = Sandbox(customers=100, faults=["drop", "duplicate", "extra"])
    parent = sb.parents()[1]
    with client(sb) as c:
        dropped = children(c, *parent).json()["entity"]["customers"]
        duplicated = user_ids(children(c, *parent).json())
        extra = user_ids(children(c, *parent).json())
    family = set(sb.families()[1].child_ids)
    assert len(dropped) == len(family)  # "drop" does not apply here
    assert len(duplicated) == len(family) + 1
    assert set(duplicated) == family
    assert len(extra) == len(family) + 1
    assert len(set(extra) - family) == 1


def test_small_org_still_has_the_key_families() -> None:
    sb = Sandbox(customers=50)
    sizes = {(f.identifier_type, f.identifier_value): len(f.child_ids) for f in sb.families()}
    assert sizes[("mobile", "917799889933")] == 2
    assert 0 in sizes.values()
    assert max(sizes.values()) < 1000
    assert {"mobile", "email", "externalId"} <= {t for t, _ in sb.parents()}
    assert set(sb.parents()) <= set(sizes)
    with client(sb) as c:
        empty = next(k for k, n in sizes.items() if n == 0)
        page = children(c, *empty).json()
        assert page["success"] is True
        assert page["entity"]["count"] == 0
        assert page["errors"] == []


def test_large_org_is_lazy() -> None:
    start = time.perf_counter()
    sb = Sandbox(customers=1_000_000)
    with client(sb) as c:
        ids = sb.customer_ids(5)
        assert len(c.post(BULK, params={"source": "ALL"}, json=ids).json()["data"]) == 5
    assert time.perf_counter() - start < 1.0
    assert len(sb.parents()) > 2000  # families scale with the org


# --- request log, async transport, loopback server ---


def test_request_log(org: Sandbox) -> None:
    sb = Sandbox(customers=10)
    with client(sb) as c:
        c.post(BULK, params={"source": "INSTORE"}, json=[1, 2, 3])
        c.post(BULK, params={"source": "INSTORE"}, content=b"")
    first, second = sb.request_log
    assert (first.method, first.path, first.status, first.fault, first.n_ids) == ("POST", BULK, 200, None, 3)
    assert second.status == 405
    assert second.time >= first.time


def test_async_transport_with_latency() -> None:
    sb = Sandbox(customers=100, latency=0.05)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=sb.transport(), base_url=Sandbox.BASE_URL, headers=GOOD_AUTH) as c:
            calls = [c.post(BULK, params={"source": "INSTORE"}, json=[i]) for i in sb.customer_ids(10)]
            return await asyncio.gather(*calls)

    start = time.perf_counter()
    responses = asyncio.run(main())
    elapsed = time.perf_counter() - start
    assert all(r.status_code == 200 for r in responses)
    assert 0.05 <= elapsed < 0.4  # concurrent waits, not 10 x 50 ms
    ids = sorted(r.headers["x-cap-requestid"] for r in responses)
    assert ids == [f"sbx-{i:06d}" for i in range(1, 11)]


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_loopback_server() -> None:
    sb = Sandbox(customers=100, faults=["ok", "ok", "reset", "ok", "timeout"])
    twin = Sandbox(customers=100)
    ids = [*sb.customer_ids(20), 564332013]
    with client(twin) as c:
        expected = c.post(BULK, params={"source": "INSTORE"}, json=ids)
    with serve(sb) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.port > 0
        with httpx.Client(base_url=server.url, headers=GOOD_AUTH, timeout=5) as c:
            r = c.post(BULK, params={"source": "INSTORE"}, json=ids)
            assert r.status_code == 200
            assert r.content == expected.content
            assert r.headers["x-cap-requestid"] == "sbx-000001"
            token = c.post(TOKEN, json={"key": Sandbox.CLIENT_KEY, "secret": Sandbox.CLIENT_SECRET})
            assert token.status_code == 200
            page = children(c, "mobile", "917799889933")
            assert page.status_code == 200
            assert page.json()["entity"]["count"] == 2
            with pytest.raises(httpx.RemoteProtocolError):
                c.post(BULK, params={"source": "INSTORE"}, json=ids)
            assert c.post(BULK, params={"source": "INSTORE"}, json=ids).status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                c.post(BULK, params={"source": "INSTORE"}, json=ids, timeout=0.2)
    assert [r.fault for r in sb.request_log if r.path != TOKEN] == [None, None, "reset", None, "timeout"]


def _burst(port: int, connections: int, request: bytes, deadline: float) -> list[float]:
    """Open ``connections`` sockets at once (non-blocking connects, all before any completes), send
    ``request`` on each as soon as it connects, and read each answer to its end: the seconds each
    took, for those done within ``deadline`` seconds."""
    selector = selectors.DefaultSelector()
    start = time.perf_counter()
    sockets = [socket.socket() for _ in range(connections)]
    for sock in sockets:
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE, "connecting")
    took: list[float] = []
    try:
        while len(took) < connections and time.perf_counter() - start < deadline:
            for key, _ in selector.select(0.05):
                sock = cast(socket.socket, key.fileobj)
                if key.data == "connecting":
                    sock.sendall(request)
                    selector.modify(sock, selectors.EVENT_READ, "reading")
                elif not sock.recv(1 << 16):
                    took.append(time.perf_counter() - start)
                    selector.unregister(sock)
    finally:
        for sock in sockets:
            sock.close()
    return took


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_the_server_takes_64_connections_at_once_without_dropping_one() -> None:
    """A client opening its whole concurrency at once: with socketserver's listen queue of 5 the
    SYNs past it were dropped, and those connections waited a second (or three) for a retry."""
    request = b"GET /v2/unknown HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n"
    with serve(Sandbox(customers=10)) as server:
        for _ in range(3):
            took = _burst(server.port, 64, request, deadline=5.0)
            assert len(took) == 64
            assert max(took) < 0.9  # a dropped SYN is sent again after 1 s


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_a_client_that_leaves_mid_answer_is_closed_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    """An interrupted client (Ctrl-C, a timeout) resets its connection while the answer is written:
    the server closes it without a traceback on its stderr."""
    sb = Sandbox(customers=100)
    ids = json.dumps(sb.customer_ids(100)).encode()  # about 100 kB of answer
    auth = GOOD_AUTH["Authorization"].encode()
    head = f"POST {BULK}?source=INSTORE HTTP/1.1\r\nHost: sandbox\r\nContent-Length: {len(ids)}\r\n"
    request = head.encode() + b"Authorization: " + auth + b"\r\nContent-Type: application/json\r\n\r\n" + ids
    with serve(sb) as server:
        for _ in range(5):
            with socket.socket() as sock:
                # A small receive window: the answer cannot all be buffered, the server is still writing
                # when the client leaves. RST on close (SO_LINGER 0), as a killed client's kernel sends.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.settimeout(5)
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(request)
                assert sock.recv(64).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 5
        while len(sb.request_log) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the handler threads meet the reset
    assert len(sb.request_log) == 5
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "Error" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_serve_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve(Sandbox(customers=1), host=host)


def test_capacity_slows_answers_past_it_and_refuses_past_twice_it() -> None:
    """A request finding n in flight waits latency x n/C; past 2C it gets a 503 at once."""
    sb = Sandbox(customers=100, latency=0.2, capacity=2)

    async def timed(c: httpx.AsyncClient, i: int) -> tuple[int, float]:
        await asyncio.sleep(0.02 * i)  # arrive in order, while the earlier ones are still in flight
        start = time.perf_counter()
        r = await c.post(BULK, params={"source": "INSTORE"}, json=[sb.customer_ids(1)[0]])
        return r.status_code, time.perf_counter() - start

    async def main() -> list[tuple[int, float]]:
        async with httpx.AsyncClient(transport=sb.transport(), base_url=Sandbox.BASE_URL, headers=GOOD_AUTH) as c:
            return await asyncio.gather(*(timed(c, i) for i in range(5)))

    answers = asyncio.run(main())
    assert [status for status, _ in answers] == [200, 200, 200, 200, 503]
    seconds = [s for _, s in answers]  # 0.2, 0.2, 0.3, 0.4 s: C/latency answers a second past C
    assert seconds[0] >= 0.19
    assert seconds[1] < seconds[2] < seconds[3]
    assert seconds[2] >= 0.29
    assert seconds[3] >= 0.39
    assert seconds[4] < 0.15
    assert [(r.status, r.fault) for r in sb.request_log] == [(503, "capacity")] + [(200, None)] * 4
    # Once the load is gone, the server answers at its latency again.
    assert asyncio.run(main())[0] == (200, pytest.approx(0.2, abs=0.07))


def test_capacity_is_validated() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        Sandbox(customers=1, capacity=0)


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_the_sandbox_command_serves_a_degrading_server_from_its_own_process() -> None:
    """What benchmarks and users' pipeline tests run: ``capframe sandbox --port 0`` with the load options."""
    command = [sys.executable, "-m", "capframe", "sandbox", "--port", "0", "--customers", "100"]
    server = subprocess.Popen(
        [*command, "--latency", "0.2", "--capacity", "1", "--rpm", "1000"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" at ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        ids = Sandbox(customers=100).customer_ids(1)

        async def main() -> list[int]:
            async with httpx.AsyncClient(base_url=url, headers=GOOD_AUTH, timeout=5) as c:
                calls = [c.post(BULK, params={"source": "INSTORE"}, json=ids) for _ in range(3)]
                return sorted(r.status_code for r in await asyncio.gather(*calls))

        assert asyncio.run(main()) == [200, 200, 503]
    finally:
        server.kill()
        server.wait()
