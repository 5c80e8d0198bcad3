"""The hierarchy endpoint: the child customers of one or many parents (GET /v2/customers/bulk), every page.

This module is the hierarchy's spec (:data:`SPEC`), its adapter for the pull engine
(:mod:`capframe._engine`) and its pull: a unit is one parent's walk (its association, identifier type and value), a request walks every page of it.
Pages are walked with limit/offset. The API documents no maximum page size and a server may cap
it silently, so a short page alone does not end the walk. Where the children state their parent's
``noOfChildren`` (``parentCustomer``, asked for with includeNoOfChildren and
includeCustomerAssociateDetail), a short page that brings the walk to exactly that many ends it: a
family that fits a page costs one request, and a short page with fewer is a capped page, so the
walk goes on. Where they do not (or state fewer than came), a short page ends the walk only when it
is also shorter than the pages before it. Either way the walk ends at an empty page, a page that brings no child not seen before,
or past the ``count`` the API reported (with slack for children added meanwhile). Parents are
fetched concurrently; a parent given as a customer id is looked up first with Get Customers Bulk
(through the same snapshot), which the public functions (:mod:`capframe._fetch`) hand to
:func:`pull_children`: no endpoint module imports another.

The ``parents`` table is made from what a snapshot holds already (each walk's children, and the
API's refusal of a parent it does not know), so a rerun from a snapshot gives the same table.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

import polars as pl

from capframe import _args, _tidy, _wire
from capframe._answers import Answer, Tidied, answer, combine, in_order_lazily, tidy_answers
from capframe._classify import server_text
from capframe._client import Client
from capframe._endpoints import Spec, Words, model_rules, model_schemas, register
from capframe._engine import (
    Delivery,
    Notice,
    Pulled,
    Reply,
    Unit,
    check_streaming,
    connect,
    pull,
    scan,
    snapshot_of,
    stored_tables,
)
from capframe._http import Session, call, redaction
from capframe._snapshot import max_age_of
from capframe._tables import ChildrenTables, CustomerTables, Provenance
from capframe.errors import (
    ArgumentTypeError,
    CapframeError,
    CapframeWarning,
    FetchError,
    InvalidArgumentError,
    ParentNotFoundError,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "CustomersById",
    "Parent",
    "pull_children",
    "pull_children_scans",
    "scan_children",
]

# The API documents neither a maximum nor a default; 100 keeps pages small enough that a server
# cap below it is noticed by the walk, and a family of 1,000 costs 11 requests.
DEFAULT_PAGE_SIZE = 100
ASSOCIATIONS = ("parentCustomer", "company", "parentChildCustomer")
SORT_ORDERS = ("ASC", "DESC")
_RESOLVE_ORDER = ("mobile", "email", "externalId")  # the identifier a customer id is looked up by
# The association's identifier value is a mobile or an email: personal data, in the URL.
_PERSONAL = {"associationEntityIdentifierValue": "associationEntityIdentifierType"}

SPEC = register(
    Spec(
        "children",
        "GET",
        "/v2/customers/bulk",
        pl.String(),  # a walk's key: its association, identifier type and value, as JSON
        None,  # a part holds one walk: its rows do not say which
        ChildrenTables.stored(),  # ``parents`` is made from them after a pull
        ("host", "pull_source", "association"),
        1_000_000,
        functools.partial(model_schemas, ChildrenTables, ("parent_customer_id",)),
        Words(
            "parents", "fetched", "the fetch failed", "those parents as rows of errors, and of parents with found null"
        ),
        personal=_PERSONAL,
        reading=lambda: (_wire.CHILDREN_PAGE, _wire.WIRE_VERSION, model_rules(ChildrenTables)),
    )
)
TABLES = SPEC.write_order
# Children added while a walk goes on may push it past the count its first page reported: this much.
_COUNT_SLACK = 0.1

Parent = tuple[str, str] | int
Refusal = tuple[int | None, str]  # why a parent has no walk: the API's code (if any), the reason
# Get Customers Bulk for parents given as customer ids (ids, source, client, cache_dir): given by
# the public layer (capframe._fetch), which composes the endpoints; none imports another.
CustomersById = Callable[[list[int], str, Client | None, Any], Awaitable[Delivery[CustomerTables]]]


@dataclass(frozen=True)
class _Parent:
    position: int
    type: str | None  # None until a customer id is resolved
    value: str = field(repr=False)  # personal data: never in a traceback's locals or a log
    customer_id: int | None = None

    def label(self) -> str:
        """How messages name a parent: never its value, which is personal data."""
        kind = f"customer id {self.customer_id}" if self.customer_id is not None else f"{self.type} identifier"
        return f"parent #{self.position + 1} ({kind})"

    def unit(self, association: str) -> str:
        """The snapshot's key of this parent's walk (page size and sort order are not in it)."""
        return json.dumps([association, self.type, self.value])


def _parent(value: Any, position: int) -> _Parent:
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise InvalidArgumentError(f"parent #{position + 1} is {value}: a customer id is a positive integer")
        return _Parent(position, None, str(value), customer_id=value)
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ArgumentTypeError(
            f"parent #{position + 1} must be an (identifier_type, value) pair such as ('mobile', '917799889933') "
            f"or a customer id, not {type(value).__name__}"
        )
    given, text = value
    kind = _args.identifier_type(given, f"parent #{position + 1}")
    return _Parent(position, kind, _args.identifier_value(text, f"parent #{position + 1} ({kind} identifier)"))


def _parents(parent: Parent | Sequence[Parent]) -> tuple[list[_Parent], bool]:
    """-> (every parent asked, in order, repeats too; whether one parent was asked)."""
    if isinstance(parent, list):
        if not parent:
            raise InvalidArgumentError("parent is an empty list: give at least one parent")
        return [_parent(p, i) for i, p in enumerate(parent)], False
    return [_parent(parent, 0)], True


def _distinct(asked: list[_Parent]) -> list[_Parent]:
    """Each parent once, as first asked."""
    first: dict[tuple[str | None, str, int | None], _Parent] = {}
    for p in asked:
        first.setdefault((p.type, p.value, p.customer_id), p)
    return list(first.values())


def _choice(name: str, value: Any, options: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, one of {', '.join(options)}")
    for option in options:
        if value.lower() == option.lower():
            return option
    raise InvalidArgumentError(f"unknown {name} {value!r}: use one of {', '.join(options)}")


@dataclass
class _Page:
    answer: Answer
    size: int  # children on the page as sent, before any de-duplication
    count: int | None  # the children the API says the parent has
    success: bool
    code: int | None
    message: str | None
    family: int | None  # the children the parent has, as its children's parentCustomer states it


def _read_page(body: bytes, parent: _Parent, limit: int) -> _Page:
    entities, request_level, success, drift = _wire.children_entities(body)
    if entities.height > limit:  # which of them is not the parent's, or repeated, nobody can tell: ask again
        raise _wire.WireFormatError(f"the page holds {entities.height} children, more than the {limit} asked")
    # Values no customer can have: asking again gets the same, so the walk fails and says so.
    if (entities["customer_id"] <= 0).any():
        bad = entities.filter(pl.col("customer_id") <= 0)["customer_id"][0]
        raise _wire.WireTypeError(f"a child has userId {bad}, which is not a customer id")
    if (entities["noOfChildren"].fill_null(0) < 0).any():
        bad = entities.filter(pl.col("noOfChildren") < 0)["noOfChildren"][0]
        raise _wire.WireTypeError(f"a child has noOfChildren {bad}, which is not a count")
    entities = entities.with_columns(parent_type=pl.lit(parent.type), parent_value=pl.lit(parent.value))
    first = request_level["errors"].explode(empty_as_null=False, keep_nulls=False).drop_nulls()
    code = first[0]["code"] if len(first) else None
    message = first[0]["message"] if len(first) else None
    return _Page(
        answer([body], entities, request_level, drift, children=True),
        entities.height,
        _count(body),
        success,
        code,
        message,
        _family_size(entities),
    )


def _family_size(entities: pl.DataFrame) -> int | None:
    """``parentCustomer.noOfChildren`` of a page's children: the most any of them states (a value
    that is no count is not trusted); None when none states one."""
    text = _wire.json_text(pl.col("parentCustomer"), entities.schema["parentCustomer"])
    stated = entities.select(text.str.json_path_match("$.noOfChildren").cast(pl.Int64, strict=False)).to_series()
    most = stated.filter(stated >= 0).max()
    return most if isinstance(most, int) else None


def _count(body: bytes) -> int | None:
    """entity.count of a page that has been read: the total the API reports, if it is a count."""
    try:
        count = json.loads(body)["entity"]["count"]
    except (ValueError, LookupError, TypeError):
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


@dataclass
class _Children:
    """The hierarchy adapter of the pull engine: a unit is one parent's walk."""

    host: str
    source: str
    association: str
    page_size: int
    sort_order: str
    parents: dict[str, _Parent]  # unit -> the parent it walks
    notices: list[Notice] = field(default_factory=list)
    spec: Spec = SPEC

    async def ask(self, session: Session, units: tuple[Unit, ...]) -> Reply:
        (unit,) = units
        parent = self.parents[str(unit)]
        pages = await self._walk(session, parent)
        if not pages[0].success:
            first = pages[0]
            # The API's words go into errors, the snapshot and ParentNotFoundError: short, printable, and
            # without the client's credentials, which a gateway may repeat, nor the parent's value.
            redact = redaction(session, dict.fromkeys(SPEC.personal, parent.value))
            message = server_text(first.message, redact) if first.message else "the API answered success=false"
            return Reply([], [unit], {unit: (first.code, message)})
        return Reply([page.answer for page in pages], [unit])

    async def _walk(self, session: Session, parent: _Parent) -> list[_Page]:
        pages: list[_Page] = []
        offset, seen = 0, set[int]()
        while True:
            page = await call(
                session,
                SPEC.method,
                SPEC.path,
                params={
                    "source": self.source,
                    "associationEntityType": self.association,
                    "associationEntityIdentifierType": str(parent.type),
                    "associationEntityIdentifierValue": parent.value,
                    "limit": str(self.page_size),
                    "offset": str(offset),
                    "sortOrder": self.sort_order,
                    "includeNoOfChildren": "true",
                    "includeCustomerAssociateDetail": "true",
                },
                what=f"page {len(pages) + 1} of the children of {parent.label()}",
                read=partial(_read_page, parent=parent, limit=self.page_size),
            )
            pages.append(page)
            if not page.success or page.size == 0:
                break
            ids = page.answer.entities["customer_id"]
            new = set(ids) - seen
            if len(new) < page.size:  # a child seen on an earlier page (or twice on this one) is kept once
                page.answer.entities = page.answer.entities.filter(ids.is_in(list(new)) & ids.is_first_distinct())
            # A short page with every child the API says the parent has ends the walk; with fewer, it
            # is a page the server capped, so the walk goes on. A full page, or a count the children
            # belie, is not trusted: a wrong count must cost a request, never children.
            total = len(seen | new)
            if page.family == total and page.size < self.page_size:
                break
            shorter = page.size < self.page_size and any(page.size < p.size for p in pages[:-1])
            if (page.family is None or total > page.family) and shorter:
                break
            if not new:  # a server that ignores offset would loop forever
                self.notices.append(
                    (
                        f"the walk of the children of {parent.label()} stopped at page {len(pages)}: it brought no "
                        "child not seen before (the API seems to ignore offset); the children seen are kept",
                        CapframeWarning,
                    )
                )
                break
            seen |= new
            offset += page.size  # what was sent, not what was asked: a capped page must not skip children
            # The sandbox reports the children on the page as `count`; a count above the page's size can
            # only be the family's: past it (and the slack), the server is sending more than it said.
            count = pages[0].count if (pages[0].count or 0) > pages[0].size else None
            if count is not None and len(seen) > count * (1 + _COUNT_SLACK) + self.page_size:
                self.notices.append(
                    (
                        f"the walk of the children of {parent.label()} stopped after {len(seen)} children: the API "
                        f"reported {count}, and pages kept coming; the children seen are kept",
                        CapframeWarning,
                    )
                )
                break
        return pages

    def tidy(self, answers: Sequence[Answer]) -> Tidied:
        return tidy_answers(answers, main="children", main_table=_tidy.child_table)

    def failed(self, units: Sequence[Unit], why: str) -> None:
        """A failed walk's rows are made with the parents table (:func:`_error_rows`): one per parent
        asked, and two parents may share a walk."""

    def columns(self) -> dict[str, str]:
        return {"host": self.host, "pull_source": self.source, "association": self.association}


