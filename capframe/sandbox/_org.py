"""The synthetic organisation behind the sandbox: customers, their JSON, and families.

Everything is a pure function of ``(seed, customer index)``: nothing is generated until it is
asked for, so an organisation of a million customers costs nothing up front. Rendered JSON is
cached per ``(id, source)`` because clients ask for the same ids again (retries, benchmarks).
"""

from __future__ import annotations

import calendar
import functools
import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ALL_SOURCES",
    "DOCUMENTED_PARENT",
    "IDENTIFIER_NAMES",
    "IDENTIFIER_TYPES",
    "MAX_CUSTOMERS",
    "SEED_IDS",
    "Family",
    "Org",
]

JSON = dict[str, Any]

# The source enum of the v2 customer docs, plus MOBILE_APP and WHATSAPP seen in examples.
ALL_SOURCES: Final = frozenset(
    {
        "FACEBOOK", "WEB_ENGAGE", "WECHAT", "INSTORE", "MARTJACK", "TMALL", "TAOBAO",
        "JD", "ECOMMERCE", "WEBSITE", "LINE", "ALL", "WHATSAPP", "MOBILE_APP",
    }
)  # fmt: skip
# Identifier types the hierarchy endpoint accepts (old v2 docs), canonical spelling.
IDENTIFIER_TYPES: Final = (
    "mobile",
    "email",
    "externalId",
    "cardnumber",
    "wechat",
    "martjackId",
    "fbId",
)
# Lower case -> canonical spelling: the API reads an identifier name in any case.
IDENTIFIER_NAMES: Final = {t.lower(): t for t in IDENTIFIER_TYPES}

_ID_BASE: Final = 700_000_000
_ID_STRIDE: Final = 7  # each customer owns a block of 7 ids: no collisions, and gaps for unknown ids
# Ids must stay 9 digits: 700_000_000 + 7 * index < 1_000_000_000.
MAX_CUSTOMERS: Final = 40_000_000
_BIG_FAMILY: Final = 1234
_BIG_FAMILY_MIN_ORG: Final = 1500
_MAX_SMALL_FAMILIES: Final = 2000

_M64: Final = (1 << 64) - 1


