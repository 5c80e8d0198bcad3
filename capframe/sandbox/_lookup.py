"""The sandbox's ``GET /v2/customers/lookup``: an identifier to a customer id, per source.

Documented (capillary-api.md 2b): the parameters, ``{"entity": <id>, "warnings": []}`` on success,
and the codes 8015 (no customer), 8065 (not in this source), 8045 (no accountId for a multi-account
source), 8013 (invalid identifierName), 8011 (invalid source account). Assumed, since no failed
lookup is shown: the error envelope of the other v2 calls, ``{"errors": [{"status": false, "code",
"message"}], "warnings": []}``, with HTTP 200 for a value not found (8015, 8065) and HTTP 400 for a
request that cannot be answered as asked (8013, 8045, 8011, 8012). A PII-deleted customer is not found.

The synthetic values are inverted, not searched: a mobile, external id or card number is a bijection
of the customer's index (``Org._identity``, the card number of ``Org._build_entity``), an email
holds it; the customer found must then really have that identifier.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import httpx

from ._org import _SEED_PII_ID, ALL_SOURCES, IDENTIFIER_NAMES, Org

__all__ = ["LOOKUP_PATH", "lookup"]

LOOKUP_PATH: Final = "/v2/customers/lookup"
# Sources with several accounts: a lookup there names the account. The org's WeChat account is wx-1.
_ACCOUNTS: Final = {"WECHAT": {"wx-1"}, "FACEBOOK": set[str](), "MARTJACK": set[str]()}
_MOBILE: Final = re.compile(r"91(\d{10})")
_EMAIL: Final = re.compile(r"[a-z]+\.[a-z]+\.(\d+)@[a-z.]+")
_EXTERNAL: Final = re.compile(r"\d{8}")
_CARD: Final = re.compile(r"SBX(\d{12})")
_K_SEED: Final = 104_729  # Org._identity: k = index + 104_729 * seed + 1


def _body(code: int, message: str) -> bytes:
    return json.dumps({"errors": [{"status": False, "code": code, "message": message}], "warnings": []}).encode()


NOT_FOUND: Final = _body(8015, "No customer found with the given identifier")
NOT_IN_SOURCE: Final = _body(8065, "No customer found in the given source with the given identifier")


def lookup(org: Org, request: httpx.Request) -> tuple[int, bytes]:
    """(HTTP status, body) of one lookup."""
    q = request.url.params
    source = (q.get("source") or "").upper()
    if source not in ALL_SOURCES:
        return 400, _body(8012, "Invalid source")
    if source in _ACCOUNTS:
        account = q.get("accountId")
        if not account:
            return 400, _body(8045, "Account id is not passed")
        if account not in _ACCOUNTS[source]:
            return 400, _body(8011, "Invalid source account")
    name = IDENTIFIER_NAMES.get((q.get("identifierName") or "").lower())
    if name is None:
        return 400, _body(8013, "Customer identifier is invalid")
    value = q.get("identifierValue")
    if not value:
        return 400, _body(400, "Missing required parameter(s): identifierValue")
    entity = _customer(org, name, value)
    if entity is None:
        return 200, NOT_FOUND
    if source != "ALL" and not any(p["source"] == source and _has(p, name, value) for p in entity["profiles"]):
        return 200, NOT_IN_SOURCE
    return 200, json.dumps({"entity": entity["id"], "warnings": []}).encode()


def _has(profile: dict[str, Any], name: str, value: str) -> bool:
    return any(i["type"].lower() == name.lower() and i["value"] == value for i in profile.get("identifiers", []))


def _customer(org: Org, name: str, value: str) -> dict[str, Any] | None:
    """The entity that has identifier ``name`` = ``value`` in some profile, or None."""
    for entity in (*org._seed_entities.values(), *org._doc_entities.values()):  # the fixed customers: few
        if entity["profiles"] and any(_has(p, name, value) for p in entity["profiles"]):
            return None if entity["id"] == _SEED_PII_ID else entity
    index = _index(org, name, value)
    if index is None or not 0 <= index < org.customers or org.is_pii_deleted(index):
        return None
    entity = org._entity(index)
    return entity if any(_has(p, name, value) for p in entity["profiles"]) else None


def _index(org: Org, name: str, value: str) -> int | None:
    """The index whose synthetic ``name`` would be ``value`` (the customer may not have it)."""
    k: int | None = None
    if name == "mobile" and (m := _MOBILE.fullmatch(value)):
        n = int(m[1]) - 6_000_000_000
        k = n * pow(2_654_435_761, -1, 4_000_000_000) % 4_000_000_000 if 0 <= n < 4_000_000_000 else None
    elif name == "externalId" and _EXTERNAL.fullmatch(value):
        k = int(value) * pow(61_803_399, -1, 100_000_000) % 100_000_000
    elif name == "email" and (m := _EMAIL.fullmatch(value)):
        return int(m[1])
    elif name == "cardnumber" and (m := _CARD.fullmatch(value)):
        customer_id = int(m[1]) * pow(13, -1, 10**12) % 10**12
        return org.index_of(customer_id)
    return None if k is None else k - 1 - _K_SEED * org.seed