def _outcomes(
    walked: dict[int, _Parent | Refusal], association: str, pulled: Pulled
) -> dict[int, tuple[bool | None, int | None, str]]:
    """Position -> (found, code, message) of each parent without children to show: not found (by Get
    Customers Bulk, or by the hierarchy API), or its walk failed (found null)."""
    outcomes: dict[int, tuple[bool | None, int | None, str]] = {}
    failures = pulled.failures
    for position, walk in walked.items():
        if isinstance(walk, tuple):
            outcomes[position] = (False, *walk)
        elif (unit := walk.unit(association)) in pulled.refused:
            outcomes[position] = (False, *pulled.refused[unit])
        elif unit in failures:
            outcomes[position] = (None, None, failures[unit])
    return outcomes


def _error_rows(parents: list[_Parent], outcomes: dict[int, tuple[bool | None, int | None, str]]) -> pl.DataFrame:
    """An errors row for each parent with no children to show: its label (never its value) and why;
    those not found first, then those whose walk failed (``found`` null), each in the order asked."""
    rows = []
    for p in sorted((p for p in parents if p.position in outcomes), key=lambda p: outcomes[p.position][0] is None):
        found, code, why = outcomes[p.position]
        origin = "api" if code is not None else "capframe"
        rows.append(
            (p.customer_id, "error", origin, code, f"{p.label()}: {'not found: ' if found is False else ''}{why}")
        )
    return pl.DataFrame(rows, schema=_tidy.ERRORS, orient="row")


