"""One pull engine for every endpoint; each endpoint is a spec (:class:`capframe._endpoints.Spec`,
declared in its own module) and, for one pull, an adapter (:class:`Endpoint`).

The engine builds what every pull gives back (:class:`Pulled`): tidied tables, rows for units no
answer accounts for (made by the adapter's ``failed``), why each failed (``Pulled.failures``), the
provenance (``Pulled.provenance``) and the error with ``.partial`` (``Pulled.error``).

Words, one meaning each, here and in :mod:`capframe._answers` and :mod:`capframe._snapshot`:

    unit      what the API answers for once, and a snapshot stores once: a customer id (Get Customers
              Bulk), one parent's complete walk (the hierarchy), or one lookup of an identifier
              value, always with a host and a source.
    request   one ask for a set of units: a Get Customers Bulk POST for up to ``batch_size`` ids, or
              one parent's walk (all its pages). A request that exhausts its retries has *failed*.
    answer    what a request brought back, read and checked, not yet tidied (``_answers.Answer``).
    group     consecutive requests whose answers are tidied together: a tidy step, and a part's
              files, have fixed costs that one request's answer would pay alone (per-request parts
              made 90,000 files for a million ids and doubled the pull's time).
    part      what one group added to a snapshot: a parquet file per table, and its index rows.
              A hierarchy part holds one walk: its rows do not say which walk they belong to.
    chunk     tidied tables held in memory (``Tidied``): a group's, several merged, or what was read
              back from the snapshot. Never a part: a part is on disk.
    tables    table name -> DataFrame: what tidying gives, what a bundle holds.

The engine schedules the requests, asks once more for units an answer left out, records failures,
keeps the snapshot, and hands back tidied tables in an order that depends on the units asked, never
on the order answers arrive in. The machinery for speed and memory lives here: groups are
consecutive requests (never the first to arrive), whose bodies are read together when the endpoint
leaves them unread (``Reply.unread``: :func:`capframe._answers.read_group`), tidied tables are kept
in group order and merged now and then (thousands of small frames cost far more memory than their
rows), and with a snapshot finished groups live on disk only and are read back once, at the end.
"""

from __future__ import annotations

import asyncio
import bisect
import ctypes
import logging
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Protocol, TypeVar, overload

import polars as pl

from capframe import _args, _wire
from capframe._answers import Answer, Tidied, Unread, combine, read_group
from capframe._client import Client, resolve_host
from capframe._contract import Contract, holds
from capframe._endpoints import Spec
from capframe._http import RetriesExhausted, Session, advice, lasting
from capframe._progress import Progress, progress_bar
from capframe._snapshot import Notice, Snapshot, Store, _now, by_part, cannot_write, damaged_or_missing, named
from capframe._tables import ChildrenTables, CustomerTables, Provenance, RunCount, describe_run, failed_checks
from capframe.errors import (
    ArgumentTypeError,
    CapframeError,
    ConfigurationError,
    FetchError,
    InvalidArgumentError,
    SnapshotError,
)

__all__ = [
    "Delivery",
    "Endpoint",
    "Notice",
    "Pulled",
    "Reply",
    "Unit",
    "check_streaming",
    "connect",
    "deliver",
    "group_numbers",
    "in_progress_limit",
    "pull",
    "scan",
    "snapshot_of",
    "stored_tables",
]

log = logging.getLogger("capframe")
Unit = Hashable  # int (customer id) or str (a parent's walk key)
T = TypeVar("T")
# A public function's result, the warnings to give at its caller's line, and the error to raise after.
Delivery = tuple[T, list[Notice], CapframeError | None]

# Requests tidied together: 20 bound the memory held. The last 20 requests are grouped by 5: their
# answers come in last, and what is tidied after the last answer waits for it.
GROUP = 20
LAST_GROUP = 5
MERGE_EVERY = 200  # tidied tables kept before they are merged into one
# Why a unit asked twice has no row: the API left it out of both answers.
_NOT_RETURNED = "not in the API's answer, though asked twice"
# What a pull with no credentials says would fetch what the snapshot lacks.
# A whole sentence's end: the remedy closes every message it is in (the CLI puts its own in its place).
_TO_FETCH = (
    "set CAPILLARY_HOST and CAPILLARY_USERNAME/CAPILLARY_PASSWORD (or CAPILLARY_CLIENT_KEY/"
    "CAPILLARY_CLIENT_SECRET), or pass client=capframe.Client(host, username=..., password=...)."
)


