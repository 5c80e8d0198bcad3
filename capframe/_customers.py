"""fetch_customers: Get Customers Bulk for any number of ids, as tidy validated tables.

ids -> checked, deduplicated -> the pull engine (:mod:`capframe._engine`: requests of up to
batch_size ids, sorted inside, for the ids a snapshot lacks; ids an answer left out asked once more)
-> still missing ones become failed rows -> validated -> request order. This module is Get Customers
Bulk's spec (:data:`SPEC`: a unit is a customer id), its adapter for the engine, and its pull.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import TypeVar, cast

import polars as pl

from capframe import _args, _tidy, _wire
from capframe._answers import (
    NO_UNKNOWN,
    Answer,
    Tidied,
    Unread,
    answer,
    combine,
    in_order,
    in_order_lazily,
    no_customer_last,
    synthetic_entities,
    tidy_answers,
)
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
    deliver,
    pull,
    scan,
    snapshot_of,
    stored_tables,
)
from capframe._http import Session, call, dumps
from capframe._snapshot import max_age_of
from capframe._tables import CustomerTables, Provenance
from capframe.errors import InvalidArgumentError

__all__ = [
    "TABLES",
    "pull_customers",
    "read_answer",
    "read_customers",
    "scan_customers",
    "tidy_customers",
]

T = TypeVar("T")

SPEC = register(
    Spec(
        "customers",
        "POST",
        "/v2/bulk/getCustomers",
        pl.Int64(),
        "customer_id",
        CustomerTables.stored(),
        ("host", "pull_source"),
        1_000,
        functools.partial(model_schemas, CustomerTables),
        Words("customer ids", "fetched", "the request failed", "failed ids as rows with success=False"),
        units_per_request=None,
        ask_again=True,
        reading=lambda: (_wire.CUSTOMERS_PAGE, _wire.WIRE_VERSION, model_rules(CustomerTables)),
    )
)
TABLES = SPEC.write_order


def read_customers(bodies: Sequence[bytes], asked: tuple[int, ...] | None = None) -> Answer:
    """Get Customers Bulk bodies -> an answer; with ``asked``, only those ids are kept.

    An id in several bodies keeps its first answer.
    """
    entities, request_level, drift = _wire.customer_entities(bodies)
    unexpected: list[int] = []
    if asked is not None:
        is_asked = entities["customer_id"].is_in(pl.Series(asked, dtype=pl.Int64).implode())
        if not is_asked.all():
            unexpected = entities.filter(~is_asked)["customer_id"].to_list()
            entities = entities.filter(is_asked)
    # Filtering copies every nested column: only when there is something to drop.
    if entities["customer_id"].is_duplicated().any():
        entities = entities.filter(pl.col("customer_id").is_first_distinct())
    read = answer(bodies, entities, request_level, drift, children=False)
    read.unexpected = unexpected
    return read


def read_answer(body: bytes, asked: tuple[int, ...]) -> Answer:
    """One answer to a request for ``asked``."""
    return read_customers([body], asked)


async def ask(
    session: Session,
    source: str,
    ids: tuple[int, ...],
    what: str,
    read: Callable[[bytes], T],
    unreadable: _wire.WireFormatError | None = None,
) -> T:
    """One Get Customers Bulk request for ``ids`` (a bare JSON array), retried as _http.call does
    (``unreadable``: the retry of an attempt whose body could not be read)."""
    return await call(
        session,
        SPEC.method,
        SPEC.path,
        params={"source": source},
        content=dumps(ids),
        what=what,
        read=read,
        unreadable=unreadable,
    )


def tidy_customer_answers(answers: Sequence[Answer]) -> Tidied:
    return tidy_answers(answers, main="customers", main_table=_tidy.customer_table)


def _failed(ids: Sequence[int], message: str) -> Tidied:
    """Rows for ids no answer accounts for: failed, with capframe's reason."""
    no_request_errors = pl.DataFrame(
        schema={"errors": _wire.CUSTOMERS_PAGE["errors"], "warnings": _wire.CUSTOMERS_PAGE["warnings"]}
    )
    tables = _tidy.tidy(
        synthetic_entities(ids, message),
        no_request_errors,
        NO_UNKNOWN,
        main="customers",
        main_table=_tidy.customer_table,
    )
    return Tidied(tables)