async def _resolve(
    parents: list[_Parent],
    source: str,
    client: Client | None,
    cache_dir: Any,
    notices: list[Notice],
    customers_by_id: CustomersById,
) -> dict[int, _Parent | Refusal]:
    """Each parent's position -> the parent as walked: a customer id by an identifier the hierarchy
    API takes, looked up with Get Customers Bulk (through the same snapshot); instead, for one that
    cannot be, (the API's code, the reason)."""
    ids = list(dict.fromkeys(p.customer_id for p in parents if p.customer_id is not None))
    found: dict[int, _Parent | Refusal] = {}
    if ids:
        tables, lookup_notices, error = await customers_by_id(ids, source, client, cache_dir)
        notices += lookup_notices
        if isinstance(error, FetchError):
            raise FetchError(
                f"the lookup of {len(ids)} parent customer id(s) failed ({error}); nothing was fetched. "
                "Pass the parents as (identifier_type, value) pairs to need no lookup.",
                status=error.status,
                ids=error.ids,
            ) from None
        if error is not None:
            raise error
        found = _identifiers_of(tables)
    walked: dict[int, _Parent | Refusal] = {}
    for p in parents:
        target = (
            p if p.customer_id is None else found.get(p.customer_id, (None, "Get Customers Bulk did not answer it"))
        )
        walked[p.position] = target if isinstance(target, tuple) else replace(target, position=p.position)
    return walked


