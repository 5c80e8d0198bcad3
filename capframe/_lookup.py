"""GET /v2/customers/lookup: an identifier (mobile, email, external id, card number) to a customer id.

This module is the lookup's spec (:data:`SPEC`), its adapter for the pull engine
(:mod:`capframe._engine`) and its pull: a unit is one (identifier type, value), a request one lookup
(the API has no batch). What the snapshot stores of a lookup is the customer id it answered, or (in
the index) the API's refusal.

What the API answers is documented for success only (``{"entity": 306, "warnings": []}``) and for
its error codes, not for the body of a failed lookup (docs/snapshots.md, "Customers by identifier").
Every plausible shape is read: ``{"errors": [{"code", "message"}]}`` with HTTP 200 or a 4xx, an
``entity`` that is null or absent (not found, no code). A value is personal data: messages name it
by its number and type ("value #17 (mobile)"), never by itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from capframe import _args, _wire
from capframe._answers import NO_UNKNOWN, Answer, Tidied
from capframe._classify import server_text
from capframe._client import Client
from capframe._endpoints import Spec, Words, register
from capframe._engine import Pulled, Reply, Unit, pull
from capframe._http import Session, call, redaction
from capframe._snapshot import Snapshot
from capframe._tables import CustomerTables
from capframe.errors import ArgumentTypeError, CapframeError, InvalidArgumentError, RequestRejectedError

__all__ = ["LookedUp", "Value", "lookup_table", "pull_lookups", "read_lookup", "values_of"]

# The codes the API answers for one value (documented): a row of the map, never an error of the pull.
CODES = {
    8015: "no customer found with the given identifier",
    8065: "no customer found in the given source with the given identifier",
    8045: "account id is not passed",
    8013: "customer identifier is invalid",
    8011: "invalid source account",
}
TABLE = "customer_ids"  # what the snapshot stores of a found value: its unit and its customer id
STORED = pl.Schema({"lookup": pl.String(), "customer_id": pl.Int64()})

SPEC = register(
    Spec(
        "lookups",
        "GET",
        "/v2/customers/lookup",
        pl.String(),  # (identifier type, value) as JSON
        "lookup",
        (TABLE,),
        ("host", "pull_source"),
        1,
        lambda: {TABLE: STORED},
        Words("identifier values", "looked up", "the lookup failed", "those values as rows of lookups with found null"),
        personal={"identifierValue": "identifierName"},
        reading=lambda: _wire.WIRE_VERSION,
    )
)


@dataclass(frozen=True)
class Value:
    """One value asked: its place in the list, its identifier type, its text, and the account of
    the source it is looked up in (None: a source with one account)."""

    position: int
    type: str
    text: str = field(repr=False)  # personal data: never in a traceback's locals or a log
    account: str | None = None

    def label(self) -> str:
        """How messages name a value: never by itself, which is personal data."""
        return f"value #{self.position + 1} ({self.type})"

    def unit(self) -> str:
        """The snapshot's key of this lookup (with host and source): one account's answer is not another's."""
        return json.dumps([self.type, self.text, *([self.account] if self.account is not None else [])])


def _value(item: object, position: int, kind: str | None, account: str | None) -> Value:
    if kind is None:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ArgumentTypeError(
                f"value #{position + 1} must be an (identifier_type, value) pair such as ('mobile', '917799889933'), "
                f"not {type(item).__name__}; or pass identifier='mobile' (email, externalId, cardnumber) with plain values"
            )
        kind, item = _args.identifier_type(item[0], f"value #{position + 1}"), item[1]
    text = _args.identifier_value(item, f"value #{position + 1} ({kind})")
    return Value(position, kind, text, account)


def values_of(given: Any, identifier: str | None, account_id: object = None) -> list[Value]:
    """Values asked, in order, repeats too: with ``identifier``, plain values of that type; without,
    (identifier_type, value) pairs. Text is kept as written (leading zeros, ``+``), but for
    surrounding whitespace; an int is its digits. ``account_id``: the source's account, for all."""
    kind = None if identifier is None else _args.identifier_type(identifier, "identifier")
    account = _account(account_id)
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        raise ArgumentTypeError(
            f"identifiers must be a list of values, not {type(given).__name__}: e.g. ['917799889933'] with "
            "identifier='mobile', or [('mobile', '917799889933')]"
        )
    values = [_value(item, position, kind, account) for position, item in enumerate(given)]
    if not values:
        raise InvalidArgumentError("the list of identifiers is empty: give at least one value")
    return values


def _account(account_id: object) -> str | None:
    """The account of a multi-account source (WECHAT, FACEBOOK, MARTJACK), as given but for
    surrounding whitespace. Not personal data: it names the brand's account, not a customer."""
    if account_id is None:
        return None
    if isinstance(account_id, int) and not isinstance(account_id, bool):
        account_id = str(account_id)
    if not isinstance(account_id, str):
        raise ArgumentTypeError(f"account_id must be text, such as '1234', not {type(account_id).__name__}")
    account = account_id.strip()
    if not account:
        raise InvalidArgumentError(
            "account_id is empty: give the source's account id, or leave it out for a one-account source"
        )
    if not account.isprintable():
        raise InvalidArgumentError("account_id holds control characters: give the source's account id as it is written")
    if len(account) > _args.IDENTIFIER_VALUE_MOST:
        raise InvalidArgumentError(
            f"account_id is {len(account):,} characters long, more than any account id "
            f"({_args.IDENTIFIER_VALUE_MOST:,} at most): give the source's account id"
        )
    return account


