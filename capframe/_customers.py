"""fetch_customers: Get Customers Bulk for any number of ids, as tidy validated tables.

ids -> checked, deduplicated -> batches (sorted inside) -> concurrent, paced, retried POSTs ->
each body parsed and tidied in a worker thread (optionally checkpointed to disk) -> ids the API
left out asked once more -> still missing ones become failed rows -> validated -> request order.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version

import polars as pl

from capframe import _args, _sync, _tidy, _wire
from capframe._batch import NO_UNKNOWN, Answer, Batch, answer, combine, in_order, synthetic_entities, tidy_answers
from capframe._cache import BatchCache
from capframe._client import Client
from capframe._http import RetriesExhausted, Session, advice, call, dumps
from capframe._progress import Progress, progress_bar
from capframe._tables import CustomerTables, Provenance
from capframe.errors import FetchError, InvalidArgumentError

__all__ = [
    "afetch_customer_tables",
    "afetch_customers",
    "fetch_customer_tables",
    "fetch_customers",
    "read_answer",
    "read_customers",
    "scan_customers",
    "tidy_customers",
]

_NOT_RETURNED = "not in the API's answer, though asked twice"
# The main table last: the cache writes it last, as the mark of a finished batch.
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


async def ask(session: Session, source: str, ids: tuple[int, ...], what: str) -> Answer:
    """One Get Customers Bulk request for ``ids`` (a bare JSON array), retried as _http.call does."""
    return await call(
        session,
        "POST",
        "/v2/bulk/getCustomers",
        params={"source": source},
        content=dumps(ids),
        what=what,
        read=partial(read_answer, asked=ids),
    )


def tidy_customer_answers(answers: Sequence[Answer]) -> Batch:
    return tidy_answers(answers, main="customers", main_table=_tidy.customer_table)


def _failed(ids: Sequence[int], message: str) -> Batch:
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
    return Batch(tables)


def _bundle(
    batches: Sequence[Batch],
    order: Sequence[int] | None,
    provenance: Provenance | None = None,
    keep: tuple[str, ...] = TABLES,
) -> CustomerTables:
    """Batches -> one validated bundle; tables not in ``keep`` were emptied as they came (memory): not validated."""
    if not batches:
        return CustomerTables.empty()
    tables = combine(batches, TABLES, "customers")
    # Request order for a fetch (however the batches went, re-asked ids too); page order for saved pages.
    tables = in_order(tables, order if order is not None else tables["customers"]["customer_id"])
    if provenance is not None:
        failed = tables["customers"].height - int(tables["customers"]["success"].sum())
        provenance = replace(provenance, failed=failed)
    bundle = CustomerTables.of(tables, provenance)
    bundle.validate(keep)
    return bundle


def tidy_customers(pages: Iterable[bytes]) -> CustomerTables:
    """Raw Get Customers Bulk response bodies (saved earlier) -> the same tables a fetch returns.

    Pages are read together, about 8 MB at a time: where a key of JSON kept as text has values of
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
    groups = _groups([bytes(body) for body in bodies])
    try:
        # Groups of pages are read in parallel: polars releases the GIL while it works.
        with _threads(len(groups)) as pool:
            batches = list(pool.map(lambda group: tidy_customer_answers([read_customers(group)]), groups))
    except _wire.WireFormatError:
        for number, body in enumerate(bodies):  # which page, and why: read them one by one
            try:
                read_customers([bytes(body)])
            except _wire.WireFormatError as exc:
                raise InvalidArgumentError(f"page {number} is not a Get Customers Bulk response: {exc}") from None
        raise
    return _bundle(batches, None)


_GROUP_BYTES = 8 << 20  # pages read and tidied together: per-call costs amortised, memory bounded


def _groups(bodies: list[bytes]) -> list[list[bytes]]:
    groups: list[list[bytes]] = [[]]
    size = 0
    for body in bodies:
        if groups[-1] and size + len(body) > _GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += len(body)
    return [group for group in groups if group]


def _threads(n: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(n, os.cpu_count() or 1)))


