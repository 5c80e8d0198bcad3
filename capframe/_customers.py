"""fetch_customers: Get Customers Bulk for any number of ids, as tidy validated tables.

ids -> checked, deduplicated -> the pull engine (:mod:`capframe._engine`: requests of up to
batch_size ids, sorted inside, for the ids a snapshot lacks; ids an answer left out asked once more)
-> still missing ones become failed rows -> validated -> request order. This module is the engine's
Get Customers Bulk adapter (a unit is a customer id) and the public functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from importlib.metadata import version
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
    synthetic_entities,
    tidy_answers,
)
from capframe._client import Client
from capframe._engine import Delivery, Notice, Reply, Unit, connect, deliver, pull, scan, snapshot_of
from capframe._http import Session, advice, call, dumps
from capframe._progress import progress_bar
from capframe._snapshot import max_age_of
from capframe._tables import CustomerTables, Provenance
from capframe.errors import CapframeError, FetchError, InvalidArgumentError, SnapshotError

__all__ = [
    "TABLES",
    "pull_customers",
    "read_answer",
    "read_customers",
    "scan_customers",
    "tidy_customers",
]

T = TypeVar("T")
_NOT_RETURNED = "not in the API's answer, though asked twice"
# The main table last: a snapshot writes it last.
TABLES = (*CustomerTables.NAMES[1:], "customers")


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
        "POST",
        "/v2/bulk/getCustomers",
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
    order: Sequence[int] | None,
    notices: list[Notice],
    provenance: Provenance | None = None,
    keep: tuple[str, ...] = TABLES,
) -> CustomerTables:
    """Tidied chunks -> one validated bundle; tables not in ``keep`` were emptied as they came (memory): not validated."""
    if not any(chunk.tables for chunk in chunks):
        return CustomerTables.empty()
    tables = combine(chunks, TABLES, "customers", notices)
    # Request order for a fetch (however the requests went, re-asked ids too); page order for saved pages.
    tables = in_order(tables, order if order is not None else tables["customers"]["customer_id"])
    if provenance is not None:
        failed = tables["customers"].height - int(tables["customers"]["success"].sum())
        provenance = replace(provenance, failed=failed)
    bundle = CustomerTables.of(tables, provenance)
    return bundle.checked(keep)


def tidy_customers(pages: Iterable[bytes]) -> CustomerTables:
    """Raw Get Customers Bulk response bodies (saved earlier) -> the same tables a fetch returns.

    Pages are read together, up to about 8 MB at a time: where a key of JSON kept as text has values of
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
            chunks = list(pool.map(lambda pages: tidy_customer_answers([read_customers(pages)]), reads))
    except _wire.WireFormatError:
        for number, body in enumerate(bodies):  # which page, and why: read them one by one
            try:
                read_customers([bytes(body)])
            except _wire.WireFormatError as exc:
                raise InvalidArgumentError(f"page {number} is not a Get Customers Bulk response: {exc}") from None
        raise
    notices: list[Notice] = []
    return deliver((_bundle(chunks, None, notices), notices, None), 2)


_READ_BYTES = 8 << 20  # pages read and tidied together: per-call costs amortised, memory bounded
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
    name: str = "customers"
    tables: tuple[str, ...] = TABLES

    async def ask(self, session: Session, units: tuple[Unit, ...]) -> Reply:
        ids = cast(tuple[int, ...], units)
        what = f"a request for {len(ids)} customer ids"
        # Read with its group's bodies (capframe._answers.read_group); checked now, cheaply.
        body = await ask(session, self.source, ids, what, _wire.whole_object)
        alone = partial(read_answer, asked=ids)
        return Reply([], (), unread=Unread(body, ids, alone, partial(ask, session, self.source, ids, what, alone)))

    def tidy(self, answers: Sequence[Answer]) -> Tidied:
        return tidy_customer_answers(answers)

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
    wanted = _args.customer_ids(ids)
    source = _args.source(source)
    size = _args.count("batch_size", batch_size, _args.MAX_BATCH) if batch_size is not None else None
    age = max_age_of(max_age)
    snapshot = snapshot_of(cache_dir)
    checked, host = connect(client, snapshot)
    if not wanted:
        return CustomerTables.empty(), [], None
    pulled = await pull(
        _Customers(host, source),
        wanted,
        host=host,
        source=source,
        client=checked,
        per_request=size or (checked.batch_size if checked else 100),
        ask_again=True,
        snapshot=snapshot,
        max_age=age,
        bar=lambda n: progress_bar(n, f"customers ({source})", progress),
        keep=keep,
        unit_words="customer ids",
        session=session,
    )
    chunks = pulled.chunks
    failed_ids = [cast(int, i) for request, _ in pulled.failed for i in request]
    if pulled.unanswered:
        chunks.append(_failed(cast(list[int], pulled.unanswered), _NOT_RETURNED))
    for request, exc in pulled.failed:
        chunks.append(_failed(cast(tuple[int, ...], request), f"the request failed: {exc.reason}"))
    provenance = Provenance(
        pulled.first_fetched_at,
        host,
        source,
        version("capframe"),
        len(wanted),
        0,
        last_fetched_at=pulled.last_fetched_at,
        read=pulled.read,
        fetched=pulled.fetched,
        sent=pulled.sent,
    )
    notices = pulled.notices
    bundle = _bundle(chunks, wanted, notices, provenance, keep)
    error: CapframeError | None = None
    if pulled.failed:
        failed = pulled.failed
        statuses = sorted({exc.status for _, exc in failed if exc.status is not None})
        reason = failed[0][1].reason
        error = FetchError(
            f"{len(failed_ids)} of {len(wanted)} ids could not be fetched ({len(failed)} request(s); first: {reason}"
            f"{'; statuses ' + ', '.join(map(str, statuses)) if statuses else ''}). "
            + advice(exc for _, exc in failed)
            + " Everything fetched is in .partial (failed ids as rows with success=False)"
            + ("; with the same cache_dir a new run fetches only what is missing." if snapshot else "."),
            status=statuses[-1] if statuses else None,
            ids=tuple(sorted(failed_ids)),
            partial=bundle,
        )
    elif pulled.snapshot_error is not None:
        error = SnapshotError(
            f"{pulled.snapshot_error} Nothing fetched was lost: the tables are in .partial.", partial=bundle
        )
    return bundle, notices, error


def scan_customers(
    cache_dir: str | os.PathLike[str], table: str = "customers", *, source: str | None = None
) -> pl.LazyFrame:
    """A LazyFrame over a table of a ``cache_dir`` snapshot, for results larger than memory: one row
    per (host, source, customer) (``host`` and ``source`` are columns), every source unless one is given.

    DuckDB and Spark read ``cache_dir/customers/<table>/*.parquet`` the same way (docs/snapshots.md).
    """
    if table not in TABLES:
        raise InvalidArgumentError(f"unknown table {table!r}: use one of {', '.join(TABLES)}")
    return scan(cache_dir, "customers", table, None if source is None else _args.source(source))