def _mix(seed: int, index: int, salt: int) -> int:
    """A splitmix64-style hash: a cheap seeded draw where a full ``random.Random`` costs too much."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


# --- the customers of the seed page, verbatim (emails are masked on the page; kept as shown) ---

_SEED_PAGE_ENTITIES: Final = r"""[
 {"id":564332013,"profiles":[],"loyaltyInfo":{"loyaltyType":"loyalty"},"segments":{},"extendedFields":{}},
 {"id":565338404,"profiles":[{"firstName":"Muhammad","lastName":"Johns","fields":{},"allFields":{},
   "identifiers":[{"type":"mobile","value":"912726093529"},{"type":"email","value":"[email protected]"},
                  {"type":"externalId","value":"00008572"}],
   "commChannels":[
     {"type":"mobile","value":"912726093529","primary":true,"verified":false,
      "meta":{"residence":false,"office":false},"attributes":{}},
     {"type":"email","value":"[email protected]","primary":true,"verified":false,
      "meta":{"residence":false,"office":false},"attributes":{}}],
   "source":"INSTORE","userId":565338404,"accountId":"","conflictingProfileList":[],
   "autoUpdateTime":"2025-09-15T09:29:33Z",
   "identifiersAll":[{"type":"mobile","value":"912726093529"},{"type":"email","value":"[email protected]"},
                     {"type":"externalId","value":"00008572"}]}],
  "loyaltyInfo":{"loyaltyType":"loyalty","lifetimePurchases":0.000},
  "segments":{},"associatedWith":"tj_capillary","extendedFields":{},"cardDetails":[]},
 {"id":566135941,"profiles":[{"firstName":"John","lastName":"Pork","fields":{},"allFields":{},
   "identifiers":[{"type":"externalId","value":"696969"},{"type":"mobile","value":"918088369835"}],
   "commChannels":[
     {"type":"mobile","value":"918088369835","primary":true,"verified":false,
      "meta":{"residence":false,"office":false},"attributes":{}}],
   "source":"INSTORE","userId":566135941,"accountId":"","conflictingProfileList":[],
   "autoUpdateTime":"2025-09-15T09:29:33Z",
   "identifiersAll":[{"type":"externalId","value":"696969"},{"type":"mobile","value":"918088369835"}]}],
  "loyaltyInfo":{"loyaltyType":"loyalty","lifetimePurchases":201000.000,"score":0},
  "segments":{},"associatedWith":"naman_doc","extendedFields":{},"cardDetails":[]}
]"""
SEED_IDS: Final = (564332013, 565338404, 566135941)
_SEED_PII_ID: Final = 564332013

# --- the documented hierarchy example (capillary-api.md section 2); elided parts filled in ---

DOCUMENTED_PARENT: Final = ("mobile", "917799889933")
_DOCUMENTED_CHILDREN: Final = r"""[
 {"profiles":[{"firstName":"tom","lastName":"sawyer","fields":{},
    "identifiers":[{"type":"email","value":"tom.sawyer@capillarytech.com"},{"type":"mobile","value":"917799889933"}],
    "commChannels":[{"type":"email","value":"tom.sawyer@capillarytech.com","primary":true,"verified":false,
                     "meta":{"residence":false,"office":false},"attributes":{}}],
    "source":"INSTORE","userId":134094571,"accountId":"","conflictingProfileList":[],
    "autoUpdateTime":"2023-07-21T05:54:37Z",
    "identifiersAll":[{"type":"email","value":"tom.sawyer@capillarytech.com"},{"type":"mobile","value":"917799889933"}]}],
  "extendedFields":{"dob":"1980-05-08T00:00:00Z"},
  "roleCode":"Senior_Manager","createdDate":"2023-04-14T03:29:31Z","noOfChildren":1,"defaultChild":false},
 {"profiles":[{"firstName":"Lalit","lastName":"Verma","fields":{},
    "identifiers":[{"type":"email","value":"lalit.verma@example.com"},{"type":"mobile","value":"917799881122"}],
    "commChannels":[{"type":"email","value":"lalit.verma@example.com","primary":true,"verified":false,
                     "meta":{"residence":false,"office":false},"attributes":{}}],
    "source":"INSTORE","userId":134094602,"accountId":"","conflictingProfileList":[],
    "autoUpdateTime":"2023-07-21T05:56:02Z",
    "identifiersAll":[{"type":"email","value":"lalit.verma@example.com"},{"type":"mobile","value":"917799881122"}]}],
  "extendedFields":{"dob":"1983-12-31T00:00:00Z"},
  "roleCode":"Manager","createdDate":"2023-04-14T03:31:01Z","noOfChildren":2,"defaultChild":false}
]"""

# --- vocabularies of the synthetic customers (invented, nothing real-looking) ---

_FIRST: Final = (
    "Aarav", "Bela", "Chen", "Dara", "Elif", "Farah", "Goran", "Hana", "Ishan", "Jia", "Kofi",
    "Lena", "Mira", "Nilo", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Vik",
    "Wen", "Yara", "Zane", "Anouk", "Bilal", "Cyra",
)  # fmt: skip
_LAST: Final = (
    "Acker", "Bose", "Carver", "Dlamini", "Eze", "Fong", "Gupta", "Haas", "Iyer", "Jensen",
    "Kato", "Lindqvist", "Moreau", "Nair", "Okafor", "Park", "Quispe", "Rao", "Silva", "Tan",
    "Usman", "Varga", "Wong", "Yilmaz", "Zhou",
)  # fmt: skip
_EMAIL_DOMAINS: Final = ("example.com", "example.org")
_CITIES: Final = (
    "Mumbai",
    "Bengaluru",
    "Singapore",
    "Shanghai",
    "Dubai",
    "Pune",
    "Kuala Lumpur",
)
_GENDERS: Final = ("Male", "Female", "Other")
_COLORS: Final = ("Blue", "Green", "Red", "Black", "Saffron")
_STORES: Final = ("sbx.store.mumbai", "sbx.store.pune", "sbx.store.sg")
_TILLS: Final = ("sandbox.till", "sbx.till1", "sbx.till2", "sbx.store.mumbai.t1")
_SEGMENTS: Final = (
    ("Activity segment", ("Lapsed", "Active", "Dormant")),
    ("Value segment", ("High", "Medium", "Low")),
)
_CARD_STATUS: Final = (
    ("Active", "ACTIVE", True),
    ("Suspended", "SUSPENDED", False),
    ("Expired", "EXPIRED", False),
)
_ROLE_CODES: Final = ("Member", "Employee", "Manager", "Senior_Manager", "Owner")

# Offsets the real API mixes in timestamps: UTC (written "Z"), India and China/Singapore.
_OFFSETS: Final = ((0, "Z"), (19_800, "+05:30"), (28_800, "+08:00"))
_T_2019: Final = 1_546_300_800  # 2019-01-01T00:00:00Z
_T_2021: Final = 1_609_459_200
_T_SPAN: Final = 1_758_000_000 - _T_2019  # up to September 2025


def _iso(epoch: int, offset: int, suffix: str) -> str:
    """An ISO-8601 timestamp of ``epoch`` shown in the given UTC offset."""
    t = time.gmtime(epoch + offset)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}{suffix}"


# Shared, never mutated sub-objects: fewer allocations per entity (the encoder does not mind).
_METAS: Final = tuple(tuple({"residence": res, "office": off} for off in (False, True)) for res in (False, True))
_EMPTY_MAP: Final[JSON] = {}
_EMPTY_LIST: Final[list[JSON]] = []


# One encoder for all: json.dumps with options builds a new encoder per call. Compact, and no
# circularity check (entities share small dicts, never cycles): both save time per entity.
_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _dumps(obj: object) -> bytes:
    return _ENCODE(obj).encode()


def _error(code: int, message: str) -> list[JSON]:
    return [{"status": False, "code": code, "message": message}]


_PII_ERROR: Final = _error(8109, "Customer is deleted after PII delete request")
_UNKNOWN_ERROR: Final = _error(8015, "No customer found with the given identifier(s)")
_SOURCE_ERROR: Final = _error(8065, "No customer found in the given source with the given identifier")
_NO_ERRORS: Final[list[JSON]] = []


def _item(entity: JSON, errors: list[JSON]) -> bytes:
    """One ``data[]`` item of the bulk response, rendered in one encoder call."""
    item = {"entity": entity, "warnings": [], "errors": errors, "success": not errors}
    return _dumps(item)


@dataclass(frozen=True, slots=True)
class Family:
    """A parent (or company) and its children, as the hierarchy endpoint serves them.

    ``entity_type`` is ``"parentCustomer"`` or ``"company"``; ``child_ids`` are the children's
    user ids in the order they joined (the first one is the default child).
    """

    entity_type: str
    identifier_type: str
    identifier_value: str
    parent_id: int | None
    child_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Child:
    """What the hierarchy endpoint needs to sort and render one child."""

    user_id: int
    index: int  # -1 for a child of the documented family
    created: int  # epoch seconds, the sort key
    created_str: str
    role: str
    sources: frozenset[str]
    fragments: dict[tuple[str, bool, bool], bytes]  # (source, associate detail, no of children) -> JSON


class Org:
    """A deterministic synthetic organisation of ``customers`` customers (plus the fixed ones)."""

    def __init__(self, customers: int, seed: int, *, cache_size: int = 1 << 17) -> None:
        if not 0 <= customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be between 0 and {MAX_CUSTOMERS}, got {customers}")
        self.customers = customers
        self.seed = seed
        self._seed_entities: dict[int, JSON] = {e["id"]: e for e in json.loads(_SEED_PAGE_ENTITIES)}
        self._doc_children: list[JSON] = json.loads(_DOCUMENTED_CHILDREN)
        self._doc_entities: dict[int, JSON] = {
            c["profiles"][0]["userId"]: self._documented_entity(c) for c in self._doc_children
        }
        # Per-instance caches: functools.cache on a method would be one cache shared by every
        # Org, holding each of them alive; these go away with their Org.
        self.item = functools.lru_cache(maxsize=cache_size)(self._render_item)
        self._entity = functools.lru_cache(maxsize=4096)(self._build_entity)
        self._family_children = functools.lru_cache(maxsize=256)(self._build_family_children)
        self._sorted_children = functools.lru_cache(maxsize=256)(self._build_sorted_children)
        self._plan_families()

    # --- ids ---

    def id_of(self, index: int) -> int:
        """The customer id of the customer at ``index``."""
        return _ID_BASE + _ID_STRIDE * index + _mix(self.seed, index, 0) % _ID_STRIDE

    def index_of(self, customer_id: int) -> int | None:
        """The index of a synthetic customer id, or None when the org has no such customer."""
        index, _ = divmod(customer_id - _ID_BASE, _ID_STRIDE)
        if customer_id < _ID_BASE or index >= self.customers or self.id_of(index) != customer_id:
            return None
        return index

    def is_pii_deleted(self, index: int) -> bool:
        # Family members are never deleted: a deleted customer cannot be looked up in a hierarchy.
        return _mix(self.seed, index, 1) % 100 < 3 and not self.in_family(index)

    def customer_ids(self, n: int | None = None) -> list[int]:
        """Ids of synthetic customers in index order (first ``n``)."""
        count = self.customers if n is None else max(0, min(n, self.customers))
        return [self.id_of(i) for i in range(count)]

    def pii_deleted_ids(self) -> list[int]:
        """The seed page's deleted customer, then every deleted synthetic customer."""
        return [_SEED_PII_ID] + [self.id_of(i) for i in range(self.customers) if self.is_pii_deleted(i)]

    def unknown_ids(self, n: int) -> list[int]:
        """``n`` positive 9-digit ids the org does not have, interleaved with real ones."""
        if not 0 <= n <= MAX_CUSTOMERS:
            raise ValueError(f"n must be between 0 and {MAX_CUSTOMERS}, got {n}")
        # Block i holds exactly one customer id; any other id of the block is unknown.
        return [_ID_BASE + _ID_STRIDE * i + (_mix(self.seed, i, 0) + 1) % _ID_STRIDE for i in range(n)]

    def identifiers(self, n: int | None = None) -> list[tuple[int, str, str, str]]:
        """(customer id, source, identifier type, value) of every profile identifier of the first ``n`` customers."""
        count = self.customers if n is None else max(0, min(n, self.customers))
        return [
            (self.id_of(index), profile["source"], identifier["type"], identifier["value"])
            for index in range(count)
            for profile in self._entity(index)["profiles"]
            for identifier in profile["identifiers"]
        ]

    def any_other_id(self, exclude: set[int]) -> int:
        """An id of the org not in ``exclude``; O(len(exclude)) at worst."""
        for i in range(min(self.customers, len(exclude) + 1)):
            cid = self.id_of(i)
            if cid not in exclude:
                return cid
        for cid in (*self._doc_entities, *SEED_IDS):
            if cid not in exclude:
                return cid
        raise LookupError("every id of the organisation was requested")

    # --- the bulk getCustomers items ---

    def _render_item(self, customer_id: int, source: str) -> bytes:
        """The ``data[]`` item for one id and one (valid) source."""
        fixed = self._seed_entities.get(customer_id) or self._doc_entities.get(customer_id)
        if fixed is not None:
            if customer_id == _SEED_PII_ID:
                return _item(fixed, _PII_ERROR)
            return self._profile_item(fixed, source)
        index = self.index_of(customer_id)
        if index is None:
            return _item({"id": customer_id, "profiles": []}, _UNKNOWN_ERROR)
        if self.is_pii_deleted(index):
            deleted = {
                "id": customer_id,
                "profiles": [],
                "loyaltyInfo": {"loyaltyType": "loyalty"},
                "segments": {},
                "extendedFields": {},
            }
            return _item(deleted, _PII_ERROR)
        # Not the entity cache: a bulk pull touches each id once, and this cache is per item.
        return self._profile_item(self._build_entity(index), source)

    @staticmethod
    def _profile_item(entity: JSON, source: str) -> bytes:
        profiles = entity["profiles"]
        if source == "ALL" or (len(profiles) == 1 and profiles[0]["source"] == source):
            return _item(entity, _NO_ERRORS)
        kept = [p for p in profiles if p["source"] == source]
        # The org still knows the customer, so its org-level parts stay; only profiles go.
        return _item({**entity, "profiles": kept}, _NO_ERRORS if kept else _SOURCE_ERROR)

    # --- synthetic customers ---

    def _identity(self, index: int) -> tuple[str, str, str, str, str]:
        """(first, last, mobile, email, externalId): cheap, unique per index, needed at planning time."""
        h = _mix(self.seed, index, 2)
        first = _FIRST[h % len(_FIRST)]
        last = _LAST[(h >> 8) % len(_LAST)]
        # Multiplying by a number coprime to the modulus is a bijection: values never
        # collide (within 10**8 customers, far more than MAX_CUSTOMERS).
        k = index + 104_729 * self.seed + 1
        mobile = f"91{6_000_000_000 + k * 2_654_435_761 % 4_000_000_000}"
        domain = _EMAIL_DOMAINS[(h >> 16) & 1]
        email = f"{first.lower()}.{last.lower()}.{index}@{domain}"
        external = f"{k * 61_803_399 % 100_000_000:08d}"
        return first, last, mobile, email, external

    def _build_entity(self, index: int) -> JSON:
        """The full entity (all profiles) of the synthetic customer at ``index``."""
        rng = random.Random(f"{self.seed}:{index}")
        r = rng.random
        cid = self.id_of(index)
        first, last, mobile, email, external = self._identity(index)
        in_family = self.in_family(index)

        # Identifiers: 1-3 of mobile/email/externalId; a parent always has the one it is addressed by.
        pool = [("mobile", mobile), ("email", email), ("externalId", external)]
        k = 3 if r() < 0.5 else (2 if r() < 0.7 else 1)
        if r() < 0.2:
            rng.shuffle(pool)
        chosen = pool[:k]
        forced = self._forced_id_type.get(index)
        if forced is not None and all(t != forced for t, _ in chosen):
            chosen.append(next(p for p in pool if p[0] == forced))
        identifiers: list[JSON] = [{"type": t, "value": v} for t, v in chosen]

        card: JSON | None = None
        if r() < 0.1:
            number = f"SBX{cid * 13 % 10**12:012d}"
            label, status, active = _CARD_STATUS[0 if r() < 0.8 else 1 + int(r() * 2)]
            series = 101 + int(r() * 2)
            # Both spellings occur in real responses.
            ctype = "cardnumber" if r() < 0.5 else "cardNumber"
            identifiers.append(
                {
                    "type": ctype,
                    "value": number,
                    "seriesId": series,
                    "statusLabel": label,
                }
            )
            card = self._card(rng, cid, number, series, label, status, active)

        fields: JSON = {}
        if r() < 0.5:
            fields["gender"] = _GENDERS[int(r() * 3)]
        if r() < 0.3:
            fields["Favorite Color"] = _COLORS[int(r() * len(_COLORS))]
        if r() < 0.3:
            fields["preferred_store"] = _STORES[int(r() * len(_STORES))]
        all_fields = dict(fields)
        if r() < 0.3:
            all_fields["marital_status"] = "single" if r() < 0.5 else "married"

        channels: list[JSON] = []
        for ident in identifiers:
            if ident["type"] in ("mobile", "email"):
                channels.append(self._channel(rng, ident["type"], ident["value"]))

        ids_all = list(identifiers)
        if r() < 0.15:
            ids_all.append(
                {
                    "type": "cuid",
                    "value": "cu-%x" % (_mix(self.seed, index, 3) & 0xFFFFFFFF),
                }
            )

        roll = r()
        source = "INSTORE" if in_family or roll < 0.85 else ("ECOMMERCE" if roll < 0.95 else "WECHAT")
        profiles = [
            {
                "firstName": first,
                "lastName": last,
                "fields": fields,
                "allFields": all_fields,
                "identifiers": identifiers,
                "commChannels": channels,
                "source": source,
                "userId": cid,
                "accountId": "wx-1" if source == "WECHAT" else "",
                "conflictingProfileList": _EMPTY_LIST,
                "autoUpdateTime": self._timestamp(rng),
                "identifiersAll": ids_all,
            }
        ]
        if source == "INSTORE" and r() < 0.05:
            profiles.append(self._wechat_profile(rng, index, cid, first, last, mobile))

        loyalty: JSON = {"loyaltyType": "loyalty" if r() < 0.85 else "non_loyalty"}
        roll = r()
        # The API flips between int and float here (230 vs 2400.0): so does the sandbox.
        if roll < 0.45:
            loyalty["lifetimePurchases"] = int(r() * 50_000)
        elif roll < 0.9:
            loyalty["lifetimePurchases"] = int(r() * 5_000_000) / 10
        else:
            loyalty["lifetimePurchases"] = 0.0
        if r() < 0.5:
            loyalty["score"] = int(r() * 1000)

        segments: JSON = {}
        for name, values in _SEGMENTS:
            if r() < 0.35:
                segments[name] = values[int(r() * len(values))]

        extended: JSON = {}
        if r() < 0.6:
            extended["city"] = _CITIES[int(r() * len(_CITIES))]
        if r() < 0.5:
            extended["gender"] = _GENDERS[int(r() * 3)]
        if r() < 0.4:
            year, month, day = (
                1950 + int(r() * 55),
                1 + int(r() * 12),
                1 + int(r() * 28),
            )
            extended["dob"] = f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z"

        return {
            "id": cid,
            "profiles": profiles,
            "loyaltyInfo": loyalty,
            "segments": segments,
            "associatedWith": _TILLS[int(r() * len(_TILLS))],
            "extendedFields": extended,
            "cardDetails": _EMPTY_LIST if card is None else [card],
        }

    @staticmethod
    def _timestamp(rng: random.Random, start: int = _T_2019, span: int = _T_SPAN) -> str:
        r = rng.random
        offset, suffix = _OFFSETS[int(r() * 3)]
        return _iso(start + int(r() * span), offset, suffix)

    @staticmethod
    def _channel(rng: random.Random, kind: str, value: str) -> JSON:
        r = rng.random
        return {
            "type": kind,
            "value": value,
            "primary": r() < 0.9,
            "verified": r() < 0.4,
            "meta": _METAS[r() < 0.2][r() < 0.1],
            "attributes": _EMPTY_MAP,
        }

    def _wechat_profile(
        self,
        rng: random.Random,
        index: int,
        cid: int,
        first: str,
        last: str,
        mobile: str,
    ) -> JSON:
        """The second profile ~5% of customers have: a WeChat account of the same person."""
        wx = "oSbx%010x" % (_mix(self.seed, index, 4) & 0xFFFFFFFFFF)
        identifiers: list[JSON] = [
            {"type": "wechat", "value": wx},
            {"type": "mobile", "value": mobile},
        ]
        return {
            "firstName": first,
            "lastName": last,
            "fields": {},
            "allFields": {},
            "identifiers": identifiers,
            "commChannels": [self._channel(rng, "mobile", mobile)],
            "source": "WECHAT",
            "userId": cid,
            "accountId": "wx-1",
            "conflictingProfileList": [],
            "autoUpdateTime": self._timestamp(rng),
            "identifiersAll": list(identifiers),
        }

    def _card(
        self,
        rng: random.Random,
        cid: int,
        number: str,
        series: int,
        label: str,
        status: str,
        active: bool,
    ) -> JSON:
        """One entry of ``cardDetails`` with the keys of capillary-api.md section 7."""
        created = _T_2021 + int(rng.random() * _T_SPAN // 2)
        day = time.strftime("%Y-%m-%d", time.gmtime(created))
        card_id = 9_000_000 + cid % 1_000_000
        return {
            "cardId": card_id,
            "cardNumber": number,
            "cardExternalId": "EXT-" + number,
            "seriesId": series,
            "seriesCode": f"SBX_DIGITAL_{series}",
            "seriesName": "Sandbox Digital Card",
            "type": "DIGITAL",
            "issuedDate": day,
            "createdDate": day,
            "expiryDays": 365,
            "customerId": cid,
            "orgId": 50_000,
            "entityId": 75_000 + series,
            "maxActiveCards": 1,
            "customFields": {},
            "extendedFields": {},
            "statusInfo": {
                "id": card_id,
                "label": label,
                "labelId": 1 + [s[0] for s in _CARD_STATUS].index(label),
                "status": status,
                "isActive": active,
                "reason": "",
                "actions": [],
                "createdBy": 4_000_000,
                "createdOn": _iso(created, 0, "Z"),
                "autoUpdateTime": _iso(created, 19_800, "+05:30"),
                "entityId": card_id,
            },
            "id": card_id,
            "transactionNotAllowed": not active,
        }

    @staticmethod
    def _documented_entity(child: JSON) -> JSON:
        """A bulk-endpoint entity for a child of the documented family, so both endpoints agree."""
        doc = child["profiles"][0]
        profile = {
            "firstName": doc["firstName"],
            "lastName": doc["lastName"],
            "fields": doc["fields"],
            "allFields": {},
        }
        profile.update((k, v) for k, v in doc.items() if k not in profile)
        return {
            "id": doc["userId"],
            "profiles": [profile],
            "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 0.0},
            "segments": {},
            "associatedWith": "sandbox.till",
            "extendedFields": child["extendedFields"],
            "cardDetails": [],
        }

    # --- families ---

    def _plan_families(self) -> None:
        """Lay out the families over "slots" 0, 1, 2, ... (parents, then their children).

        A slot maps to a customer index through a fixed permutation, so family members are
        spread over the org rather than being its first customers. Only families that fit are
        kept, in this order of priority, so that a tiny org still has one family per identifier
        type and an empty one.
        """
        n = self.customers
        # slot -> index is (slot * a + b) mod n with a coprime to n: a bijection, O(1) both ways.
        a = 2_654_435_761 % n if n > 1 else 1
        while n > 1 and math.gcd(a, n) != 1:
            a += 1
        self._perm = (a, (self.seed * 7_919) % n if n else 0, pow(a, -1, n) if n > 1 else 1)
        plan: list[tuple[str, str, int]] = [
            ("parentCustomer", "mobile", 3),
            ("parentCustomer", "email", 4),
            ("parentCustomer", "externalId", 2),
            ("parentCustomer", "mobile", 0),
            ("company", "externalId", 5),
            ("company", "externalId", 3),
        ]
        self._families: list[Family] = []
        self._by_key: dict[tuple[str, str, str], int] = {}
        self._forced_id_type: dict[int, str] = {}
        self._n_children: dict[int, int] = {}
        self._default_children: set[int] = set()
        self._child_indices: list[tuple[int, ...]] = []  # per family, in joining order
        slot = 0
        companies = 0

        def add(entity_type: str, id_type: str, k: int, parent: int | None = None) -> bool:
            nonlocal slot, companies
            if slot + k + (1 if entity_type != "company" and parent is None else 0) > n:
                return False
            if entity_type == "company":
                companies += 1
                value, parent_id = f"COMPANY-{companies}", None
            else:
                if parent is None:
                    parent, slot = self._slot_index(slot), slot + 1
                _, _, mobile, email, external = self._identity(parent)
                value = {"mobile": mobile, "email": email, "externalId": external}[id_type]
                self._forced_id_type[parent] = id_type
                self._n_children[parent] = k
                parent_id = self.id_of(parent)
            kids = tuple(self._slot_index(i) for i in range(slot, slot + k))
            slot += k
            if kids:
                self._default_children.add(kids[0])
            kind = "company" if entity_type == "company" else "customer"
            self._by_key[(kind, id_type, value)] = len(self._families)
            self._families.append(Family(entity_type, id_type, value, parent_id, tuple(map(self.id_of, kids))))
            self._child_indices.append(kids)
            return True

        for spec in plan:
            add(*spec)
        # A child that is itself a parent (parentChildCustomer, noOfChildren > 0).
        if self._child_indices and self._child_indices[0]:
            add("parentCustomer", "mobile", 2, self._child_indices[0][0])
        if n >= _BIG_FAMILY_MIN_ORG:
            add("parentCustomer", "mobile", _BIG_FAMILY)
        # Small families scale with the org (one per 100 customers, capped so that planning
        # stays cheap for huge orgs), 1-10 children each.
        id_types = ("mobile", "email", "externalId")
        for j in range(min(n // 100, _MAX_SMALL_FAMILIES)):
            if not add("parentCustomer", id_types[j % 3], 1 + _mix(self.seed, j, 5) % 10):
                break
        self._family_slots = slot

    def _slot_index(self, slot: int) -> int:
        a, b, _ = self._perm
        return (slot * a + b) % self.customers

    def in_family(self, index: int) -> bool:
        """Whether the customer at ``index`` is a parent or child of some family."""
        if not self.customers:
            return False
        _, b, a_inv = self._perm
        return (index - b) * a_inv % self.customers < self._family_slots

    def families(self) -> list[Family]:
        """Every family: the documented one first, then the synthetic ones in plan order."""
        doc = Family(
            "parentCustomer",
            DOCUMENTED_PARENT[0],
            DOCUMENTED_PARENT[1],
            None,
            tuple(c["profiles"][0]["userId"] for c in self._doc_children),
        )
        return [doc, *self._families]

    def find_family(self, entity_type: str, id_type: str, value: str) -> int | None:
        """The family number (-1 for the documented one) for a hierarchy lookup, else None."""
        kind = "company" if entity_type == "company" else "customer"
        if kind == "customer" and (id_type, value) == DOCUMENTED_PARENT:
            return -1
        return self._by_key.get((kind, id_type, value))

    def _build_family_children(self, family: int) -> list[_Child]:
        """The children of a family with their sort keys (computed once per family)."""
        if family == -1:
            return [
                _Child(
                    c["profiles"][0]["userId"],
                    -1,
                    calendar.timegm(time.strptime(c["createdDate"], "%Y-%m-%dT%H:%M:%SZ")),
                    c["createdDate"],
                    c["roleCode"],
                    frozenset({"INSTORE"}),
                    {},
                )
                for c in self._doc_children
            ]
        return [self._child(i) for i in self._child_indices[family]]

    def _child(self, index: int) -> _Child:
        entity = self._entity(index)
        r = random.Random(f"{self.seed}:{index}:member").random
        created = _T_2021 + int(r() * _T_SPAN // 2)
        offset, suffix = _OFFSETS[int(r() * 3)]
        role = _ROLE_CODES[int(r() * len(_ROLE_CODES))]
        sources = frozenset(p["source"] for p in entity["profiles"])
        return _Child(
            self.id_of(index),
            index,
            created,
            _iso(created, offset, suffix),
            role,
            sources,
            {},
        )

    def children_page(
        self, family: int, source: str | None, ascending: bool, offset: int, limit: int,
        associate: bool, no_of_children: bool,
    ) -> list[bytes]:  # fmt: skip
        """Rendered children of one page, sorted by (createdDate, userId)."""
        children = self._sorted_children(family, source or "ALL", ascending)
        parent = self._parent_customer(family, no_of_children) if associate else None
        return [
            self._child_json(c, source or "ALL", associate, no_of_children, parent)
            for c in children[offset : offset + limit]
        ]

    def _parent_customer(self, family: int, no_of_children: bool) -> bytes | None:
        """A child's ``parentCustomer``: its parent's first profile (names, source, userId) and, with
        includeNoOfChildren, the parent's ``noOfChildren``, every child of the family whatever the
        source asked. The docs list the object but show no example (docs/testing.md says what is
        assumed); the documented family's parent has no customer id, and a company is no customer:
        neither gets one."""
        parent_id = self._families[family].parent_id if family >= 0 else None
        index = self.index_of(parent_id) if parent_id is not None else None
        if index is None:
            return None
        profile = self._entity(index)["profiles"][0]
        obj: JSON = {"profiles": [{k: profile[k] for k in ("firstName", "lastName", "source", "userId")}]}
        if no_of_children:
            obj["noOfChildren"] = len(self._child_indices[family])
        return _dumps(obj)

    def _build_sorted_children(self, family: int, source: str, ascending: bool) -> list[_Child]:
        kids = self._family_children(family)
        if source != "ALL":
            kids = [c for c in kids if source in c.sources]
        return sorted(kids, key=lambda c: (c.created, c.user_id), reverse=not ascending)

    def _child_json(self, child: _Child, source: str, associate: bool, noc: bool, parent: bytes | None) -> bytes:
        key = (source, associate, noc)  # a child has one parent: its parentCustomer is not in the key
        cached = child.fragments.get(key)
        if cached is not None:
            return cached
        obj: JSON
        if child.index < 0:
            doc = next(c for c in self._doc_children if c["profiles"][0]["userId"] == child.user_id)
            obj = {"profiles": doc["profiles"], "extendedFields": doc["extendedFields"]}
            n_children, default = doc["noOfChildren"], doc["defaultChild"]
        else:
            entity = self._entity(child.index)
            obj = {
                "profiles": _hierarchy_profiles(entity, source),
                "extendedFields": entity["extendedFields"],
            }
            n_children = self._n_children.get(child.index, 0)
            default = child.index in self._default_children
        # Key order as in the documented example: roleCode, createdDate, noOfChildren, defaultChild.
        if associate:
            obj["roleCode"] = child.role
            obj["createdDate"] = child.created_str
        if noc:
            obj["noOfChildren"] = n_children
        if associate:
            obj["defaultChild"] = default
        rendered = _dumps(obj)
        if parent is not None:  # spliced in: rendered once per page, not once per child
            rendered = rendered[:-1] + b',"parentCustomer":' + parent + b"}"
        # A racing thread renders the same bytes: the unlocked write is harmless.
        child.fragments[key] = rendered
        return rendered

    def outsider_child(self) -> bytes | None:
        """A rendered child that belongs to no family (for the "extra" fault), if the org has one."""
        if self._family_slots >= self.customers:
            return None
        entity = self._entity(self._slot_index(self._family_slots))
        return _dumps(
            {
                "profiles": _hierarchy_profiles(entity, "ALL"),
                "extendedFields": entity["extendedFields"],
            }
        )

    def parent_keys(self) -> list[tuple[str, str]]:
        """(identifierType, value) of every customer parent (companies excluded)."""
        return [(f.identifier_type, f.identifier_value) for f in self.families() if f.entity_type != "company"]


def _hierarchy_profiles(entity: JSON, source: str) -> list[JSON]:
    # The hierarchy endpoint's profiles have no allFields (as in the documented example).
    return [
        {k: v for k, v in p.items() if k != "allFields"}
        for p in entity["profiles"]
        if source == "ALL" or p["source"] == source
    ]