def _identifiers_of(tables: CustomerTables) -> dict[int, _Parent | Refusal]:
    """Customers fetched by id -> a parent by the first identifier of ``_RESOLVE_ORDER`` each has, or why none."""
    customers, identifiers = tables.customers, tables.identifiers.filter(pl.col("in_identifiers"))
    found: dict[int, _Parent | Refusal] = {}
    rows = customers.select("customer_id", "success", "error_code", "error_message").iter_rows()
    for customer_id, success, code, why in rows:
        if not success:
            found[customer_id] = (code, f"Get Customers Bulk could not find it ({why})")
            continue
        own = identifiers.filter(pl.col("customer_id") == customer_id)
        for kind in _RESOLVE_ORDER:
            values = own.filter(pl.col("type") == kind)["value"].drop_nulls()
            if len(values):
                found[customer_id] = _Parent(0, kind, values[0], customer_id)
                break
        else:
            found[customer_id] = (None, "it has no mobile, email or externalId to look its children up by")
    return found


@dataclass
class _Walks:
    """A children pull done: what its fetch and its sink both make their tables from."""

    parents: list[_Parent]  # each parent once, as first asked
    ready: list[_Parent]  # those with a walk to read (found, or given as an identifier)
    walks: dict[str, _Parent]  # a walk's unit -> the parent it walks
    asked: pl.DataFrame  # one row per parent asked (see _asked)
    errors: pl.DataFrame  # an errors row per parent without children to show
    not_found: int  # parents the API (or Get Customers Bulk) does not know
    pulled: Pulled
    provenance: Provenance
    notices: list[Notice]


