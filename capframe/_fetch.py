"""The public fetch functions: fetch_customers, fetch_customer_tables, lookup_customer_ids and
fetch_children(_tables), each composing the endpoints it needs.

Customer ids go straight to Get Customers Bulk (:mod:`capframe._customers`). Identifiers (mobiles,
emails, external ids, card numbers) are looked up first (:mod:`capframe._lookup`, one request a
value), then the customer ids found are fetched like any others. The two pulls share one session,
so one pacer and one concurrency limit spend the rate budget across both; each keeps its units in
the same snapshot. The hierarchy (:mod:`capframe._children`) is given Get Customers Bulk to look up
parents given as customer ids. No endpoint module imports another: they are composed here.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import polars as pl

from capframe import _args, _sync
from capframe._children import Parent, pull_children, pull_children_scans
from capframe._client import Client
from capframe._customers import TABLES, pull_customer_scans, pull_customers
from capframe._engine import Delivery, connect, deliver, snapshot_of
from capframe._http import Session
from capframe._lookup import LookedUp, pull_lookups, values_of
from capframe._snapshot import max_age_of
from capframe._tables import ChildrenTables, CustomerLookupTables, CustomerTables
from capframe.errors import CapframeWarning, FetchError, InvalidArgumentError, SnapshotError

__all__ = [
    "afetch_children",
    "afetch_children_tables",
    "afetch_customer_tables",
    "afetch_customers",
    "alookup_customer_ids",
    "asink_children",
    "asink_children_tables",
    "asink_customer_tables",
    "asink_customers",
    "fetch_children",
    "fetch_children_tables",
    "fetch_customer_tables",
    "fetch_customers",
    "lookup_customer_ids",
    "sink_children",
    "sink_children_tables",
    "sink_customer_tables",
    "sink_customers",
]

T = TypeVar("T")


def _by_identifier(ids: Any, identifier: str | None) -> tuple[Any, bool]:
    """(what was given, a one-pass iterator made a list; whether it holds identifiers, not customer ids)."""
    if isinstance(ids, Iterator):
        ids = list(ids)
    pairs = isinstance(ids, (list, tuple)) and any(isinstance(item, tuple) for item in ids)
    return ids, identifier is not None or pairs


@contextlib.asynccontextmanager
async def _session(client: Client | None) -> AsyncIterator[Session | None]:
    if client is None:  # offline: every unit must come from the snapshot
        yield None
        return
    async with Session.connect(client) as session:
        yield session


async def _looked_up(
    values: Any,
    identifier: str | None,
    account_id: str | None,
    source: str,
    client: Client | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    then: Callable[[LookedUp, Client | None, Session | None], Awaitable[T]] | None = None,
) -> tuple[LookedUp, T | None]:
    """Check the arguments, look the values up, and go on with ``then`` in the same session."""
    checked_values = values_of(values, identifier, account_id)
    source = _args.source(source)
    age = max_age_of(max_age)
    snapshot = snapshot_of(cache_dir)
    checked, host = connect(client, snapshot)
    async with _session(checked) as session:
        looked = await pull_lookups(
            checked_values,
            host=host,
            source=source,
            client=checked,
            snapshot=snapshot,
            max_age=age,
            progress=progress,
            session=session,
        )
        return looked, (await then(looked, checked, session) if then is not None else None)


async def _pull_by_identifier(
    given: Any,
    identifier: str | None,
    account_id: str | None,
    source: str,
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    *,
    keep: tuple[str, ...],
) -> Delivery[CustomerTables]:
    """Look the values up, then fetch the customers found; the map joins their tables."""
    if batch_size is not None:
        _args.count("batch_size", batch_size, _args.MAX_BATCH)

    async def customers(looked: LookedUp, checked: Client | None, session: Session | None) -> Delivery[CustomerTables]:
        ids = looked.lookups["customer_id"].drop_nulls().unique(maintain_order=True).to_list()
        if not ids:
            return CustomerTables.empty(), [], None
        return await pull_customers(
            ids, looked.pulled_source, checked, batch_size, progress, cache_dir, max_age, keep=keep, session=session
        )

    arguments = (given, identifier, account_id, source, client, progress, cache_dir, max_age)
    looked, delivery = await _looked_up(*arguments, customers)
    assert delivery is not None
    tables, notices, error = delivery
    lookups = looked.lookups
    unique = lookups.unique(["identifier_type", "identifier_value"], keep="first")
    returned = set(tables.customers.filter("success")["customer_id"])
    failed = sum(i not in returned for i in unique["customer_id"])
    provenance = looked.pulled.provenance(looked.host, looked.pulled_source, unique.height, failed, tables.provenance)
    bundle = CustomerLookupTables.of({**tables.tables(), "lookups": lookups}, provenance)
    bundle.checked(("lookups",))
    if missing := unique.filter(pl.col("found").not_()).height:
        # fetch_customers returns no row for them: said, never silently fewer rows.
        notices.append(
            (
                f"{missing} of {unique.height} identifier values have no customer in {looked.pulled_source}: "
                "fetch_customer_tables(...).failed_lookups lists each, with the API's reason",
                CapframeWarning,
            )
        )
    lookup_error = looked.error(bundle, cached=cache_dir is not None)
    if lookup_error is None and isinstance(error, (FetchError, SnapshotError)):
        error.partial = bundle  # what failed is the customers' fetch: its message stands, with every table
    return bundle, [*looked.pulled.notices, *notices], lookup_error or error


async def _pull(
    ids: Any,
    source: str,
    identifier: str | None,
    account_id: str | None,
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    *,
    keep: tuple[str, ...],
) -> Delivery[CustomerTables]:
    given, by_identifier = _by_identifier(ids, identifier)
    if by_identifier:
        arguments = (given, identifier, account_id, source, client, batch_size, progress, cache_dir, max_age)
        return await _pull_by_identifier(*arguments, keep=keep)
    if account_id is not None:
        raise InvalidArgumentError(
            "account_id goes with identifiers (identifier='mobile', or (type, value) pairs): customer ids need no account"
        )
    return await pull_customers(given, source, client, batch_size, progress, cache_dir, max_age, keep=keep)


async def _lookup_only(
    values: Any,
    source: str,
    identifier: str | None,
    account_id: str | None,
    client: Client | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
) -> Delivery[pl.DataFrame]:
    given = list(values) if isinstance(values, Iterator) else values
    looked, _ = await _looked_up(given, identifier, account_id, source, client, progress, cache_dir, max_age)
    return looked.lookups, looked.pulled.notices, looked.error(looked.lookups, cached=cache_dir is not None)


async def afetch_customer_tables(
    ids: Iterable[Any],
    source: str,
    *,
    identifier: str | None = None,
    account_id: str | None = None,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> CustomerTables:
    """The async twin of :func:`fetch_customer_tables`."""
    arguments = (ids, source, identifier, account_id, client, batch_size, progress, cache_dir, max_age)
    return deliver(await _pull(*arguments, keep=TABLES), 2)


async def afetch_customers(
    ids: Iterable[Any],
    source: str,
    *,
    identifier: str | None = None,
    account_id: str | None = None,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> pl.DataFrame:
    """The async twin of :func:`fetch_customers`."""
    arguments = (ids, source, identifier, account_id, client, batch_size, progress, cache_dir, max_age)
    return deliver(await _pull(*arguments, keep=("customers",)), 2).customers


def fetch_customer_tables(
    ids: Iterable[Any],
    source: str,
    *,
    identifier: str | None = None,
    account_id: str | None = None,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> CustomerTables:
    """Get Customers Bulk for ``ids`` -> :class:`CustomerTables` (customers and its child tables).

    ``ids`` may instead be identifiers: values of one type with ``identifier="mobile"`` (``email``,
    ``externalId``, ``cardnumber``, ...), or ``(identifier_type, value)`` pairs. Each distinct value is
    looked up once (``GET /v2/customers/lookup``, one request a value), then the customers found are
    fetched: a :class:`CustomerLookupTables`, whose ``lookups`` table has one row per value asked.
    In a source with several accounts (WECHAT, FACEBOOK, MARTJACK), ``account_id`` says which
    (sent as ``accountId``); without it, the API answers each value with 8045.

    >>> import capframe
    >>> client = capframe.Client.sandbox()
    >>> tables = capframe.fetch_customer_tables([565338404, 564332013], "INSTORE", client=client)
    >>> tables.customers.select("customer_id", "success", "error_code").rows()
    [(565338404, True, None), (564332013, False, 8109)]
    >>> tables.identifiers.filter(pl.col("type") == "externalId")["value"].to_list()
    ['00008572']
    >>> found = capframe.fetch_customer_tables(["912726093529", "910000000000"], "INSTORE", identifier="mobile", client=client)
    >>> found.lookups.select("value_number", "customer_id", "error_code").rows()
    [(1, 565338404, None), (2, None, 8015)]
    """
    arguments = (ids, source, identifier, account_id, client, batch_size, progress, cache_dir, max_age)
    return deliver(_sync.run(_pull(*arguments, keep=TABLES)), 2)


def fetch_customers(
    ids: Iterable[Any],
    source: str,
    *,
    identifier: str | None = None,
    account_id: str | None = None,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> pl.DataFrame:
    """Get Customers Bulk for ``ids`` -> one row per unique id, in first-occurrence order.

    Ids the API reports as failed (PII-deleted, unknown, ...) are rows with ``success=False`` and
    the API's ``error_code`` and ``error_message``. ``client=None`` reads ``Client.from_env()``.
    With ``cache_dir`` (a snapshot, see docs/snapshots.md), each id's answer is kept on disk and a
    rerun asks only for ids the snapshot lacks, or holds from longer than ``max_age`` ago (a
    timedelta or seconds); with every id in it, a rerun needs neither network nor credentials.
    ``ids`` may be identifiers instead (``identifier="mobile"``, or pairs: see
    :func:`fetch_customer_tables`): one row per customer found; ``lookup_customer_ids`` gives the map.

    >>> import capframe
    >>> frame = capframe.fetch_customers([566135941, 565338404], "INSTORE", client=capframe.Client.sandbox())
    >>> frame.select("customer_id", "first_name", "mobile").rows()
    [(566135941, 'John', '918088369835'), (565338404, 'Muhammad', '912726093529')]
    """
    arguments = (ids, source, identifier, account_id, client, batch_size, progress, cache_dir, max_age)
    return deliver(_sync.run(_pull(*arguments, keep=("customers",))), 2).customers


async def alookup_customer_ids(
    values: Iterable[Any],
    source: str,
    *,
    identifier: str | None = None,
    account_id: str | None = None,
    client: Client | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> pl.DataFrame:
    """The async twin of :func:`lookup_customer_ids`."""
    return deliver(await _lookup_only(values, source, identifier, account_id, client, progress, cache_dir, max_age), 2)


def lookup_customer_ids(
    values: Iterable[Any],
    source: str,
    *,
    identifier: str | None = None,
    account_id: str | None = None,
    client: Client | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> pl.DataFrame:
    """Identifiers -> customer ids, nothing more: the ``lookups`` table, one row per value asked.

    ``values`` are of one type with ``identifier="mobile"`` (``email``, ``externalId``, ``cardnumber``,
    ...), or ``(identifier_type, value)`` pairs. One request a distinct value (the API has no batch):
    at 1000 requests a minute, 10,000 values take 10 minutes. A value with no customer is a row too:
    ``found`` false with the API's ``error_code`` and ``error_message``.

    >>> import capframe
    >>> ids = capframe.lookup_customer_ids(["912726093529"], "INSTORE", identifier="mobile", client=capframe.Client.sandbox())
    >>> ids.select("identifier_type", "customer_id", "found").rows()
    [('mobile', 565338404, True)]
    """
    return deliver(
        _sync.run(_lookup_only(values, source, identifier, account_id, client, progress, cache_dir, max_age)), 2
    )


def _sink_folder(cache_dir: object, endpoint: str) -> None:
    """A sink's tables live in the snapshot: without a folder there is nowhere to put them."""
    if cache_dir is None:
        raise InvalidArgumentError(
            f"sink_{endpoint} fetches into a snapshot: pass cache_dir, a folder (fetch_{endpoint} returns the "
            "tables in memory)"
        )