def _bundle(
    chunks: Sequence[Tidied],
    order: Sequence[int] | pl.Series | None,
    notices: list[Notice],
    provenance: Provenance | None = None,
    keep: tuple[str, ...] = TABLES,
) -> CustomerTables:
    """Tidied chunks -> one validated bundle, in the order of ``order`` (None: chunks of saved pages, each
    in page order already); tables not in ``keep`` were emptied as they came (memory): not validated.
    ``provenance`` gets the count of failed ids (and says, when a table fails its checks, whether it
    was read from a snapshot)."""
    if not any(chunk.tables for chunk in chunks):
        return CustomerTables.empty()
    tables = combine(chunks, TABLES, "customers", notices)
    # Request order for a fetch (however the requests went, re-asked ids too). Saved pages' chunks were
    # each put in page order by the thread that tidied it: stacked, they are in page order but for the
    # rows tied to no customer, which go last (ordering the whole bundle here was a fifth of the time).
    tables = in_order(tables, order) if order is not None else no_customer_last(tables)
    if provenance is not None:
        provenance = replace(provenance, failed=tables["customers"].height - int(tables["customers"]["success"].sum()))
    return CustomerTables.of(tables, provenance).checked(keep)


def tidy_customers(pages: Iterable[bytes]) -> CustomerTables:
    """Raw Get Customers Bulk response bodies (saved earlier) -> the same tables a fetch returns.

    Pages are read together, up to about 16 MB at a time: where a key of JSON kept as text has values of
    different types across those pages, the text takes their common type (a fetch, each response's).

    >>> import capframe
    >>> body = b'{"data":[{"entity":{"id":7,"profiles":[]},"errors":[],"success":true}]}'
    >>> capframe.tidy_customers([body]).customers.select("customer_id", "success").rows()
    [(7, True)]
    """
    bodies = list(pages)
    for body in bodies:
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise _args.ArgumentTypeError(f"pages must be response bodies as bytes, not {type(body).__name__}")
    reads = _reads([bytes(body) for body in bodies])
    try:
        # The reads run in parallel: polars releases the GIL while it works.
        with _threads(len(reads)) as pool:
            chunks = list(pool.map(_tidied_in_page_order, reads))
    except _wire.WireFormatError:
        for number, body in enumerate(bodies):  # which page, and why: read them one by one
            try:
                read_customers([bytes(body)])
            except _wire.WireFormatError as exc:
                raise InvalidArgumentError(f"page {number} is not a Get Customers Bulk response: {exc}") from None
        raise
    notices: list[Notice] = []
    return deliver((_bundle(chunks, None, notices), notices, None), 2)


def _tidied_in_page_order(pages: Sequence[bytes]) -> Tidied:
    """Pages read and tidied, every table's rows in the order of their customers in the pages.

    Ordered here, on the read's thread, so that the reads' tables stacked are in page order but for
    rows tied to no customer (:func:`capframe._answers.no_customer_last`): ordering the whole bundle
    after the reads was a tail on one thread of about a fifth of tidy_customers' time.
    """
    tidied = tidy_customer_answers([read_customers(pages)])
    tidied.tables = in_order(tidied.tables, tidied.tables["customers"]["customer_id"])
    return tidied


_READ_BYTES = 16 << 20  # pages read and tidied together: a read's fixed costs (below) amortised, memory bounded
# The least a read is split down to, to use another thread: a read's fixed costs are about 10 ms, as
# much as reading 1 MB (on the sandbox's pages).
_MIN_READ_BYTES = 1 << 20