async def _pull_walks(
    parent: Parent | Sequence[Parent],
    source: str,
    client: Client | None,
    association: str,
    page_size: int | None,
    sort_order: str,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    customers_by_id: CustomersById,
    *,
    read_back: bool,
) -> _Walks:
    """Resolve the parents, walk those the snapshot lacks (``read_back``: see ``_engine.pull``), and
    account for every parent asked; a single parent the API does not know is ParentNotFoundError."""
    asked, single = _parents(parent)
    parents = _distinct(asked)
    source = _args.source(source)
    association = _choice("association", association, ASSOCIATIONS)
    sort_order = _choice("sort_order", sort_order, SORT_ORDERS)
    size = DEFAULT_PAGE_SIZE if page_size is None else _args.count("page_size", page_size)
    age = max_age_of(max_age)
    snapshot = snapshot_of(cache_dir)
    checked, host = connect(client, snapshot)
    notices: list[Notice] = []
    walked = await _resolve(parents, source, checked, cache_dir, notices, customers_by_id)
    ready = [p for p in walked.values() if isinstance(p, _Parent)]
    walks = {p.unit(association): p for p in reversed(ready)}  # two parents of one identifier: one walk, the first's
    adapter = _Children(host, source, association, size, sort_order, walks)
    pulled = await pull(
        adapter,
        list(dict.fromkeys(p.unit(association) for p in ready)),
        host=host,
        source=source,
        client=checked,
        snapshot=snapshot,
        max_age=age,
        progress=progress,
        keep=TABLES,
        read_back=read_back,
    )
    notices += adapter.notices + pulled.notices
    outcomes = _outcomes(walked, association, pulled)
    not_found = sorted(position for position, outcome in outcomes.items() if outcome[0] is False)
    if single and not_found:
        _, code, reason = outcomes[not_found[0]]
        raise ParentNotFoundError(
            f"the API does not know {parents[0].label()} as a {association} in source {source}: {reason}"
            + (f" (code {code})" if code is not None else "")
            + ". Check the identifier type and value, the source, and the association type.",
            code=code,
        )
    provenance = pulled.provenance(host, source, len(parents), len(outcomes))
    table_of_asked = _asked(asked, parents, walked, outcomes)
    return _Walks(
        parents,
        ready,
        walks,
        table_of_asked,
        _error_rows(parents, outcomes),
        len(not_found),
        pulled,
        provenance,
        notices,
    )


