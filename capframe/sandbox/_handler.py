"""The ``Sandbox``: routing, auth, rate limit and fault injection over the synthetic org.

One synchronous core (:meth:`Sandbox.handle`) serves both the in-process httpx transports and
the loopback HTTP server, so both behave byte for byte the same.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import math
import random
import secrets
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

import httpx

from ._lookup import LOOKUP_PATH, lookup
from ._org import ALL_SOURCES, IDENTIFIER_NAMES, Family, Org

__all__ = ["FAULT_KINDS", "Faults", "RequestRecord", "Sandbox"]

FAULT_KINDS: Final[tuple[str, ...]] = (
    "500", "502", "503", "504", "429", "429-date", "429-bare", "521", "reset", "timeout",
    "truncate", "malformed", "html", "content-type", "drop", "duplicate", "extra", "token-expiry",
)  # fmt: skip
_OK: Final = "ok"  # a script entry meaning "no fault for this request"

TOKEN_PATH: Final = "/v3/oauth/token/generate"
BULK_PATH: Final = "/v2/bulk/getCustomers"
CHILDREN_PATH: Final = "/v2/customers/bulk"

_ENTITY_TYPES: Final = frozenset({"parentCustomer", "company", "parentChildCustomer"})
_MAX_BATCH: Final = 1000
_WINDOW: Final = 60.0

_JSON: Final = "application/json"
_HTML: Final = "text/html"
_HTML_5XX: Final = (
    "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_200: Final = (
    b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
    b"<h1>We'll be back soon</h1><p>The service is undergoing maintenance.</p></body></html>"
)
_GARBAGE: Final = b'{"data": [' + bytes(range(0x80, 0xA0)) + b"\x00\xff\xfe<<garbage>>"


def _error_list(code: int, message: str) -> list[dict[str, object]]:
    return [{"status": False, "code": code, "message": message}]


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _errors_body(code: int, message: str) -> bytes:
    """The bare error envelope of auth and gateway errors."""
    return _json({"errors": _error_list(code, message)})


def _bulk_error(code: int, message: str) -> bytes:
    """The envelope of a request-level error of the bulk endpoint."""
    return _json({"data": [], "warnings": [], "errors": _error_list(code, message)})


def _children_error(code: int, message: str) -> bytes:
    return _json({"warnings": [], "errors": _error_list(code, message), "success": False})


_UNAUTHORIZED: Final = _errors_body(401, "Unauthorized")
_EXPIRED: Final = _errors_body(401, "Invalid or expired token")
_NO_PARENT: Final = _json(
    {
        "entity": {"customers": [], "count": 0, "errors": [], "warnings": []},
        "warnings": [],
        "errors": _error_list(8015, "No customer found with the given identifier(s)"),
        "success": False,
    }
)


@dataclass(frozen=True)
class Faults:
    """Which requests fail, and how.

    ``script`` is applied in order to the first API requests, one entry each (``"ok"`` = no
    fault); after it, each request draws a fault from ``rates`` (kind -> probability) with a
    ``random.Random(seed)``. Token requests never get a fault.
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    script: Sequence[str] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        # Copy and freeze: a caller mutating its dict or list must not change the sandbox.
        rates = dict(self.rates)
        if isinstance(self.script, str):
            raise TypeError("Faults.script must be a sequence of fault kinds, not a single string")
        script = tuple(self.script)
        bad = sorted({k for k in rates if k not in FAULT_KINDS} | {k for k in script if k not in (*FAULT_KINDS, _OK)})
        if bad:
            raise ValueError(
                f"unknown fault kind(s) {bad}; known kinds: {', '.join(FAULT_KINDS)} (and 'ok' in a script)"
            )
        if any(not 0.0 <= p <= 1.0 for p in rates.values()):
            raise ValueError("fault rates must be probabilities between 0 and 1")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to {sum(rates.values())}, more than 1")
        object.__setattr__(self, "rates", types.MappingProxyType(rates))
        object.__setattr__(self, "script", script)

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.rates.items())), tuple(self.script), self.seed))

    @classmethod
    def coerce(cls, value: Faults | Mapping[str, float] | Sequence[str] | None) -> Faults:
        """A Faults from what ``Sandbox(faults=...)`` accepts: a mapping is rates, a sequence a script."""
        if value is None:
            return cls()
        if isinstance(value, Faults):
            return value
        if isinstance(value, Mapping):
            return cls(rates=value)
        if isinstance(value, str):
            raise TypeError("faults= takes a list of fault kinds, not a single string; wrap it: [kind]")
        return cls(script=value)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One handled request. ``status`` is 0 when no response was sent ("reset", "timeout").

    ``fault`` is the injected fault, or "capacity" for the 503 of a server past twice its capacity.
    ``n_ids`` is the number of ids asked for (bulk endpoint) or children returned (hierarchy).
    """

    time: float
    method: str
    path: str
    status: int
    fault: str | None
    n_ids: int


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)


class _Abort(Exception):
    """Raised inside the handler for faults that send no response at all."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Sandbox:
    """A faithful in-process emulator of Capillary's bulk customer and hierarchy endpoints.

    ``latency`` (seconds) delays every answer; ``requests_per_minute`` answers 429 past that many
    API requests in any 60 s window; ``faults`` injects failures (see :class:`Faults`).
    ``capacity=C`` makes a server that degrades under load, to test a pipeline against one: a
    request that finds n requests in flight (itself included) is answered after
    ``latency x max(1, n / C)`` seconds, so past C in flight the server answers no more requests a
    second, only later; past 2C it answers 503 at once. Every request counts, token requests too.

    >>> sandbox = Sandbox(customers=100)
    >>> with httpx.Client(transport=sandbox.sync_transport(), base_url=Sandbox.BASE_URL) as client:
    ...     creds = {"key": Sandbox.CLIENT_KEY, "secret": Sandbox.CLIENT_SECRET}
    ...     token = client.post("/v3/oauth/token/generate", json=creds).json()["data"]["accessToken"]
    ...     response = client.post(
    ...         "/v2/bulk/getCustomers?source=INSTORE",
    ...         json=sandbox.customer_ids(2),
    ...         headers={"X-CAP-API-OAUTH-TOKEN": token},
    ...     )
    >>> response.status_code, [item["success"] for item in response.json()["data"]]
    (200, [True, True])
    """

    BASE_URL: ClassVar[str] = "https://sandbox.capframe.invalid"
    USERNAME: ClassVar[str] = "sandbox.till"
    PASSWORD: ClassVar[str] = "sandbox"
    CLIENT_KEY: ClassVar[str] = "sandbox-key"
    CLIENT_SECRET: ClassVar[str] = "sandbox-secret"

    def __init__(
        self,
        customers: int = 10_000,
        *,
        seed: int = 0,
        latency: float = 0.0,
        faults: Faults | Mapping[str, float] | Sequence[str] | None = None,
        requests_per_minute: int | None = None,
        capacity: int | None = None,
        token_ttl: int = 300,
        max_page_size: int = 200,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be >= 1 request in flight (or None for a server that never degrades)")
        if requests_per_minute is not None and requests_per_minute < 1:
            raise ValueError("requests_per_minute must be >= 1 (or None for no limit)")
        if token_ttl < 1:
            raise ValueError("token_ttl must be >= 1 second")
        if max_page_size < 1:
            raise ValueError("max_page_size must be >= 1")
        self._org = Org(customers, seed)
        self.customers = customers
        self.seed = seed
        self.latency = latency
        self.faults = Faults.coerce(faults)
        self.requests_per_minute = requests_per_minute
        self.capacity = capacity
        self.token_ttl = token_ttl
        self.max_page_size = max_page_size
        self.request_log: list[RequestRecord] = []

        self._lock = threading.Lock()
        # The one clock of tokens, the rate window and the log; tests swap it to skip waiting.
        self._clock: Callable[[], float] = time.monotonic
        self._counter = 0
        self._script_pos = 0
        self._fault_rng = random.Random(self.faults.seed)
        self._fault_table = [(k, self.faults.rates[k]) for k in FAULT_KINDS if self.faults.rates.get(k)]
        self._tokens: dict[str, float] = {}  # token -> time.monotonic() deadline
        self._window: collections.deque[float] = collections.deque()
        self._in_flight = 0
        digest = hashlib.md5(self.PASSWORD.encode()).hexdigest().lower()  # the API's own scheme
        self._basic_credentials = f"{self.USERNAME}:{digest}".encode()

    # --- the org, for tests and demos ---

    def customer_ids(self, n: int | None = None) -> list[int]:
        """Ids that exist, in a stable order (the first ``n``); the fixed seed-page ids are not included."""
        return self._org.customer_ids(n)

    def pii_deleted_ids(self) -> list[int]:
        """Ids whose customers were deleted on request (code 8109), the seed page's one first."""
        return self._org.pii_deleted_ids()

    def unknown_ids(self, n: int) -> list[int]:
        """``n`` positive ids the org does not have (code 8015)."""
        return self._org.unknown_ids(n)

    def parents(self) -> list[tuple[str, str]]:
        """(identifierType, value) of every parent customer, the documented example first.

        Companies are not customers and are listed by :meth:`companies` instead.
        """
        return self._org.parent_keys()

    def companies(self) -> list[tuple[str, str]]:
        """(identifierType, value) of the companies (``associationEntityType=company``)."""
        return [(f.identifier_type, f.identifier_value) for f in self._org.families() if f.entity_type == "company"]

    def identifiers(self, n: int | None = None) -> list[tuple[int, str, str, str]]:
        """(customer id, source, identifier type, value) of each identifier of the first ``n`` customers'
        profiles (PII-deleted ones too, which a lookup does not find): values to look up."""
        return self._org.identifiers(n)

    def families(self) -> list[Family]:
        """Every family with its children's ids (in joining order), for checking a pipeline's output."""
        return self._org.families()

    # --- transports ---

    def transport(self) -> httpx.AsyncBaseTransport:
        """An in-process transport for ``httpx.AsyncClient`` (latency awaited with asyncio.sleep)."""
        return httpx.MockTransport(self.ahandle)

    def sync_transport(self) -> httpx.BaseTransport:
        """An in-process transport for ``httpx.Client`` (latency slept in the calling thread)."""
        return httpx.MockTransport(self._handle_with_latency)

    def _handle_with_latency(self, request: httpx.Request) -> httpx.Response:
        with self._occupancy() as delay:
            if delay is None:
                return self._overloaded(request)
            if delay:
                time.sleep(delay)
            return self.handle(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        """Wait ``latency`` seconds (more past ``capacity``), then answer like :meth:`handle`."""
        with self._occupancy() as delay:
            if delay is None:
                return self._overloaded(request)
            if delay:
                await asyncio.sleep(delay)
            return self.handle(request)

    @contextlib.contextmanager
    def _occupancy(self) -> Iterator[float | None]:
        """Count a request in flight while it is served: how long to wait before answering it, or
        None when more than twice ``capacity`` are in flight (answer with :meth:`_overloaded`)."""
        with self._lock:
            self._in_flight += 1
            in_flight = self._in_flight
        try:
            if self.capacity is None:
                yield self.latency
            elif in_flight > 2 * self.capacity:
                yield None
            else:
                yield self.latency * max(1.0, in_flight / self.capacity)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _overloaded(self, request: httpx.Request) -> httpx.Response:
        """The 503 of a server with more than twice its ``capacity`` in flight."""
        reply = _Reply(503, _errors_body(503, "Service temporarily unavailable"))
        self._record(request, reply.status, "capacity", 0)
        headers = {"Content-Type": reply.content_type, "X-Cap-Requestid": "sbx-overloaded"}
        return httpx.Response(reply.status, headers=headers, content=reply.body, request=request)

    # --- the core ---

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, or raise the httpx error a "reset"/"timeout" fault stands for."""
        with self._lock:
            self._counter += 1
            request_id = f"sbx-{self._counter:06d}"
        path = request.url.path
        fault: str | None = None
        n_ids = 0
        try:
            if path == TOKEN_PATH:
                reply = self._token(request)
            elif path in (BULK_PATH, CHILDREN_PATH, LOOKUP_PATH):
                reply, fault, n_ids = self._api(request, path)
            else:
                reply = _Reply(404, _errors_body(404, "Resource not found"))
        except _Abort as abort:
            self._record(request, 0, abort.kind, 0)
            if abort.kind == "reset":
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from None
            raise httpx.ReadTimeout("sandbox fault: timeout", request=request) from None
        headers = {
            "Content-Type": reply.content_type,
            "X-Cap-Requestid": request_id,
            **reply.headers,
        }
        self._record(request, reply.status, fault, n_ids)
        return httpx.Response(reply.status, headers=headers, content=reply.body, request=request)

    def _record(self, request: httpx.Request, status: int, fault: str | None, n_ids: int) -> None:
        record = RequestRecord(self._clock(), request.method, request.url.path, status, fault, n_ids)
        with self._lock:
            self.request_log.append(record)

    # --- OAuth ---

    def _token(self, request: httpx.Request) -> _Reply:
        if request.method != "POST":
            return _Reply(
                405,
                _json(
                    {
                        "data": None,
                        "errors": [{"code": 405, "message": "Method not allowed"}],
                    }
                ),
            )
        try:
            body = json.loads(request.content)
            key, secret = body["key"], body["secret"]
        except (ValueError, TypeError, KeyError):
            return _Reply(
                400,
                _json(
                    {
                        "data": None,
                        "errors": [{"code": 400, "message": "Invalid Request"}],
                    }
                ),
            )
        if not (
            isinstance(key, str)
            and isinstance(secret, str)
            and hmac.compare_digest(key.encode(), self.CLIENT_KEY.encode())
            and hmac.compare_digest(secret.encode(), self.CLIENT_SECRET.encode())
        ):
            return _Reply(
                401,
                _json(
                    {
                        "data": None,
                        "errors": [{"code": 1001, "message": "Invalid key or secret"}],
                    }
                ),
            )
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            # Forget expired tokens here, so the dict stays as small as the live tokens.
            for old in [t for t, deadline in self._tokens.items() if deadline <= now]:
                del self._tokens[old]
            self._tokens[token] = now + self.token_ttl
        return _Reply(
            200,
            _json(
                {
                    "data": {"accessToken": token, "ttlSeconds": self.token_ttl},
                    "errors": None,
                }
            ),
        )

    def _authenticate(self, request: httpx.Request) -> tuple[str | None, str | None]:
        """("oauth"|"basic"|None, the token used if any)."""
        token = request.headers.get("X-CAP-API-OAUTH-TOKEN")
        if token is not None:
            with self._lock:
                deadline = self._tokens.get(token)
            if deadline is not None and self._clock() < deadline:
                return "oauth", token
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                given = b""
            if hmac.compare_digest(given, self._basic_credentials):
                return "basic", None
        return None, token

    def _revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    # --- rate limit and faults ---

    def _admit(self) -> int | None:
        """None if the request fits the sliding window, else the seconds until a slot frees."""
        if self.requests_per_minute is None:
            return None
        now = self._clock()
        with self._lock:
            while self._window and self._window[0] <= now - _WINDOW:
                self._window.popleft()
            if len(self._window) >= self.requests_per_minute:
                return max(1, math.ceil(self._window[0] + _WINDOW - now))
            self._window.append(now)
        return None

    def _draw_fault(self) -> str | None:
        with self._lock:
            script = self.faults.script
            if self._script_pos < len(script):
                kind = script[self._script_pos]
                self._script_pos += 1
                return None if kind == _OK else kind
            if not self._fault_table:
                return None
            x = self._fault_rng.random()
        for kind, p in self._fault_table:
            if x < p:
                return kind
            x -= p
        return None

    # --- the two API endpoints ---

    def _api(self, request: httpx.Request, path: str) -> tuple[_Reply, str | None, int]:
        bulk = path == BULK_PATH
        if request.method != ("POST" if bulk else "GET"):
            return _Reply(405, _errors_body(405, "Method not allowed")), None, 0
        how, token = self._authenticate(request)
        if how is None:
            return (
                _Reply(401, _EXPIRED if token is not None else _UNAUTHORIZED),
                None,
                0,
            )
        wait = self._admit()
        if wait is not None:
            return (
                _Reply(
                    429,
                    _errors_body(429, "Too many requests"),
                    headers={"Retry-After": str(wait)},
                ),
                None,
                0,
            )

        fault = self._draw_fault()
        early = self._early_fault(fault)
        if early is not None:
            return early, fault, 0
        if fault == "token-expiry" and how == "oauth":
            assert token is not None
            self._revoke(token)  # from now on this token is refused, as after a real expiry
            return _Reply(401, _EXPIRED), fault, 0

        if bulk:
            reply, n_ids = self._bulk(request, fault)
        elif path == LOOKUP_PATH:
            reply, n_ids = _Reply(*lookup(self._org, request)), 1
        else:
            reply, n_ids = self._children(request, fault)
        if reply.status == 200:
            if fault == "truncate":
                reply.body = reply.body[: len(reply.body) // 2]
            elif fault == "content-type":
                reply.content_type = "text/plain"
        return reply, fault, n_ids

    @staticmethod
    def _early_fault(fault: str | None) -> _Reply | None:
        """The reply of a fault that stands in for the whole request (a gateway or network fault)."""
        if fault is None:
            return None
        if fault in ("reset", "timeout"):
            raise _Abort(fault)
        if fault in ("502", "504"):
            title = "502 Bad Gateway" if fault == "502" else "504 Gateway Time-out"
            return _Reply(int(fault), _HTML_5XX.format(title).encode(), _HTML)
        if fault == "500":
            return _Reply(500, _errors_body(500, "UNEXPECTED_ERROR"))
        if fault == "503":
            return _Reply(503, _errors_body(503, "Service temporarily unavailable"))
        if fault == "521":
            return _Reply(
                521,
                _errors_body(521, "Multiple actions running on the same customer, retry later"),
            )
        if fault.startswith("429"):
            headers: dict[str, str] = {}
            if fault == "429":
                headers["Retry-After"] = "1"
            elif fault == "429-date":
                when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
                headers["Retry-After"] = email.utils.format_datetime(when, usegmt=True)
            return _Reply(429, _errors_body(429, "Too many requests"), headers=headers)
        if fault == "malformed":
            return _Reply(200, _GARBAGE)
        if fault == "html":
            return _Reply(200, _HTML_200, _HTML)
        return None

    def _bulk(self, request: httpx.Request, fault: str | None) -> tuple[_Reply, int]:
        source = request.url.params.get("source")
        if source is None or source not in ALL_SOURCES:
            return _Reply(400, _bulk_error(8012, "Invalid source")), 0
        if not request.content.strip():
            return _Reply(405, _bulk_error(405, "Method not allowed. Request body missing.")), 0
        try:
            ids = json.loads(request.content)
        except ValueError:
            ids = None
        if not isinstance(ids, list):
            return _Reply(400, _bulk_error(400, "Invalid Request")), 0
        if len(ids) > _MAX_BATCH:
            return _Reply(400, _bulk_error(1060, "Batch limit size exceeded")), 0
        # type() is int: a JSON true would pass isinstance(..., int).
        if any(type(i) is not int or i <= 0 for i in ids):
            return _Reply(400, _bulk_error(400, "Invalid Request")), 0

        item = self._org.item
        items = [item(i, source) for i in ids]
        if fault == "drop" and items:
            items.pop()
        elif fault == "duplicate" and items:
            items.append(items[0])
        elif fault == "extra":
            items.append(item(self._org.any_other_id(set(ids)), source))
        body = b'{"data":[' + b",".join(items) + b'],"warnings":[],"errors":[]}'
        return _Reply(200, body), len(ids)

    def _children(self, request: httpx.Request, fault: str | None) -> tuple[_Reply, int]:
        q = request.url.params
        entity_type = q.get("associationEntityType")
        id_type = q.get("associationEntityIdentifierType")
        value = q.get("associationEntityIdentifierValue")
        if not entity_type or not id_type or value is None or value == "":
            missing = [
                name
                for name, v in (
                    ("associationEntityType", entity_type),
                    ("associationEntityIdentifierType", id_type),
                    ("associationEntityIdentifierValue", value),
                )
                if not v
            ]
            return _Reply(
                400,
                _children_error(400, f"Missing required parameter(s): {', '.join(missing)}"),
            ), 0
        if entity_type not in _ENTITY_TYPES:
            return _Reply(
                400,
                _children_error(400, f"Invalid associationEntityType: {entity_type}"),
            ), 0
        canonical = IDENTIFIER_NAMES.get(id_type.lower())
        if canonical is None:
            return _Reply(
                400,
                _children_error(400, f"Invalid associationEntityIdentifierType: {id_type}"),
            ), 0
        source: str | None = None
        if q.get("source"):
            source = q["source"].upper()
            if source not in ALL_SOURCES:
                return _Reply(400, _children_error(8012, "Invalid source")), 0
        try:
            limit = _count_param("limit", q.get("limit"), 10)
            offset = _count_param("offset", q.get("offset"), 0)
            no_of_children = _flag(q.get("includeNoOfChildren"))
            associate = _flag(q.get("includeCustomerAssociateDetail"))
        except ValueError as exc:
            return _Reply(400, _children_error(400, str(exc))), 0
        order = q.get("sortOrder", "DESC").upper()
        if order not in ("ASC", "DESC"):
            return _Reply(400, _children_error(400, "Invalid sortOrder: use ASC or DESC")), 0

        family = self._org.find_family(entity_type, canonical, value)
        if family is None:
            return _Reply(200, _NO_PARENT), 0
        # The real cap is not documented; the sandbox silently serves at most max_page_size.
        limit = min(limit, self.max_page_size)
        parts = self._org.children_page(family, source, order == "ASC", offset, limit, associate, no_of_children)
        if fault == "duplicate" and parts:
            parts.append(parts[0])
        elif fault == "extra":
            outsider = self._org.outsider_child()
            if outsider is not None:
                parts.append(outsider)
        body = (
            b'{"entity":{"customers":['
            + b",".join(parts)
            + b'],"count":%d,"errors":[],"warnings":[]},"warnings":[],"errors":[],"success":true}' % len(parts)
        )
        return _Reply(200, body), len(parts)


def _count_param(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    # isdigit alone accepts non-ASCII digits, and int() would accept "+1" or "1_0".
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"Invalid {name}: {raw!r} is not a non-negative integer")
    return int(raw)


def _flag(raw: str | None) -> bool:
    if raw is None or raw == "":
        return False
    low = raw.lower()
    if low not in ("true", "false"):
        raise ValueError(f"Invalid boolean value {raw!r}: use true or false")
    return low == "true"