@dataclass
class Reply:
    """A request's answers, the units they answer for, and units the API refused without rows
    (unit -> (its code, its message): a parent the hierarchy does not know). ``unread``: a body
    left to be read with its group's (then no answers or units yet)."""

    answers: list[Answer]
    units: Sequence[Unit]
    refused: dict[Unit, tuple[int | None, str]] = field(default_factory=dict)
    unread: Unread | None = None


class Endpoint(Protocol):
    """An endpoint's adapter for one pull: its spec (what is declared of the endpoint), and the
    pull's own doings (its host, source and units' values)."""

    spec: Spec

    async def ask(self, session: Session, units: tuple[Unit, ...]) -> Reply:
        """One request for ``units``; raises RetriesExhausted when it fails."""
        ...

    def tidy(self, answers: Sequence[Answer]) -> Tidied: ...

    def failed(self, units: Sequence[Unit], why: str) -> Tidied | None:
        """Rows of the endpoint's tables for units no answer accounts for (``why``: the engine's
        reason, in the spec's words); None where the rows are made after the pull (the map of
        lookups, the hierarchy's parents), from :attr:`Pulled.failures`."""
        ...

    def columns(self) -> dict[str, str]:
        """Columns every snapshot file of this pull carries (host, source, ...)."""
        ...