def _not_found_notice(walks: _Walks) -> None:
    if walks.not_found:
        walks.notices.append(
            (
                f"{walks.not_found} of {len(walks.parents)} parents were not found: fetch_children_tables(...)"
                ".failed_parents lists each, with the API's reason",
                CapframeWarning,
            )
        )


async def pull_children(
    parent: Parent | Sequence[Parent],
    source: str,
    client: Client | None,
    association: str,
    page_size: int | None,
    sort_order: str,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    *,
    customers_by_id: CustomersById,
) -> Delivery[ChildrenTables]:
    """The pull behind the fetch_children functions; ``customers_by_id`` looks up parents given as ids."""
    arguments = (parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age)
    walks = await _pull_walks(*arguments, customers_by_id, read_back=True)
    stored = (
        combine(walks.pulled.chunks, TABLES, "children", walks.notices)
        if any(c.tables for c in walks.pulled.chunks)
        else {name: frame for name, frame in ChildrenTables.empty().tables().items() if name in TABLES}
    )
    plans = _tables_of(walks, {name: frame.lazy() for name, frame in stored.items()})
    tables = dict(zip(plans, pl.collect_all(plans.values()), strict=True))
    bundle = ChildrenTables.of(tables, walks.provenance).checked()
    _not_found_notice(walks)
    return bundle, walks.notices, _error(walks, bundle, cache_dir is not None)


async def pull_children_scans(
    parent: Parent | Sequence[Parent],
    source: str,
    client: Client | None,
    association: str,
    page_size: int | None,
    sort_order: str,
    progress: bool | None,
    cache_dir: str | os.PathLike[str],
    max_age: timedelta | float | None,
    *,
    customers_by_id: CustomersById,
) -> Delivery[dict[str, pl.LazyFrame]]:
    """The pull behind the sink_children functions: into the snapshot, then every table (children
    first) as a LazyFrame over its files, holding the walks of the parents asked only, in their
    order, with failed parents as rows: what :func:`pull_children` would give, not yet read."""
    arguments = (parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age)
    walks = await _pull_walks(*arguments, customers_by_id, read_back=False)
    tables = _tables_of(walks, stored_tables(walks.pulled, walks.notices))
    check_streaming(tables, ChildrenTables.contracts(), read=walks.pulled.read > 0)
    _not_found_notice(walks)
    ordered = {name: tables[name] for name in ChildrenTables.NAMES}
    return ordered, walks.notices, _error(walks, ordered, cached=True)


def _error(walks: _Walks, partial: ChildrenTables | dict[str, pl.LazyFrame], cached: bool) -> CapframeError | None:
    return walks.pulled.error(len(walks.parents), partial, cached=cached, label=lambda u: walks.walks[str(u)].label())