async def _sink(
    ids: Any,
    source: str,
    cache_dir: str | os.PathLike[str],
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    max_age: timedelta | float | None,
) -> Delivery[dict[str, pl.LazyFrame]]:
    given, by_identifier = _by_identifier(ids, None)
    if by_identifier:
        raise InvalidArgumentError(
            "sink_customers takes customer ids, not identifiers: look them up first with "
            "lookup_customer_ids(..., cache_dir=...), then pass its customer_id column"
        )
    _sink_folder(cache_dir, "customers")
    return await pull_customer_scans(given, source, client, batch_size, progress, cache_dir, max_age)


async def asink_customer_tables(
    ids: Iterable[Any],
    source: str,
    cache_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> dict[str, pl.LazyFrame]:
    """The async twin of :func:`sink_customer_tables`."""
    return deliver(await _sink(ids, source, cache_dir, client, batch_size, progress, max_age), 2)


async def asink_customers(
    ids: Iterable[Any],
    source: str,
    cache_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> pl.LazyFrame:
    """The async twin of :func:`sink_customers`."""
    return deliver(await _sink(ids, source, cache_dir, client, batch_size, progress, max_age), 2)["customers"]


def sink_customer_tables(
    ids: Iterable[Any],
    source: str,
    cache_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> dict[str, pl.LazyFrame]:
    """:func:`fetch_customer_tables` for results larger than memory: the answers go to the snapshot
    ``cache_dir`` only, and each table comes back as a LazyFrame over its files (table name ->
    LazyFrame, ``customers`` first), read when collected.

    The LazyFrames hold the ids asked only (not the rest of the snapshot), in their order, failed
    ids as rows with ``success=False``; collected, they equal what ``fetch_customer_tables`` gives
    (checked against the models' rules before this returns). Warnings and errors are those of the
    fetch: a :class:`FetchError`'s ``.partial`` holds these LazyFrames. A later pull into the same
    folder that fetches some of these ids again may replace the files: collect, or ``sink_parquet``,
    first (collected after, they raise a :class:`SnapshotError` saying so).

    >>> import capframe, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> tables = capframe.sink_customer_tables([565338404, 564332013], "INSTORE", folder, client=capframe.Client.sandbox())
    >>> tables["customers"].select("customer_id", "success").collect().rows()
    [(565338404, True), (564332013, False)]
    """
    return deliver(_sync.run(_sink(ids, source, cache_dir, client, batch_size, progress, max_age)), 2)


def sink_customers(
    ids: Iterable[Any],
    source: str,
    cache_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> pl.LazyFrame:
    """:func:`fetch_customers` for results larger than memory: the answers go to the snapshot
    ``cache_dir`` only, and the customers table comes back as a LazyFrame over its files (see
    :func:`sink_customer_tables`). Stream it on with ``.sink_parquet(...)``, or filter and collect.

    >>> import capframe, tempfile
    >>> frame = capframe.sink_customers([566135941, 565338404], "INSTORE", tempfile.mkdtemp(), client=capframe.Client.sandbox())
    >>> frame.select("customer_id", "first_name").collect().rows()
    [(566135941, 'John'), (565338404, 'Muhammad')]
    """
    return deliver(_sync.run(_sink(ids, source, cache_dir, client, batch_size, progress, max_age)), 2)["customers"]


async def _customers_by_id(
    ids: list[int], source: str, client: Client | None, cache_dir: Any
) -> Delivery[CustomerTables]:
    """Parents given as customer ids, looked up with Get Customers Bulk (through the same snapshot)."""
    return await pull_customers(ids, source, client, None, False, cache_dir, None)


_children = functools.partial(pull_children, customers_by_id=_customers_by_id)


async def afetch_children_tables(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> ChildrenTables:
    """The async twin of :func:`fetch_children_tables`."""
    delivery = await _children(parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age)
    return deliver(delivery, 2)


def fetch_children_tables(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> ChildrenTables:
    """The children of ``parent`` -> :class:`ChildrenTables` (children and their child tables).

    ``parent`` is an ``(identifier_type, value)`` pair such as ``("mobile", "917799889933")``, a
    customer id (looked up first with Get Customers Bulk, then addressed by its mobile, email or
    externalId, in that order; ``parent_customer_id`` says which), or a list of those, fetched
    concurrently into one bundle. With ``cache_dir``, each parent's complete walk is kept in that
    snapshot (docs/snapshots.md) and a rerun asks only for walks it lacks or holds from longer
    than ``max_age`` ago.
    """
    delivery = _sync.run(
        _children(parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age)
    )
    return deliver(delivery, 2)


async def afetch_children(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> pl.DataFrame:
    """The async twin of :func:`fetch_children`."""
    delivery = await _children(parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age)
    return deliver(delivery, 2).children


def fetch_children(
    parent: Parent | Sequence[Parent],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age: timedelta | float | None = None,
) -> pl.DataFrame:
    """The child customers of ``parent``, one row per (parent, child), every page.

    >>> import capframe
    >>> children = capframe.fetch_children(("mobile", "917799889933"), client=capframe.Client.sandbox())
    >>> children.select("first_name", "role_code").rows()
    [('Lalit', 'Manager'), ('tom', 'Senior_Manager')]
    """
    delivery = _sync.run(
        _children(parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age)
    )
    return deliver(delivery, 2).children


_children_scans = functools.partial(pull_children_scans, customers_by_id=_customers_by_id)


async def _sink_children(
    parent: Parent | Sequence[Parent],
    cache_dir: str | os.PathLike[str],
    source: str,
    client: Client | None,
    association: str,
    page_size: int | None,
    sort_order: str,
    progress: bool | None,
    max_age: timedelta | float | None,
) -> Delivery[dict[str, pl.LazyFrame]]:
    _sink_folder(cache_dir, "children")
    return await _children_scans(
        parent, source, client, association, page_size, sort_order, progress, cache_dir, max_age
    )


async def asink_children_tables(
    parent: Parent | Sequence[Parent],
    cache_dir: str | os.PathLike[str],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> dict[str, pl.LazyFrame]:
    """The async twin of :func:`sink_children_tables`."""
    arguments = (parent, cache_dir, source, client, association, page_size, sort_order, progress, max_age)
    return deliver(await _sink_children(*arguments), 2)


async def asink_children(
    parent: Parent | Sequence[Parent],
    cache_dir: str | os.PathLike[str],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> pl.LazyFrame:
    """The async twin of :func:`sink_children`."""
    arguments = (parent, cache_dir, source, client, association, page_size, sort_order, progress, max_age)
    return deliver(await _sink_children(*arguments), 2)["children"]


def sink_children_tables(
    parent: Parent | Sequence[Parent],
    cache_dir: str | os.PathLike[str],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> dict[str, pl.LazyFrame]:
    """:func:`fetch_children_tables` for results larger than memory: each parent's walk goes to the
    snapshot ``cache_dir`` only, and each table comes back as a LazyFrame over its files (table name
    -> LazyFrame, ``children`` first, then ``parents``), read when collected.

    The LazyFrames hold the walks of the parents asked only, in their order, and ``parents`` one row
    per parent asked (failed ones too); collected, they equal what ``fetch_children_tables`` gives
    (checked against the models' rules before this returns). Warnings and errors are those of the
    fetch: a :class:`FetchError`'s ``.partial`` holds these LazyFrames. A later pull into the same
    folder that fetches some of these walks again may replace the files: collect, or
    ``sink_parquet``, first.

    >>> import capframe, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> tables = capframe.sink_children_tables([("mobile", "917799889933")], folder, client=capframe.Client.sandbox())
    >>> tables["parents"].select("parent_number", "found", "no_of_children").collect().rows()
    [(1, True, 2)]
    """
    arguments = (parent, cache_dir, source, client, association, page_size, sort_order, progress, max_age)
    return deliver(_sync.run(_sink_children(*arguments)), 2)


def sink_children(
    parent: Parent | Sequence[Parent],
    cache_dir: str | os.PathLike[str],
    *,
    source: str = "INSTORE",
    client: Client | None = None,
    association: str = "parentCustomer",
    page_size: int | None = None,
    sort_order: str = "DESC",
    progress: bool | None = None,
    max_age: timedelta | float | None = None,
) -> pl.LazyFrame:
    """:func:`fetch_children` for results larger than memory: the walks go to the snapshot
    ``cache_dir`` only, and the children table comes back as a LazyFrame over its files (see
    :func:`sink_children_tables`). Stream it on with ``.sink_parquet(...)``, or filter and collect.

    >>> import capframe, tempfile
    >>> frame = capframe.sink_children(("mobile", "917799889933"), tempfile.mkdtemp(), client=capframe.Client.sandbox())
    >>> frame.select("first_name", "role_code").collect().rows()
    [('Lalit', 'Manager'), ('tom', 'Senior_Manager')]
    """
    arguments = (parent, cache_dir, source, client, association, page_size, sort_order, progress, max_age)
    return deliver(_sync.run(_sink_children(*arguments)), 2)["children"]