def group_numbers(count: int, first: int, *, alone: bool = False) -> list[int]:
    """The group of each of ``count`` consecutive requests, numbered from ``first``; ``alone``: one
    request per group (a snapshot whose parts hold one unit each)."""
    group, last_group = (1, 1) if alone else (GROUP, LAST_GROUP)
    tail = max(0, count - group)
    head = [first + index // group for index in range(tail)]
    start = head[-1] + 1 if head else first
    return head + [start + index // last_group for index in range(count - tail)]


def in_progress_limit(session: Session) -> int:
    """Requests between asking and storing. Requests in flight are bounded by the client's
    concurrency; without this bound, answers arriving faster than they are tidied and written pile
    up (a million ids held 5 GB of answers waiting for a worker thread)."""
    return 2 * int(session.client.most_in_flight)


@dataclass
class Pulled:
    """What a pull gives back to its endpoint's public function."""

    spec: Spec
    chunks: list[Tidied]  # tidied tables, in unit order (snapshot) or request order, then failure rows
    failed: list[tuple[tuple[Unit, ...], RetriesExhausted]]
    unanswered: list[Unit]  # asked twice, in no answer
    refused: dict[Unit, tuple[int | None, str]]
    read: int  # units read from the snapshot
    fetched: int  # units this run asked the API for and got an answer for
    sent: int  # HTTP requests sent to the host: pages, retries and token requests included
    first_fetched_at: datetime
    last_fetched_at: datetime
    notices: list[Notice]
    snapshot_error: SnapshotError | None = None
    # read_back=False: table -> the snapshot's rows of the units answered, as a LazyFrame (in unit order
    # of parts, not of units); ``chunks`` then holds only what could not be written, and warnings.
    scans: dict[str, pl.LazyFrame] | None = None

    @property
    def failures(self) -> dict[Unit, str]:
        """Every unit asked that no answer accounts for -> why, in the spec's words: those of failed
        requests, and those left out of their answers twice."""
        why = {u: f"{self.spec.words.failed}: {exc.reason}" for units, exc in self.failed for u in units}
        return why | dict.fromkeys(self.unanswered, _NOT_RETURNED)

    def provenance(
        self, host: str, source: str, asked: int, failed: int, after: Provenance | None = None
    ) -> Provenance:
        """What a bundle states of this pull (``asked`` and ``failed``: in the bundle's terms), and of
        the pull ``after`` it whose tables it holds too (the customers found by a lookup): one span,
        each pull's units counted apart."""
        first, last = self.first_fetched_at, self.last_fetched_at
        if after is not None:
            first, last = min(first, after.fetched_at), max(last, after.last_fetched_at or after.fetched_at)
        return Provenance(
            first,
            host,
            source,
            version("capframe"),
            asked,
            failed,
            last_fetched_at=last,
            counts=(RunCount(self.spec.words.units, self.read, self.fetched), *(after.counts if after else ())),
            sent=self.sent + (after.sent if after else 0),
        )

    def error(
        self,
        asked: int,
        partial: CustomerTables | ChildrenTables | pl.DataFrame | dict[str, pl.LazyFrame],
        *,
        cached: bool,
        label: Callable[[Unit], str] | None = None,
        ids: tuple[int, ...] | None = None,
    ) -> CapframeError | None:
        """The pull's error, with what it got in ``.partial``: its failed requests (the first named by
        ``label``, never by a unit's value), or else a snapshot it could not write; None."""
        words = self.spec.words
        if self.failed:
            units, exc = self.failed[0]
            statuses = sorted({e.status for _, e in self.failed if e.status is not None})
            requests = f"{len(self.failed)} request(s); " if self.spec.units_per_request != 1 else ""
            return FetchError(
                f"{sum(len(u) for u, _ in self.failed)} of {asked} {words.units} could not be {words.done} "
                f"({requests}first: {label(units[0]) + ', ' if label else ''}{exc.reason}"
                f"{'; statuses ' + ', '.join(map(str, statuses)) if statuses else ''}). "
                + advice(e for _, e in self.failed)
                + f" Everything fetched is in .partial ({words.failed_rows})"
                + ("; with the same cache_dir a new run fetches only what is missing." if cached else "."),
                status=statuses[-1] if statuses else None,
                ids=ids or (),
                partial=partial,
            )
        if self.snapshot_error is not None:
            return SnapshotError(
                f"{self.snapshot_error} Nothing fetched was lost: the tables are in .partial.", partial=partial
            )
        return None


def deliver(delivery: Delivery[T], stacklevel: int) -> T:
    """Give a pull's warnings at its caller's line (``stacklevel`` as for warnings.warn, counted from
    the public function), then its result or its error. The async core collects them: warned from
    inside, they would point at asyncio's event loop."""
    result, notices, error = delivery
    for message, category in notices:
        warnings.warn(message, category, stacklevel=stacklevel + 1)
    if error is not None:
        raise error
    return result


def snapshot_of(cache_dir: object) -> Snapshot | None:
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise ArgumentTypeError(f"cache_dir must be a folder path, not {type(cache_dir).__name__}")
    return Snapshot(cache_dir)


def connect(client: object, snapshot: Snapshot | None) -> tuple[Client | None, str]:
    """(the client, or None when no credentials are configured but a snapshot may serve every unit; the host)."""
    if client is not None or snapshot is None:
        checked = _args.client(client)
        return checked, checked.base_url
    try:
        checked = Client.from_env()
    except ConfigurationError as exc:
        return None, offline_host(snapshot, exc)
    return checked, checked.base_url


def scan(cache_dir: object, endpoint: str, table: str, source: str | None) -> pl.LazyFrame:
    """A LazyFrame over one table of a snapshot: the files its index names (one row per unit)."""
    snapshot = snapshot_of(cache_dir)
    assert snapshot is not None
    snapshot.check(create=False)
    store = Store(snapshot, endpoint)
    with snapshot.lock(exclusive=False):
        units, files = store.view()
        if source is not None:
            units = units.filter(pl.col("source") == source)
        # Checked now: a LazyFrame over a damaged file fails only when collected, with polars' error;
        # a part the file list lacks this table of is damage too, not rows left out.
        store.foreign = units.filter(~store.current()).height
        damaged = [*store.unreadable, *store.damaged(units, files, [table])]
        units = units.join(files.filter(pl.col("table") == table).select("part"), on="part", how="semi")
    if store.foreign:
        raise SnapshotError(
            f"{store.written_elsewhere()}: scan it with the capframe version that wrote it, or run the fetch "
            "that wrote it again, with this cache_dir and credentials (it fetches them again), then scan it again"
        )
    if damaged:
        raise SnapshotError(
            f"{damaged_or_missing(damaged)} in the snapshot {snapshot.root}: run the fetch that wrote it again, with this cache_dir and credentials (it fetches "
            "the damaged units again), then scan it again"
        )
    parts = units["part"].unique().sort().to_list()
    if not parts:
        raise InvalidArgumentError(
            f"{snapshot.root} holds no {endpoint} {table} table{' for source ' + source if source else ''}: "
            "pass the cache_dir of a fetch"
        )
    return store.scan(table, by_part(units), parts)


def offline_host(snapshot: Snapshot, cause: ConfigurationError) -> str:
    """The host of a pull with no client: CAPILLARY_HOST, else the snapshot's only host."""
    if os.environ.get("CAPILLARY_HOST"):
        return resolve_host(os.environ["CAPILLARY_HOST"])
    hosts, unreadable = snapshot.hosts() if snapshot.root.is_dir() else ([], [])
    if len(hosts) == 1:
        return hosts[0]
    if hosts:
        raise ConfigurationError(
            f"the snapshot {snapshot.root} holds several hosts ({', '.join(hosts)}): set CAPILLARY_HOST "
            "or pass client=capframe.Client(host, ...) to say which one."
        ) from None
    if unreadable:
        raise SnapshotError(
            f"{damaged_or_missing(unreadable)} and there are no credentials to fetch again what it listed: {_TO_FETCH}"
        ) from None
    raise cause


@dataclass
class _Run:
    endpoint: Endpoint
    host: str
    source: str
    store: Store | None
    bar: Progress
    keep: tuple[str, ...]
    chunks: list[Tidied] = field(default_factory=list)
    noticed: list[Tidied] = field(default_factory=list)  # what stored parts' reading noticed (no tables)
    answered: _Seen = field(default_factory=lambda: _Seen())  # units an answer held, in arrival order
    failed: list[tuple[tuple[Unit, ...], RetriesExhausted]] = field(default_factory=list)
    refused: dict[Unit, tuple[int | None, str]] = field(default_factory=dict)
    fetched_at: list[datetime] = field(default_factory=list)
    snapshot_error: SnapshotError | None = None
    _group_of: list[int] = field(default_factory=list)  # request index -> group, across both rounds of asking
    _group_size: Counter[int] = field(default_factory=Counter)
    # group -> request -> (its units, its reply or None when it failed)
    _waiting: dict[int, dict[int, tuple[tuple[Unit, ...], Reply | None]]] = field(default_factory=dict)
    _chunk_groups: list[int] = field(default_factory=list)  # the group of each kept chunk: their order
    _done: set[int] = field(default_factory=set)  # groups tidied (or with nothing to tidy)
    _first_undone: int = 0  # every group before it is done: chunks of those groups are final
    _in_progress: asyncio.Semaphore | None = None

    async def fetch(self, session: Session, requests: Sequence[tuple[Unit, ...]]) -> None:
        """Every request, concurrently. One that exhausts its retries is recorded as failed, so the
        others still finish; any other error stops the whole pull. A request (its units as Python
        objects, its task) is made only when it may start: made up front, 20,000 requests of a
        2M-id pull held their tuples and tasks for the whole pull."""
        self._in_progress = self._in_progress or asyncio.Semaphore(in_progress_limit(session))
        first = len(self._group_of)
        alone = self.store is not None and self.store.one_unit_per_part
        self._group_of += group_numbers(len(requests), self._group_of[-1] + 1 if self._group_of else 0, alone=alone)
        self._group_size.update(self._group_of[first:])
        running: set[asyncio.Task[None]] = set()
        try:
            for i in range(len(requests)):
                await self._in_progress.acquire()
                for task in [t for t in running if t.done()]:
                    running.discard(task)
                    task.result()  # an error other than a failed request stops the pull now
                running.add(asyncio.create_task(self._request(session, first + i, requests[i])))
            await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()

    async def _request(self, session: Session, index: int, units: tuple[Unit, ...]) -> None:
        """One request, its slot of ``_in_progress`` taken by ``fetch``: given back once stored."""
        assert self._in_progress is not None
        try:
            try:
                reply: Reply | None = await self.endpoint.ask(session, units)
            except RetriesExhausted as exc:
                self.failed.append((units, exc))
                reply = None
            if reply is not None:
                self.bar.update()
            await self._group_done(index, units, reply)
        finally:
            self._in_progress.release()

    async def _group_done(self, index: int, units: tuple[Unit, ...], reply: Reply | None) -> None:
        """Record a request's reply (None: it failed); once its group is complete, read the bodies
        left unread, tidy the group's answers in request order, and store them as one part of the
        snapshot or keep them."""
        group = self._group_of[index]
        waiting = self._waiting.setdefault(group, {})
        waiting[index] = (units, reply)
        if len(waiting) < self._group_size[group]:
            return
        del self._waiting[group]
        replies, answers = await self._read([waiting[i] for i in sorted(waiting)])
        for read in replies:
            self.answered.add(read.units)
            self.refused |= read.refused
        tidied = await asyncio.to_thread(self.endpoint.tidy, answers) if answers else None
        stored = (
            replies and self.store is not None and self.snapshot_error is None and await self._store(replies, tidied)
        )
        if tidied is not None and not stored:
            self._append(tidied, group)
        self._done.add(group)
        while self._first_undone in self._done:
            self._first_undone += 1

    async def _read(self, asked: list[tuple[tuple[Unit, ...], Reply | None]]) -> tuple[list[Reply], list[Answer]]:
        """A group's replies and answers, their bodies read: those left unread at arrival together,
        in one worker thread (:func:`capframe._answers.read_group`). A request whose body cannot be
        read is asked again, alone, its body read at arrival as before; it fails when asking again
        cannot help (values of undocumented types) or its retries run out."""
        unread = [reply.unread for _, reply in asked if reply is not None and reply.unread is not None]
        read = await asyncio.to_thread(read_group, unread) if unread else None
        outcomes = iter(read.outcomes if read is not None else [])
        replies: list[Reply] = []
        again: list[tuple[tuple[Unit, ...], Unread, _wire.WireFormatError]] = []
        for units, reply in asked:
            if reply is None or reply.unread is None:
                replies += [reply] if reply is not None else []
                continue
            outcome = next(outcomes)
            if isinstance(outcome, _wire.WireTypeError):  # asking again gets the same
                self.failed.append((units, lasting(outcome)))
            elif isinstance(outcome, _wire.WireFormatError):
                again.append((units, reply.unread, outcome))
            else:
                replies.append(Reply([], outcome))
        answers = [a for r in replies for a in r.answers] + (read.answers if read is not None else [])
        retried = await asyncio.gather(*(one.again(why) for _, one, why in again), return_exceptions=True)
        for (units, _, _), answered in zip(again, retried, strict=True):
            if isinstance(answered, RetriesExhausted):
                self.failed.append((units, answered))
            elif isinstance(answered, BaseException):
                raise answered
            else:
                replies.append(Reply([answered], answered.entities["customer_id"].to_list()))
                answers.append(answered)
        return replies, answers

    async def _store(self, replies: list[Reply], tidied: Tidied | None) -> bool:
        """A group's part in the snapshot: only its warnings stay in memory. False when the snapshot
        cannot be written: the pull goes on in memory and says so at the end."""
        assert self.store is not None
        try:
            when = await asyncio.to_thread(
                self.store.write,
                self.host,
                self.source,
                [u for r in replies for u in r.units],
                tidied.tables if tidied is not None else {},
                {u: note for r in replies for u, note in r.refused.items()},
                self.endpoint.columns(),
            )
        except OSError as exc:
            self.snapshot_error = _cannot_write_error(self.store, exc)
            return False
        self.fetched_at.append(when)
        if tidied is not None and (tidied.unexpected or tidied.drift):
            self.noticed.append(Tidied({}, tidied.unexpected, tidied.drift))
        return True

    def _append(self, tidied: Tidied, group: int) -> None:
        """Keep tidied tables in group order, the order rows tied to no unit keep; now and then merge
        those of the groups before the first one not done (a group still to come never goes before them)."""
        tidied.tables = {name: t if name in self.keep else t.clear() for name, t in tidied.tables.items()}
        at = bisect.bisect(self._chunk_groups, group)
        self._chunk_groups.insert(at, group)
        self.chunks.insert(at, tidied)
        final = bisect.bisect_left(self._chunk_groups, self._first_undone)
        if len(self.chunks) >= MERGE_EVERY and final > 1:
            self.chunks[:final] = [merge(self.chunks[:final], self.endpoint.spec.write_order)]
            self._chunk_groups[:final] = [self._chunk_groups[final - 1]]


def merge(chunks: Sequence[Tidied], names: Sequence[str]) -> Tidied:
    """Tidied tables concatenated into one, in order (chunks holding no tables, only warnings, too)."""
    with_tables = [c for c in chunks if c.tables]
    tables = (
        {name: pl.concat([p.tables[name] for p in with_tables], rechunk=True) for name in names} if with_tables else {}
    )
    return Tidied(tables, [i for c in chunks for i in c.unexpected], {path for c in chunks for path in c.drift})


def _cannot_write_error(store: Store, exc: OSError) -> SnapshotError:
    return cannot_write(store.snapshot.root, exc)


@dataclass
class _Seen:
    """Units, as polars Series merged now and then: never a Python object per unit (a 2M-id pull's
    answered ids as a list of ints held 72 MB)."""

    chunks: list[pl.Series] = field(default_factory=list)

    def add(self, units: Sequence[Unit]) -> None:
        if units:
            self.chunks.append(pl.Series(units))
            if len(self.chunks) >= MERGE_EVERY:
                self.chunks = [pl.concat(self.chunks, rechunk=True)]

    def series(self, dtype: pl.DataType) -> pl.Series:
        return pl.concat([c.cast(dtype) for c in self.chunks], rechunk=True) if self.chunks else pl.Series(dtype=dtype)


def _missing(units: pl.Series, done: pl.Series) -> pl.Series:
    """``units`` (in their order) not in ``done``."""
    return units.filter(~units.is_in(done.implode()))


class _Requests(Sequence[tuple[Unit, ...]]):
    """Units in requests of ``size``, each sorted (the same units make the same request, whatever
    their order), each made when asked for: the units stay one Series until their request starts."""

    def __init__(self, units: pl.Series, size: int) -> None:
        self.units, self.size = units, size

    def __len__(self) -> int:
        return -(-len(self.units) // self.size)

    @overload
    def __getitem__(self, index: int) -> tuple[Unit, ...]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[Unit, ...]]: ...
    def __getitem__(self, index: int | slice) -> tuple[Unit, ...] | Sequence[tuple[Unit, ...]]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        if not 0 <= index < len(self):
            raise IndexError(index)
        return tuple(self.units.slice(index * self.size, self.size).sort().to_list())


async def pull(
    endpoint: Endpoint,
    units: Sequence[Unit] | pl.Series,
    *,
    host: str,
    source: str,
    client: Client | None,
    snapshot: Snapshot | None,
    max_age: timedelta | None,
    progress: bool | None,
    keep: tuple[str, ...],
    per_request: int | None = None,
    session: Session | None = None,
    read_back: bool = True,
) -> Pulled:
    """Units -> requests for those the snapshot lacks -> tidied tables for every unit answered, and
    rows for every unit no answer accounts for (the endpoint's ``failed``).

    ``progress``: a bar of requests (None: in a notebook or a terminal, for a long pull).
    ``per_request``: units a request takes, where the spec leaves it to the caller (a batch size);
    else the spec's, or the client's batch_size. ``session``: one already open, shared with the pulls
    before and after this one (the lookups of identifiers, then Get Customers Bulk): one pacer and
    one concurrency limit for all their requests. ``read_back=False`` (with a snapshot): the tables
    are not read into memory; ``Pulled.scans`` gives them as LazyFrames over the snapshot's files."""
    spec = endpoint.spec
    words, ask_again = spec.words.units, spec.ask_again
    per_request = per_request or spec.units_per_request or (client.batch_size if client is not None else 100)
    notices: list[Notice] = []
    store: Store | None = None
    dtype = spec.unit_dtype
    if not len(units):
        now = _now()
        return Pulled(spec, [], [], [], {}, 0, 0, 0, now, now, notices)
    units = pl.Series("unit", units, dtype=dtype)  # a million units as Python objects, each: 36 bytes
    held = pl.DataFrame(schema={"unit": dtype, "part": pl.Categorical, "fetched_at": pl.Datetime("us", "UTC")})
    damaged: list[Path] = []
    if snapshot is not None:
        snapshot.check(create=client is not None, notices=notices)
        store = Store(snapshot, spec.name)
        held, damaged = await asyncio.to_thread(store.held, units, host, source, max_age)
        notices += store.notices
        store.notices = []
    missing = _missing(units, held["unit"]) if held.height else units
    read = held.height
    del held  # a rerun's index rows of every unit asked: not needed past here
    if len(missing) and client is None:
        if store is not None and store.foreign:
            raise SnapshotError(
                f"{store.written_elsewhere()}: read it with the capframe version that wrote it, or fetch them "
                f"again: {_TO_FETCH}"
            )
        where = f" {snapshot.root}" if snapshot is not None else ""
        if damaged:  # damage made them missing: say which files
            raise SnapshotError(
                f"{damaged_or_missing(damaged)}: {len(missing)} of {len(units)} {words} are not in the "
                f"snapshot{where} and there are no credentials to fetch them again: {_TO_FETCH}"
            )
        raise ConfigurationError(
            f"{len(missing)} of {len(units)} {words} are not in the snapshot{where}"
            f"{_held_instead(store, host, source) if not read else f' for {host} and source {source}'}: "
            f"to fetch them, {_TO_FETCH}"
        )
    if len(missing) and store is not None:
        if not snapshot.writable() or not store.can_write(spec.write_order):  # type: ignore[union-attr]
            raise SnapshotError(
                f"{len(missing)} of {len(units)} {words} are not in the snapshot {store.snapshot.root}, which "
                "is read-only: make it writable, or pass another cache_dir (or none) to fetch them"
            )
        with snapshot.lock(exclusive=True):  # type: ignore[union-attr]
            snapshot.clean_temporary()  # type: ignore[union-attr]
    requests = _Requests(missing, per_request)
    bar = progress_bar(len(requests), f"{spec.name} ({source})", progress)
    run = _Run(endpoint, host, source, store, bar, keep)
    sent = 0

    async def count(request: object) -> None:
        nonlocal sent
        sent += 1

    async def fetch(session: Session) -> None:
        hooks = session.http.event_hooks["request"]
        hooks.append(count)
        try:
            await run.fetch(session, requests)
            if ask_again and len(left_out := _left_out(run, missing)):
                await run.fetch(session, _Requests(left_out, per_request))
        finally:
            hooks.remove(count)

    try:
        if requests and session is not None:
            await fetch(session)
        elif requests:
            assert client is not None
            async with Session.connect(client) as opened:
                await fetch(opened)
    finally:
        run.bar.close()
    failed_units = [u for units_, _ in run.failed for u in units_]
    unanswered = _left_out(run, missing).to_list() if ask_again else []
    scans: dict[str, pl.LazyFrame] | None = None
    if store is None:
        now = _now()
        chunks, first, last = [*run.chunks, *run.noticed], now, now
    else:
        if requests:
            _give_back_freed_memory()
        chunks, scans, first, last = await asyncio.to_thread(
            _read_back, run, store, units, [*failed_units, *unanswered], dtype, read_back
        )
    # Reading back finds again the damage the lookup found (a lost index, say): said once.
    notices += [notice for notice in (store.notices if store is not None else []) if notice not in notices]
    fetched = run.answered.series(dtype).n_unique()
    log.info("%s from %s: %s", source, host, describe_run((RunCount(words, read, fetched),), sent))
    failed = _in_unit_order(run.failed, units)
    for request, exc in failed:
        chunks += filter(None, [endpoint.failed(request, f"{spec.words.failed}: {exc.reason}")])
    if unanswered:
        chunks += filter(None, [endpoint.failed(unanswered, _NOT_RETURNED)])
    return Pulled(
        spec,
        chunks,
        failed,
        unanswered,
        run.refused,
        read,
        fetched,
        sent,
        first,
        last,
        notices,
        run.snapshot_error,
        scans,
    )


def stored_tables(pulled: Pulled, notices: list[Notice]) -> dict[str, pl.LazyFrame]:
    """A sink's tables, not yet ordered: the snapshot's rows of the units answered (``pulled.scans``),
    then those kept in memory (failed units' rows, groups the snapshot could not take). Adds the
    warnings a fetch gives to ``notices``: those of the answers, and of values the snapshot's tables
    list as unread (a few rows of its errors table; the rest is never read)."""
    names, kept = pulled.spec.write_order, pulled.chunks
    # No scans: no unit was asked (parents none of which was found), so the snapshot has no rows to give.
    scans = pulled.scans or {name: pl.LazyFrame(schema=pulled.spec.table_schemas()[name]) for name in names}
    stored = {name: pl.concat([scans[name], *(c.tables[name].lazy() for c in kept if c.tables)]) for name in names}
    errors = stored["errors"].filter((pl.col("origin") == "capframe") & (pl.col("level") == "warning"))
    unread = {name: pl.DataFrame(schema=frame.collect_schema()) for name, frame in stored.items()}
    unread["errors"] = errors.collect()
    combine([*(Tidied({}, c.unexpected, c.drift) for c in kept), Tidied(unread)], names, names[0], notices)
    return stored


def check_streaming(tables: dict[str, pl.LazyFrame], contracts: Mapping[str, Contract], *, read: bool) -> None:
    """Check a sink's tables as a fetch's are, against the models' rules, in batches (memory stays
    flat): a folder someone else wrote may hold values capframe's models refuse, with checksums to match."""
    for name, frame in tables.items():
        if not holds({name: frame}, contracts, streaming=True):
            raise failed_checks(f"the {name} table", read=read)


def _give_back_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim). The fetch's bodies and
    Python objects, freed, stay in the process otherwise, and what the read-back allocates comes on
    top: at 300,000 ids the read-back peaked 45 MB lower with it (benchmarks/bench_memory.py)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl): it keeps its free pages
        return
    trim(0)