# Answers tidied together when nothing is cached per batch: a tidy step has fixed costs that one
# batch of 100 entities would pay alone (about 3x the cost per entity), and 20 bound the memory held.
# A group is 20 consecutive chunks, never the first 20 answers to arrive: rows tied to no customer
# keep the order of their groups, which must not depend on timing. The last 20 chunks are grouped
# by 5: their answers come in last, and what is tidied after the last answer waits for it.
_GROUP = 20
_LAST_GROUP = 5


def _group_numbers(count: int, first: int) -> list[int]:
    """The group of each of ``count`` chunks, numbered from ``first``."""
    tail = max(0, count - _GROUP)
    head = [first + index // _GROUP for index in range(tail)]
    start = head[-1] + 1 if head else first
    return head + [start + index // _LAST_GROUP for index in range(count - tail)]


_MERGE_EVERY = 200  # batches kept before they are merged into one


@dataclass
class _Pull:
    """One pull's requests: answers are read as they arrive and tidied in groups.

    With a cache, finished batches live on disk only and are read back once, at the end: kept in
    memory one by one, small frames interleaved with each batch's scratch memory fragment the heap
    (a million ids grew the process by ~0.7 KB per id to keep 0.12 KB of data).
    """

    session: Session
    source: str
    cache: BatchCache | None
    bar: Progress
    keep: tuple[str, ...]
    batches: list[Batch] = field(default_factory=list)
    stored: list[tuple[int, ...]] = field(default_factory=list)  # chunks whose tables are in the cache
    answered: list[pl.Series] = field(default_factory=list)  # customer ids with an answer, per chunk
    failed: list[tuple[tuple[int, ...], RetriesExhausted]] = field(default_factory=list)
    _group_of: list[int] = field(default_factory=list)  # chunk index -> group, across both rounds of asking
    _group_size: Counter[int] = field(default_factory=Counter)
    _waiting: dict[int, dict[int, Answer | None]] = field(default_factory=dict)  # group -> chunk index -> answer
    _batch_groups: list[int] = field(default_factory=list)  # the group of each kept batch: their order
    _in_progress: asyncio.Semaphore = field(init=False)

    async def fetch(self, chunks: list[tuple[int, ...]]) -> None:
        """Every chunk, concurrently. A chunk that exhausts its retries is recorded as failed, so the
        others still finish; any other error stops the whole pull."""
        # Requests in flight are bounded by the client's concurrency; this bounds the chunks between
        # asking and storing. Without it, answers arriving faster than they are tidied and written
        # pile up: a million ids held 5 GB of answers waiting for a worker thread.
        self._in_progress = asyncio.Semaphore(2 * self.session.client.most_in_flight)
        first = len(self._group_of)
        self._group_of += _group_numbers(len(chunks), self._group_of[-1] + 1 if self._group_of else 0)
        self._group_size.update(self._group_of[first:])
        await asyncio.gather(*(self._chunk(first + index, chunk) for index, chunk in enumerate(chunks)))

    def unanswered(self, ids: Sequence[int]) -> list[int]:
        """``ids`` (in their order) that no answer so far holds, and no failed chunk asked for."""
        failed = (pl.Series(chunk, dtype=pl.Int64) for chunk, _ in self.failed)
        done = pl.concat([pl.Series(dtype=pl.Int64), *self.answered, *failed])
        wanted = pl.Series(ids, dtype=pl.Int64)
        return wanted.filter(~wanted.is_in(done.implode())).to_list()

    def results(self) -> list[Batch]:
        """The batches fetched: those in the cache read back now, together."""
        if self.cache is None or not self.stored:
            return self.batches
        stored = sorted(self.stored)  # an order that does not depend on which batch finished first
        tables = self.cache.load_many(stored, self.keep)
        unexpected = [i for b in self.batches for i in b.unexpected]
        return [Batch(tables, unexpected, {path for b in self.batches for path in b.drift})]

    async def _chunk(self, index: int, ids: tuple[int, ...]) -> None:
        async with self._in_progress:
            read = await self._one_chunk(ids)
            if self.cache is None:
                await self._group_done(index, read)

    async def _one_chunk(self, ids: tuple[int, ...]) -> Answer | None:
        """Ask for a chunk: its answer, to be tidied in its group (None if it failed, or it is cached)."""
        if self.cache is not None and (done := await asyncio.to_thread(self.cache.answered, ids)) is not None:
            self._stored(ids, done, None)
            return None
        try:
            read = await ask(self.session, self.source, ids, f"a batch of {len(ids)} customer ids")
        except RetriesExhausted as exc:
            self.failed.append((ids, exc))
            return None
        if self.cache is not None:  # one batch, one set of files: what a resumed run looks up
            batch = await asyncio.to_thread(tidy_customer_answers, [read])
            await asyncio.to_thread(self.cache.store, ids, batch.tables)
            self._stored(ids, read.entities["customer_id"], batch)
            return None
        self.answered.append(read.entities["customer_id"])
        self.bar.update()
        return read

    async def _group_done(self, index: int, read: Answer | None) -> None:
        """Record a chunk's answer; once its group is complete, tidy the group in chunk order."""
        group = self._group_of[index]
        answers = self._waiting.setdefault(group, {})
        answers[index] = read
        if len(answers) == self._group_size[group]:
            del self._waiting[group]
            ready = [answer for i in sorted(answers) if (answer := answers[i]) is not None]
            if ready:
                self._append(await asyncio.to_thread(tidy_customer_answers, ready), group)

    def _stored(self, ids: tuple[int, ...], answered: pl.Series, batch: Batch | None) -> None:
        """A batch now in the cache: only its ids and warnings stay in memory."""
        self.stored.append(ids)
        self.answered.append(answered)
        if batch is not None and (batch.unexpected or batch.drift):
            self.batches.append(Batch({}, batch.unexpected, batch.drift))
        self.bar.update()

    def _append(self, batch: Batch, group: int) -> None:
        """Keep a finished batch in group order, the order rows tied to no customer keep (a group
        finishing after later ones were merged goes before them); merge the kept ones now and then,
        since thousands of small frames cost far more memory than their rows."""
        batch.tables = {name: t if name in self.keep else t.clear() for name, t in batch.tables.items()}
        at = bisect.bisect(self._batch_groups, group)
        self._batch_groups.insert(at, group)
        self.batches.insert(at, batch)
        if len(self.batches) >= _MERGE_EVERY:
            merged = {name: pl.concat([b.tables[name] for b in self.batches], rechunk=True) for name in TABLES}
            unexpected = [i for b in self.batches for i in b.unexpected]
            self.batches = [Batch(merged, unexpected, {path for b in self.batches for path in b.drift})]
            self._batch_groups = [self._batch_groups[-1]]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _chunks(ids: Sequence[int], size: int) -> list[tuple[int, ...]]:
    return [tuple(sorted(ids[i : i + size])) for i in range(0, len(ids), size)]


async def afetch_customer_tables(
    ids: Iterable[int],
    source: str,
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> CustomerTables:
    """The async twin of :func:`fetch_customer_tables`."""
    return await _pull(ids, source, client, batch_size, progress, cache_dir, keep=TABLES)


async def _pull(
    ids: Iterable[int],
    source: str,
    client: Client | None,
    batch_size: int | None,
    progress: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    *,
    keep: tuple[str, ...],
) -> CustomerTables:
    """The pull behind both fetch functions; tables not in ``keep`` are not held (memory), and are empty."""
    wanted = _args.customer_ids(ids)
    source = _args.source(source)
    size = _args.count("batch_size", batch_size, _args.MAX_BATCH) if batch_size is not None else None
    client = _args.client(client)
    if not wanted:
        return CustomerTables.empty()
    chunks = _chunks(wanted, size or client.batch_size)
    cache = (
        BatchCache(cache_dir, base_url=client.base_url, source=source, tables=TABLES) if cache_dir is not None else None
    )
    fetched_at, fetched_by = (cache.created_at, cache.capframe_version) if cache else (_now(), version("capframe"))
    provenance = Provenance(fetched_at, client.base_url, source, fetched_by, len(wanted), 0)
    bar = progress_bar(len(chunks), f"customers ({source})", progress)
    try:
        async with Session.connect(client) as session:
            pull = _Pull(
                session,
                source,
                cache,
                bar,
                keep,
            )
            await pull.fetch(chunks)
            if missing := pull.unanswered(wanted):  # ids an answer left out: ask once more, in batches of their own
                await pull.fetch(_chunks(missing, size or client.batch_size))
    finally:
        bar.close()
    batches, failed = pull.results(), sorted(pull.failed, key=lambda f: f[0])
    failed_ids = {i for chunk, _ in failed for i in chunk}
    if unanswered := pull.unanswered(wanted):
        batches.append(_failed(unanswered, _NOT_RETURNED))
        if cache is not None:  # so that a scan of the cache accounts for them too
            cache.store(tuple(unanswered), batches[-1].tables, tag="unanswered")
    for chunk, exc in failed:
        batches.append(_failed(chunk, f"the batch failed: {exc.reason}"))
    bundle = _bundle(batches, wanted, provenance, keep)
    if failed:
        statuses = sorted({exc.status for _, exc in failed if exc.status is not None})
        reason = failed[0][1].reason
        raise FetchError(
            f"{len(failed_ids)} of {len(wanted)} ids could not be fetched ({len(failed)} batch(es); first: {reason}"
            f"{'; statuses ' + ', '.join(map(str, statuses)) if statuses else ''}). "
            + advice(exc for _, exc in failed)
            + " Everything fetched is in .partial (failed ids as rows with success=False)"
            + ("; with the same cache_dir a new run fetches only what is missing." if cache else "."),
            status=statuses[-1] if statuses else None,
            ids=tuple(sorted(failed_ids)),
            partial=bundle,
        )
    return bundle


async def afetch_customers(
    ids: Iterable[int],
    source: str,
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """The async twin of :func:`fetch_customers`."""
    tables = await _pull(ids, source, client, batch_size, progress, cache_dir, keep=("customers",))
    return tables.customers


def fetch_customer_tables(
    ids: Iterable[int],
    source: str,
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> CustomerTables:
    """Get Customers Bulk for ``ids`` -> :class:`CustomerTables` (customers and its child tables).

    >>> import capframe
    >>> client = capframe.Client.sandbox()
    >>> tables = capframe.fetch_customer_tables([565338404, 564332013], "INSTORE", client=client)
    >>> tables.customers.select("customer_id", "success", "error_code").rows()
    [(565338404, True, None), (564332013, False, 8109)]
    >>> tables.identifiers.filter(pl.col("type") == "externalId")["value"].to_list()
    ['00008572']
    """
    return _sync.run(
        afetch_customer_tables(
            ids, source, client=client, batch_size=batch_size, progress=progress, cache_dir=cache_dir
        )
    )


def fetch_customers(
    ids: Iterable[int],
    source: str,
    *,
    client: Client | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Get Customers Bulk for ``ids`` -> one row per unique id, in first-occurrence order.

    Ids the API reports as failed (PII-deleted, unknown, ...) are rows with ``success=False`` and
    the API's ``error_code`` and ``error_message``. ``client=None`` reads ``Client.from_env()``.
    With ``cache_dir``, finished batches are kept on disk and a rerun fetches only what is missing.

    >>> import capframe
    >>> frame = capframe.fetch_customers([566135941, 565338404], "INSTORE", client=capframe.Client.sandbox())
    >>> frame.select("customer_id", "first_name", "mobile").rows()
    [(566135941, 'John', '918088369835'), (565338404, 'Muhammad', '912726093529')]
    """
    return _sync.run(
        afetch_customers(ids, source, client=client, batch_size=batch_size, progress=progress, cache_dir=cache_dir)
    )


def scan_customers(cache_dir: str | os.PathLike[str], table: str = "customers") -> pl.LazyFrame:
    """A LazyFrame over a table of a ``cache_dir`` pull, for results larger than memory.

    The files are plain parquet, one per batch: DuckDB and Spark read ``cache_dir/customers/*.parquet`` too.
    """
    if table not in TABLES:
        raise InvalidArgumentError(f"unknown table {table!r}: use one of {', '.join(TABLES)}")
    folder = os.path.join(os.fspath(cache_dir), table)
    if not os.path.isdir(folder):
        raise InvalidArgumentError(
            f"{cache_dir!s} holds no capframe cache (no {table}/ folder): pass the cache_dir of a fetch"
        )
    return pl.scan_parquet(os.path.join(folder, "*.parquet"))