def read_lookup(body: bytes) -> tuple[int | None, int | None, str | None]:
    """A lookup's body -> (customer id, None, None), or (None, the API's code, its message).

    An ``entity`` that is a positive integer is the customer id; an ``errors`` list says why there is
    none; an ``entity`` null or absent without errors is "not found" without a code. Anything else
    (not an object, an entity of another type) is no lookup answer."""
    document = _wire.loads(body)
    if not isinstance(document, dict):
        raise _wire.WireFormatError("the body is not a JSON object")
    entity = document.get("entity")
    if type(entity) is int:
        if not 0 < entity < 2**63:
            raise _wire.WireTypeError(f"entity is {entity}, which is not a customer id")
        return entity, None, None
    errors = document.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
    if first is not None:
        code, message = first.get("code"), first.get("message")
        code = code if type(code) is int and -(2**63) <= code < 2**63 else None
        text = message if isinstance(message, str) and message else CODES.get(code or 0, "the API found no customer")
        return None, code, text
    if entity is None:
        return None, None, "the API answered no customer id"
    raise _wire.WireTypeError(f"entity is a {type(entity).__name__}, not a customer id")


@dataclass
class _Lookups:
    """The lookup adapter of the pull engine: a unit is one (identifier type, value)."""

    host: str
    source: str
    values: dict[str, Value]  # unit -> the first value asked of it
    spec: Spec = SPEC

    async def ask(self, session: Session, units: tuple[Unit, ...]) -> Reply:
        (unit,) = units
        value = self.values[str(unit)]
        params = {"source": self.source, "identifierName": value.type, "identifierValue": value.text}
        if value.account is not None:
            params["accountId"] = value.account
        try:
            customer_id, code, message = await call(
                session, SPEC.method, SPEC.path, params=params, what=f"the lookup of {value.label()}", read=read_lookup
            )
        except RequestRejectedError as exc:  # a 4xx with one of the codes the API answers for one value
            if exc.code not in CODES:
                raise
            customer_id, code, message = None, exc.code, exc.api_message or CODES[exc.code]
        if customer_id is None:
            # The API's words go into the map, the snapshot and a terminal: short, printable, and without
            # the client's credentials or the value asked, which a server may repeat.
            reason = server_text(message, redaction(session, params)) if message else "the API found no customer"
            return Reply([], [unit], {unit: (code, reason)})
        found = pl.DataFrame({"lookup": [str(unit)], "customer_id": [customer_id]}, schema=STORED)
        return Reply([Answer(found, pl.DataFrame(), NO_UNKNOWN)], [unit])

    def tidy(self, answers: Sequence[Answer]) -> Tidied:
        return Tidied({TABLE: pl.concat([a.entities for a in answers])})

    def failed(self, units: Sequence[Unit], why: str) -> None:
        """A failed lookup's row is made with the map (:func:`lookup_table`): one per value asked."""

    def columns(self) -> dict[str, str]:
        return {"host": self.host, "pull_source": self.source}


@dataclass
class LookedUp:
    """What the lookups of a pull give: the map (one row per value asked), and the pull's account."""

    lookups: pl.DataFrame
    pulled: Pulled
    first: dict[str, Value]  # unit -> the first value asked of it: how messages name a unit
    host: str
    pulled_source: str  # the source as checked (upper case)

    def error(self, partial: CustomerTables | pl.DataFrame, *, cached: bool) -> CapframeError | None:
        """The lookups' own error: values whose lookup failed (named by number and type), or the snapshot's."""
        asked = len(self.first)
        return self.pulled.error(asked, partial, cached=cached, label=lambda unit: self.first[str(unit)].label())


async def pull_lookups(
    values: list[Value],
    *,
    host: str,
    source: str,
    client: Client | None,
    snapshot: Snapshot | None,
    max_age: Any,
    progress: bool | None,
    session: Session | None,
) -> LookedUp:
    """Each distinct value looked up once (through the snapshot), then the map of every value asked."""
    first = {v.unit(): v for v in reversed(values)}  # a value asked twice: one lookup, the first's
    pulled = await pull(
        _Lookups(host, source, first),
        list(dict.fromkeys(v.unit() for v in values)),
        host=host,
        source=source,
        client=client,
        snapshot=snapshot,
        max_age=max_age,
        progress=progress,
        keep=(TABLE,),
        session=session,
    )
    tables = [p.tables[TABLE] for p in pulled.chunks if TABLE in p.tables]
    found = pl.concat(tables) if tables else pl.DataFrame(schema=STORED)
    return LookedUp(lookup_table(values, found, pulled.refused, pulled.failures), pulled, first, host, source)


def lookup_table(
    values: Sequence[Value],
    found: pl.DataFrame,
    refused: dict[Unit, tuple[int | None, str]],
    failed: dict[Unit, str],
) -> pl.DataFrame:
    """The map: one row per value asked, in order, with its customer id or why it has none."""
    ids = dict(found.unique("lookup", keep="last").iter_rows())
    rows = []
    for v in values:
        unit = v.unit()
        if unit in ids:
            outcome: tuple[int | None, bool | None, int | None, str | None] = (ids[unit], True, None, None)
        elif unit in refused:
            outcome = (None, False, *refused[unit])
        elif unit in failed:
            outcome = (None, None, None, failed[unit])
        else:  # the engine accounts for every unit asked: this is no answer it gave
            outcome = (None, None, None, "the lookup has no answer")
        rows.append((v.position + 1, v.type, v.text, *outcome))
    schema = {
        "value_number": pl.Int64,
        "identifier_type": pl.String,
        "identifier_value": pl.String,
        "customer_id": pl.Int64,
        "found": pl.Boolean,
        "error_code": pl.Int64,
        "error_message": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")