def _in_unit_order(
    failed: list[tuple[tuple[Unit, ...], RetriesExhausted]], units: pl.Series
) -> list[tuple[tuple[Unit, ...], RetriesExhausted]]:
    """Failed requests in the order of their first unit asked: the first is the one a message names."""
    if not failed:
        return failed
    asked = pl.Series([u for request, _ in failed for u in request], dtype=units.dtype)
    rows = units.to_frame("unit").with_row_index("position").filter(pl.col("unit").is_in(asked.implode()))
    position = dict(zip(rows["unit"].to_list(), rows["position"].to_list(), strict=True))
    return sorted(failed, key=lambda f: min(position[u] for u in f[0]))


def _held_instead(store: Store | None, host: str, source: str) -> str:
    """What a snapshot holding none of a pull's units holds instead: a CAPILLARY_HOST or a source
    other than the author's makes every unit missing, and "set CAPILLARY_HOST" alone does not say so."""
    if store is None:
        return ""
    held = [f"{h} {s}" for h, s in sorted(store.units().select("host", "source").unique().iter_rows())]
    return f" for {host} and source {source}" + (f" (it holds {named(held)})" if held else "")


def _left_out(run: _Run, missing: pl.Series) -> pl.Series:
    """Units asked that no answer so far holds, and no failed request asked for."""
    failed = pl.Series([u for units, _ in run.failed for u in units], dtype=missing.dtype)
    return _missing(missing, pl.concat([run.answered.series(missing.dtype), failed]))