def _asked(
    asked: list[_Parent],
    parents: list[_Parent],
    walked: dict[int, _Parent | Refusal],
    outcomes: dict[int, tuple[bool | None, int | None, str]],
) -> pl.DataFrame:
    """One row per parent asked, in order: how it was given, the walk that lists its children
    (``parent_type``/``parent_value`` as in ``children``), and (found, code, message) where it failed.
    A parent asked again shares the first one's walk and outcome."""
    first = {(p.type, p.value, p.customer_id): p.position for p in parents}
    rows = []
    for p in asked:
        position = first[(p.type, p.value, p.customer_id)]
        walk = walked.get(position)
        walk = walk if isinstance(walk, _Parent) else None
        found, code, message = outcomes.get(position, (True, None, None))
        rows.append(
            (
                p.position + 1,
                "customer_id" if p.customer_id is not None else p.type,
                None if p.customer_id is not None else p.value,
                p.customer_id,
                found,
                code,
                message,
                walk.type if walk is not None else None,
                walk.value if walk is not None else None,
            )
        )
    schema = {
        "parent_number": pl.Int64,
        "given_as": pl.String,
        "given_value": pl.String,
        "customer_id": pl.Int64,
        "found": pl.Boolean,
        "error_code": pl.Int64,
        "error_message": pl.String,
        "parent_type": pl.String,
        "parent_value": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _parents_table(asked: pl.DataFrame, children: pl.LazyFrame) -> pl.LazyFrame:
    """The ``parents`` table: ``asked`` with each found parent's children counted (0 included) and
    its customer id where only the API's ``parentCustomer`` states it."""
    families = (
        children.lazy()
        .group_by("parent_type", "parent_value")
        .agg(
            pl.len().cast(pl.Int64).alias("no_of_children"),
            # Server text: a userId that is no customer id is not taken.
            pl.col("parent_customer")
            .str.json_path_match("$.profiles[0].userId")
            .cast(pl.Int64, strict=False)
            .drop_nulls()
            .first()
            .alias("stated_id"),
        )
    )
    return (
        asked.lazy()
        .join(families, on=["parent_type", "parent_value"], how="left", maintain_order="left")
        .select(
            "parent_number",
            "given_as",
            "given_value",
            pl.coalesce("customer_id", pl.when(pl.col("stated_id") > 0).then("stated_id")).alias("customer_id"),
            "found",
            pl.when("found").then(pl.col("no_of_children").fill_null(0)).alias("no_of_children"),
            "error_code",
            "error_message",
        )
    )


def _tables_of(walks: _Walks, stored: dict[str, pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    """The bundle's tables (``parents`` made) from the stored tables of the walks, in walk order: the
    same plan for a fetch (which collects it) and a sink (which hands it out)."""
    # A child of two parents is one row per parent in `children`, but one customer in the others.
    others = {name: frame.unique(maintain_order=True) for name, frame in stored.items() if name != "children"}
    ids = stored["children"].select(pl.col("customer_id").unique(maintain_order=True))
    children = _with_parent_ids(stored["children"], walks.ready)
    tables = {"children": children, **in_order_lazily(others, ids)}
    tables["errors"] = pl.concat([tables["errors"], walks.errors.lazy()])
    tables["parents"] = _parents_table(walks.asked, children)
    return {name: tables[name] for name in ChildrenTables.NAMES}


def _with_parent_ids(children: pl.LazyFrame, parents: list[_Parent]) -> pl.LazyFrame:
    """The customer id a parent was given as, beside its identifier (null for a parent given by identifier)."""
    given = pl.LazyFrame(
        [(p.type, p.value, p.customer_id) for p in parents if p.customer_id is not None],
        schema={"parent_type": pl.String, "parent_value": pl.String, "parent_customer_id": pl.Int64},
        orient="row",
    ).unique(["parent_type", "parent_value"], keep="first", maintain_order=True)
    joined = children.drop("parent_customer_id", strict=False).join(
        given, on=["parent_type", "parent_value"], how="left", maintain_order="left"
    )
    columns = joined.collect_schema().names()
    at = columns.index("customer_id") + 1
    return joined.select(*columns[:at], "parent_customer_id", *[c for c in columns[at:] if c != "parent_customer_id"])


def scan_children(
    cache_dir: str | os.PathLike[str], table: str = "children", *, source: str | None = None
) -> pl.LazyFrame:
    """A LazyFrame over a table of a ``cache_dir`` snapshot's walks: each (host, source, association,
    parent) walk once (``host``, ``source`` and ``association`` are columns), every source unless one is given.

    DuckDB and Spark read ``cache_dir/children/<table>/*.parquet`` the same way (docs/snapshots.md).
    """
    if table not in TABLES:
        raise InvalidArgumentError(f"unknown table {table!r}: use one of {', '.join(sorted(TABLES))}")
    return scan(cache_dir, SPEC.name, table, None if source is None else _args.source(source))
