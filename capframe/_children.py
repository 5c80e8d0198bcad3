"""fetch_children: the child customers of one or many parents (GET /v2/customers/bulk), every page.

Pages are walked with limit/offset. The API documents no maximum page size and a server may cap
it silently, so a short page ends the walk only when it is also shorter than the pages before it;
otherwise the walk goes on until an empty page. Parents are fetched concurrently.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from typing import Any

import polars as pl

from capframe import _args, _sync, _tidy, _wire
from capframe._batch import Answer, answer, combine, in_order, tidy_answers
from capframe._client import Client
from capframe._customers import _GROUP, ask, tidy_customer_answers
from capframe._http import RetriesExhausted, Session, advice, call
from capframe._progress import Progress, progress_bar
from capframe._tables import ChildrenTables, Provenance
from capframe.errors import (
    ArgumentTypeError,
    CapframeWarning,
    FetchError,
    InvalidArgumentError,
    ParentNotFoundError,
)

__all__ = ["DEFAULT_PAGE_SIZE", "afetch_children", "afetch_children_tables", "fetch_children", "fetch_children_tables"]

# The API documents neither a maximum nor a default; 100 keeps pages small enough that a server
# cap below it is noticed by the walk, and a family of 1,000 costs 11 requests.
DEFAULT_PAGE_SIZE = 100
IDENTIFIER_TYPES = {
    t.lower(): t for t in ("mobile", "email", "externalId", "cardnumber", "wechat", "martjackId", "fbId")
}
ASSOCIATIONS = ("parentCustomer", "company", "parentChildCustomer")
SORT_ORDERS = ("ASC", "DESC")
_RESOLVE_ORDER = ("mobile", "email", "externalId")  # the identifier a customer id is looked up by
TABLES = ChildrenTables.NAMES

Parent = tuple[str, str] | int


@dataclass(frozen=True)
class _Parent:
    position: int
    type: str | None  # None until a customer id is resolved
    value: str
    customer_id: int | None = None

    def label(self) -> str:
        """How messages name a parent: never its value, which is personal data."""
        kind = f"customer id {self.customer_id}" if self.customer_id is not None else f"{self.type} identifier"
        return f"parent #{self.position + 1} ({kind})"


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
    kind, text = value
    if not isinstance(kind, str) or kind.lower() not in IDENTIFIER_TYPES:
        raise InvalidArgumentError(
            f"parent #{position + 1} has identifier type {kind!r}: use one of {', '.join(IDENTIFIER_TYPES.values())}"
        )
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"parent #{position + 1} has an empty {kind} value")
    return _Parent(position, IDENTIFIER_TYPES[kind.lower()], text.strip())


def _parents(parent: Parent | Sequence[Parent]) -> tuple[list[_Parent], bool]:
    """-> (parents, whether one parent was asked)."""
    if isinstance(parent, list):
        if not parent:
            raise InvalidArgumentError("parent is an empty list: give at least one parent")
        parents = [_parent(p, i) for i, p in enumerate(parent)]
        return list({(p.type, p.value, p.customer_id): p for p in parents}.values()), False
    return [_parent(parent, 0)], True


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
    success: bool
    code: int | None
    message: str | None


def _read_page(body: bytes, parent: _Parent, limit: int) -> _Page:
    entities, request_level, success, drift = _wire.children_entities(body)
    if entities.height > limit:  # which of them is not the parent's, or repeated, nobody can tell: ask again
        raise _wire.WireFormatError(f"the page holds {entities.height} children, more than the {limit} asked")
    entities = entities.with_columns(parent_type=pl.lit(parent.type), parent_value=pl.lit(parent.value))
    first = request_level["errors"].explode(empty_as_null=False, keep_nulls=False).drop_nulls()
    code = first[0]["code"] if len(first) else None
    message = first[0]["message"] if len(first) else None
    return _Page(answer([body], entities, request_level, drift, children=True), entities.height, success, code, message)


@dataclass
class _Walk:
    session: Session
    source: str
    association: str
    page_size: int
    sort_order: str
    bar: Progress

    async def resolve(self, parents: list[_Parent]) -> dict[int, _Parent | str]:
        """Customer ids -> an identifier the hierarchy API takes (via Get Customers Bulk)."""
        ids = tuple(sorted({p.customer_id for p in parents if p.customer_id is not None}))
        if not ids:
            return {}
        found: dict[int, _Parent | str] = {}
        for start in range(0, len(ids), self.session.client.batch_size):
            chunk = ids[start : start + self.session.client.batch_size]
            try:
                read = await ask(self.session, self.source, chunk, f"the lookup of {len(chunk)} parent customer id(s)")
            except RetriesExhausted as exc:
                raise FetchError(
                    f"the lookup of {len(chunk)} parent customer id(s) failed ({exc.reason}); nothing was fetched. "
                    + advice(
                        [exc],
                        "The API is failing or limiting this client: try again later, or pass the parents as "
                        "(identifier_type, value) pairs, which need no lookup.",
                    ),
                    status=exc.status,
                    ids=chunk,
                ) from None
            tables = tidy_customer_answers([read]).tables
            customers, identifiers = tables["customers"], tables["identifiers"]
            for customer_id in chunk:
                row = customers.filter(pl.col("customer_id") == customer_id)
                if row.is_empty() or not row["success"][0]:
                    why = row["error_message"][0] if not row.is_empty() else "not in the API's answer"
                    found[customer_id] = f"Get Customers Bulk could not find it ({why})"
                    continue
                own = identifiers.filter((pl.col("customer_id") == customer_id) & pl.col("in_identifiers"))
                for kind in _RESOLVE_ORDER:
                    values = own.filter(pl.col("type") == kind)["value"].drop_nulls()
                    if len(values):
                        found[customer_id] = _Parent(0, kind, values[0], customer_id)
                        break
                else:
                    found[customer_id] = "it has no mobile, email or externalId to look its children up by"
        return found

    async def pages(self, parent: _Parent) -> list[_Page]:
        pages: list[_Page] = []
        offset, seen = 0, set[int]()
        while True:
            page = await call(
                self.session,
                "GET",
                "/v2/customers/bulk",
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
            shorter = page.size < self.page_size and any(page.size < p.size for p in pages[:-1])
            if shorter or not new:  # not new: a server that ignores offset would loop forever
                break
            seen |= new
            offset += page.size  # what was sent, not what was asked: a capped page must not skip children
        self.bar.update()
        return pages


def _not_found(parent: _Parent, code: int | None, reason: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [parent.customer_id],
            "level": ["error"],
            "origin": ["api" if code is not None else "capframe"],
            "code": [code],
            "message": [f"parent {parent.type or 'customer id'}:{parent.value} not found: {reason}"],
        },
        schema=_tidy.ERRORS,
    )


async def afetch_children_tables(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
) -> ChildrenTables:
    """The async twin of :func:`fetch_children_tables`."""
    parents, single = _parents(parent)
    source = _args.source(source)
    association = _choice("association", association, ASSOCIATIONS)
    sort_order = _choice("sort_order", sort_order, SORT_ORDERS)
    size = DEFAULT_PAGE_SIZE if page_size is None else _args.count("page_size", page_size)
    client = _args.client(client)
    bar = progress_bar(len(parents), "children", progress)
    fetched_at = datetime.now(UTC).replace(microsecond=0)
    not_found: list[tuple[_Parent, int | None, str]] = []
    answers: list[Answer] = []
    try:
        async with Session.connect(client) as session:
            walk = _Walk(session, source, association, size, sort_order, bar)
            resolved = await walk.resolve(parents)
            ready: list[_Parent] = []
            for p in parents:
                target = resolved.get(p.customer_id, p) if p.customer_id is not None else p
                if isinstance(target, str):
                    not_found.append((p, None, target))
                else:
                    ready.append(_Parent(p.position, target.type, target.value, p.customer_id))
            walks = await asyncio.gather(*(walk.pages(p) for p in ready), return_exceptions=True)
    finally:
        bar.close()
    failures: list[tuple[_Parent, RetriesExhausted]] = []
    for p, result in zip(ready, walks, strict=True):
        if isinstance(result, RetriesExhausted):
            failures.append((p, result))
        elif isinstance(result, BaseException):
            raise result
        elif not result[0].success:
            not_found.append((p, result[0].code, result[0].message or "the API answered success=false"))
        else:
            answers.extend(page.answer for page in result)
    if single and not_found:
        p, code, reason = not_found[0]
        raise ParentNotFoundError(
            f"the API does not know {p.label()} as a {association} in source {source}: {reason}"
            + (f" (code {code})" if code is not None else "")
            + ". Check the identifier type and value, the source, and the association type.",
            code=code,
        )
    tables = _bundle(
        answers,
        [_not_found(*n) for n in not_found] + [_not_found(p, None, f"fetch failed: {e.reason}") for p, e in failures],
        Provenance(
            fetched_at, client.base_url, source, version("capframe"), len(parents), len(not_found) + len(failures)
        ),
    )
    if not_found:
        warnings.warn(
            f"{len(not_found)} of {len(parents)} parents were not found; they are rows of the errors table",
            CapframeWarning,
            stacklevel=2,
        )
    if failures:
        raise FetchError(
            f"the children of {len(failures)} of {len(parents)} parent(s) could not be fetched "
            f"({failures[0][1].reason}). " + advice(exc for _, exc in failures) + " What was fetched is in .partial.",
            status=failures[0][1].status,
            partial=tables,
        ) from None
    return tables


def _bundle(answers: list[Answer], errors: list[pl.DataFrame], provenance: Provenance) -> ChildrenTables:
    batches = [
        tidy_answers(answers[i : i + _GROUP], main="children", main_table=_tidy.child_table)
        for i in range(0, len(answers), _GROUP)
    ]
    tables = combine(batches, TABLES, "children") if batches else ChildrenTables.empty().tables()
    # A child of two parents is one row per parent in `children`, but one customer in the others.
    tables = {
        name: frame if name == "children" else frame.unique(maintain_order=True) for name, frame in tables.items()
    }
    tables = {"children": tables["children"]} | in_order(
        {name: frame for name, frame in tables.items() if name != "children"},
        tables["children"]["customer_id"].unique(maintain_order=True),
    )
    tables["errors"] = pl.concat([tables["errors"], *errors])
    bundle = ChildrenTables.of(tables, provenance)
    bundle.validate()
    return bundle


def fetch_children_tables(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
) -> ChildrenTables:
    """The children of ``parent`` -> :class:`ChildrenTables` (children and their child tables).

    ``parent`` is an ``(identifier_type, value)`` pair such as ``("mobile", "917799889933")``, a
    customer id (looked up first with Get Customers Bulk, then addressed by its mobile, email or
    externalId, in that order), or a list of those, fetched concurrently into one bundle.
    """
    return _sync.run(
        afetch_children_tables(
            parent, source=source, client=client, association=association,
            page_size=page_size, sort_order=sort_order, progress=progress,
        )
    )  # fmt: skip


async def afetch_children(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
) -> pl.DataFrame:
    """The async twin of :func:`fetch_children`."""
    tables = await afetch_children_tables(
        parent, source=source, client=client, association=association,
        page_size=page_size, sort_order=sort_order, progress=progress,
    )  # fmt: skip
    return tables.children


def fetch_children(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
) -> pl.DataFrame:
    """The child customers of ``parent``, one row per (parent, child), every page.

    >>> import capframe
    >>> children = capframe.fetch_children(("mobile", "917799889933"), client=capframe.Client.sandbox())
    >>> children.select("first_name", "role_code").rows()
    [('Lalit', 'Manager'), ('tom', 'Senior_Manager')]
    """
    return fetch_children_tables(
        parent, source=source, client=client, association=association,
        page_size=page_size, sort_order=sort_order, progress=progress,
    ).children  # fmt: skip