def _read_back(
    run: _Run, store: Store, units: pl.Series, skip: Sequence[Unit], dtype: pl.DataType, read: bool
) -> tuple[list[Tidied], dict[str, pl.LazyFrame] | None, datetime, datetime]:
    """Fold this run's parts into the index, then every unit's tables, in unit order: read back
    (``read``), or as LazyFrames over the parts (the order of parts only)."""
    if run.fetched_at and run.snapshot_error is None:
        try:
            with store.snapshot.lock(exclusive=True):
                store.commit()
        except OSError as exc:  # the parts are in the journal: read from there
            run.snapshot_error = _cannot_write_error(store, exc)
    wanted = units
    if skip:
        wanted = wanted.filter(~wanted.is_in(pl.Series(skip, dtype=dtype).implode()))
    with store.snapshot.lock(exclusive=False):
        index, files = store.view()
    # Only the columns read back, and no sort of every row: at a million units the index, the
    # matched rows and a sorted copy alive at once were the pull's peak. Matched three times, each
    # keeping what it needs: the refusals' text (16 bytes a row, null or not) and the times were 32
    # of a matched row's 48 bytes.
    matched = (
        index.lazy()
        .filter((pl.col("host") == run.host) & (pl.col("source") == run.source) & store.current())
        .join(wanted.to_frame().lazy().with_row_index("_position"), on="unit", how="inner")
    )
    rows = matched.select("unit", "part", "_position").collect()
    refused = matched.filter(pl.col("message").is_not_null()).select("unit", "code", "message", "_position").collect()
    first, last = (
        matched.select(pl.col("fetched_at").min().alias("first"), pl.col("fetched_at").max().alias("last"))
        .collect()
        .row(0)
    )
    del index
    run.refused |= {u: (c, m) for u, c, m in refused.sort("_position").select("unit", "code", "message").iter_rows()}
    now = _now()
    first, last = first or now, last or now
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    part_order = rows.group_by("part").agg(pl.col("_position").min()).sort("_position")["part"].to_list()
    files = files.filter(pl.col("part").is_in(part_order))
    kept = [*run.chunks, *run.noticed]  # kept in memory when the snapshot could not be written
    columns = list(run.endpoint.columns())
    if not read:
        scans = store.scans(rows.drop("_position"), part_order, files, run.endpoint.spec.write_order, columns)
        return kept, scans, first, last
    tables = store.read(rows.drop("_position"), part_order, files, run.endpoint.spec.write_order, run.keep, columns)
    read_back = {name: frame for name, frame in tables.items() if frame is not None}
    # Tables kept in memory when the snapshot could not be written come after those read back.
    chunks = [Tidied(read_back)] if len(read_back) == len(tables) else []
    return [*chunks, *kept], None, first, last