def _reads(bodies: list[bytes]) -> list[list[bytes]]:
    """Saved pages in reads of at most about _READ_BYTES and of about equal size, as many as a multiple
    of the threads they can keep busy (one per CPU, each with at least _MIN_READ_BYTES): each read is
    one polars call on one thread, so reads of 8, 8, 8, 8, 8, 8 and 3 MB on two threads kept one thread
    busy a third longer than the other. (Not a "group", which is the engine's: consecutive requests
    tidied together.)"""
    total = sum(map(len, bodies))
    count = -(-total // _READ_BYTES)
    threads = min(_cpus(), total // _MIN_READ_BYTES)
    if threads > 1:
        count = -(-count // threads) * threads
    size = total / max(count, 1)
    reads: list[list[bytes]] = [[]]
    done = 0
    for body in bodies:
        # A page goes to the next read when its middle is past this read's share.
        if reads[-1] and done + len(body) / 2 > size * len(reads):
            reads.append([])
        reads[-1].append(body)
        done += len(body)
    return [pages for pages in reads if pages]


def _cpus() -> int:
    return os.cpu_count() or 1


def _threads(n: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(n, _cpus())))


@dataclass
class _Customers:
    """The Get Customers Bulk adapter of the pull engine: a unit is a customer id."""

    host: str
    source: str
    spec: Spec = SPEC

    async def ask(self, session: Session, units: tuple[Unit, ...]) -> Reply:
        ids = cast(tuple[int, ...], units)
        what = f"a request for {len(ids)} customer ids"
        # Read with its group's bodies (capframe._answers.read_group); checked now, cheaply.
        body = await ask(session, self.source, ids, what, _wire.whole_object)
        alone = partial(read_answer, asked=ids)
        return Reply([], (), unread=Unread(body, ids, alone, partial(ask, session, self.source, ids, what, alone)))

    def tidy(self, answers: Sequence[Answer]) -> Tidied:
        return tidy_customer_answers(answers)

    def failed(self, units: Sequence[Unit], why: str) -> Tidied:
        return _failed(cast(Sequence[int], units), why)

    def columns(self) -> dict[str, str]:
        return {"host": self.host, "pull_source": self.source}


async def pull_customers(
    ids: Iterable[int],
    source: str,
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    *,
    keep: tuple[str, ...] = TABLES,
    session: Session | None = None,
) -> Delivery[CustomerTables]:
    """The pull behind the fetch functions (and fetch_children's lookup of parents by customer id);
    tables not in ``keep`` are not held (memory), and are empty. ``session``: see ``_engine.pull``."""
    wanted, host, source, pulled = await _pulled(
        ids, source, client, batch_size, progress, cache_dir, max_age, keep, session
    )
    if pulled is None:
        return CustomerTables.empty(), [], None
    bundle = _bundle(pulled.chunks, wanted, pulled.notices, pulled.provenance(host, source, len(wanted), 0), keep)
    return (
        bundle,
        pulled.notices,
        pulled.error(len(wanted), bundle, cached=cache_dir is not None, ids=_failed_ids(pulled)),
    )


async def _pulled(
    ids: Iterable[int],
    source: str,
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    max_age: timedelta | float | None,
    keep: tuple[str, ...],
    session: Session | None,
    *,
    read_back: bool = True,
) -> tuple[pl.Series, str, str, Pulled | None]:
    """(the ids asked, checked; the host; the source; the engine's pull of them, None when there are none)."""
    wanted = _args.customer_id_series(ids)
    source = _args.source(source)
    size = _args.count("batch_size", batch_size, _args.MAX_BATCH) if batch_size is not None else None
    age = max_age_of(max_age)
    snapshot = snapshot_of(cache_dir)
    checked, host = connect(client, snapshot)
    if wanted.is_empty():
        return wanted, host, source, None
    pulled = await pull(
        _Customers(host, source),
        wanted,
        host=host,
        source=source,
        client=checked,
        snapshot=snapshot,
        max_age=age,
        progress=progress,
        keep=keep,
        per_request=size,
        session=session,
        read_back=read_back,
    )
    return wanted, host, source, pulled


async def pull_customer_scans(
    ids: Iterable[int],
    source: str,
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str],
    max_age: timedelta | float | None,
) -> Delivery[dict[str, pl.LazyFrame]]:
    """The pull behind the sink functions: into the snapshot, then every table (main first) as a
    LazyFrame over its files, holding the rows of the ids asked only, with failed ids as rows, in
    the order of the ids: what :func:`pull_customers` would give, not yet read."""
    wanted, _, _, pulled = await _pulled(
        ids, source, client, batch_size, progress, cache_dir, max_age, TABLES, None, read_back=False
    )
    if pulled is None:
        return {name: frame.lazy() for name, frame in CustomerTables.empty().tables().items()}, [], None
    notices = pulled.notices
    unordered = stored_tables(pulled, notices)
    check_streaming(unordered, CustomerTables.contracts(), read=pulled.read > 0)
    ordered = in_order_lazily(unordered, pl.LazyFrame({"customer_id": wanted}, schema={"customer_id": pl.Int64}))
    tables = {name: ordered[name] for name in CustomerTables.NAMES}
    return tables, notices, pulled.error(len(wanted), tables, cached=True, ids=_failed_ids(pulled))


def _failed_ids(pulled: Pulled) -> tuple[int, ...]:
    return tuple(sorted(cast(int, i) for request, _ in pulled.failed for i in request))


def scan_customers(
    cache_dir: str | os.PathLike[str], table: str = "customers", *, source: str | None = None
) -> pl.LazyFrame:
    """A LazyFrame over a table of a ``cache_dir`` snapshot, for results larger than memory: one row
    per (host, source, customer) (``host`` and ``source`` are columns), every source unless one is given.

    DuckDB and Spark read ``cache_dir/customers/<table>/*.parquet`` the same way (docs/snapshots.md).
    """
    if table not in TABLES:
        raise InvalidArgumentError(f"unknown table {table!r}: use one of {', '.join(TABLES)}")
    return scan(cache_dir, SPEC.name, table, None if source is None else _args.source(source))
