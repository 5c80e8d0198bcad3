"""Parsing Get Customers Bulk bodies: capframe.tidy_customers against the usual alternatives.

    python benchmarks/bench_parse.py            # 20k entities, pages of 100, best of 3
    python benchmarks/bench_parse.py --full     # 100k entities

The headline is two ratios (METHOD below says how they are measured):

  tidy_customers / floor   the floor: orjson.loads of each page, the result dropped before the next page
                           (nothing kept alive), the garbage collector on as Python sets it by default.
                           Goal: 1.0x (stretch 0.6x).
  pandas / tidy_customers  the analyst's route (b) against capframe (a). Goal: >= 20x.

Everything else is context: parsers that keep every page's result alive (the garbage collector then
runs over a growing heap, which inflates them: shown with the collector on and off), and polars'
readers alone.

Every route reads the same in-memory pages (sandbox bodies, see _pages.py):

  (a) capframe.tidy_customers(pages): the wire read (capframe._prototype's reader, which learns the
      open-ended fields from the first pages it cannot read), tidy into 8 tables, checked against the
      models' rules (capframe._contract; pandera only for a table that fails them)
  (b) pandas: orjson.loads each page, pd.json_normalize the items (customers, wide), and json_normalize
      with record_path for profiles, identifiers (+identifiersAll, de-duplicated), comm channels, cards
      and errors; first-profile names and first mobile/email/externalId joined onto customers;
      timestamps to UTC. No validation; fields/segments stay wide columns instead of long tables.
  (c) the floor: orjson.loads of each page, the dicts dropped at once (no tables at all)
  (c1) orjson.loads of each page, every page's dicts kept alive (as in a list of parsed bodies);
  (c2) the same with the GC disabled while it runs
  (d) msgspec.json.decode of each page, kept alive: untyped (dicts), and typed into Structs of the
      entity shape (open-ended maps kept as msgspec.Raw, like capframe keeps them as raw JSON text;
      gc=False, msgspec's option for structs that hold no cycles: the cyclic GC skips them)
  (e) polars' readers alone, page by page, no tidying:
      (e)   pl.read_ndjson(page, schema=capframe._wire.CUSTOMERS_PAGE): the exact reader, the only one
            that keeps the open-ended maps (declared String) as their JSON text;
      (e')  pl.read_json(page) with no schema (inferred): capframe's reader when the prototype declines;
      (e'') pl.read_json(page, schema=) with the wire schema minus the open-ended maps (pl.read_json
            refuses to read a JSON object into a String column).
      (e3)  pl.read_json([prototype, page], infer_schema_length=1): the schema inferred from a small
            prototype document holding every key of the pages (here: of these very pages, the best
            case), numbers declared as text. Unlike schema=, this refuses unknown keys and text
            where a number is declared; numbers are read as text because an Int64 declared this
            way silently truncates 2.5 to 2 and reads true as 1. A measure of what a parser that
            learns the open-ended keys could reach; capframe reads this way, in chunks of about 500 kB,
            with checks for what this form still coerces (capframe/_prototype.py).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import orjson
import pandas as pd  # type: ignore[import-untyped]
import polars as pl
from _pages import best_of, customer_pages, fmt_table, revision  # also puts the checkout on sys.path
from _report import add_write_flag, report

import capframe
from capframe import _customers, _wire
from capframe._answers import in_order
from capframe._prototype import _chunks

# -- (b) pandas, written the way an analyst would ---------------------------------------------------

T = TypeVar("T")

_META = [["entity", "id"]]
_FIRST_IDS = ("mobile", "email", "externalId")


def pandas_route(pages: list[bytes]) -> dict[str, pd.DataFrame]:
    data = [item for page in pages for item in orjson.loads(page)["data"]]
    customers = pd.json_normalize(data)  # entity.* flattened: loyaltyInfo.*, segments.*, extendedFields.*
    profiles = pd.json_normalize(data, record_path=["entity", "profiles"], meta=_META)
    identifiers = pd.concat(
        [
            pd.json_normalize(data, record_path=["entity", "profiles", key], meta=_META)
            for key in ("identifiers", "identifiersAll")
        ],
        ignore_index=True,
    ).drop_duplicates(["entity.id", "type", "value"])
    comm_channels = pd.json_normalize(data, record_path=["entity", "profiles", "commChannels"], meta=_META)
    # json_normalize raises KeyError where record_path is missing: failed items have no cardDetails.
    cards = pd.json_normalize(
        [d for d in data if d["entity"].get("cardDetails")], record_path=["entity", "cardDetails"], meta=_META
    )
    errors = pd.json_normalize(data, record_path="errors", meta=_META)

    profiles["autoUpdateTime"] = pd.to_datetime(profiles["autoUpdateTime"], utc=True, format="ISO8601")
    for column in ("issuedDate", "createdDate"):
        cards[column] = pd.to_datetime(cards[column], format="ISO8601")
    first_profile = profiles.groupby("entity.id", sort=False)[
        ["firstName", "lastName", "source", "accountId", "autoUpdateTime"]
    ].first()
    first_ids = (
        identifiers[identifiers["type"].isin(_FIRST_IDS)]
        .drop_duplicates(["entity.id", "type"])
        .pivot(index="entity.id", columns="type", values="value")
    )
    first_error = errors.drop_duplicates("entity.id").set_index("entity.id")[["code", "message"]]
    customers = (
        customers.drop(columns=["entity.profiles", "entity.cardDetails", "errors", "warnings"])
        .join(first_profile, on="entity.id")
        .join(first_ids, on="entity.id")
        .join(first_error, on="entity.id")
    )
    return {
        "customers": customers,
        "profiles": profiles,
        "identifiers": identifiers,
        "comm_channels": comm_channels,
        "cards": cards,
        "errors": errors,
    }


# -- (d) msgspec Structs of the entity shape ---------------------------------------------------------

Raw = msgspec.Raw  # any JSON value, kept as its bytes (msgspec cannot put Raw in a union with None)
_NULL = msgspec.Raw(b"null")


class Identifier(msgspec.Struct, gc=False):
    type: str | None = None
    value: str | None = None
    seriesId: int | None = None
    statusLabel: str | None = None


class ChannelMeta(msgspec.Struct, gc=False):
    residence: bool | None = None
    office: bool | None = None


class CommChannel(msgspec.Struct, gc=False):
    type: str | None = None
    value: str | None = None
    primary: bool | None = None
    verified: bool | None = None
    meta: ChannelMeta | None = None
    attributes: Raw = _NULL


class Profile(msgspec.Struct, gc=False):
    firstName: str | None = None
    lastName: str | None = None
    fields: Raw = _NULL
    allFields: Raw = _NULL
    identifiers: list[Identifier] = []
    commChannels: list[CommChannel] = []
    source: str | None = None
    userId: int | None = None
    accountId: str | None = None
    conflictingProfileList: Raw = _NULL
    autoUpdateTime: str | None = None
    identifiersAll: list[Identifier] = []
    attribution: Raw = _NULL


class Card(msgspec.Struct, gc=False):
    id: int | None = None
    cardId: int | None = None
    cardNumber: str | None = None
    cardExternalId: str | None = None
    customerId: int | None = None
    seriesId: int | None = None
    seriesCode: str | None = None
    seriesName: str | None = None
    type: str | None = None
    issuedDate: str | None = None
    createdDate: str | None = None
    expiryDays: int | None = None
    maxActiveCards: int | None = None
    orgId: int | None = None
    entityId: int | None = None
    transactionNotAllowed: bool | None = None
    statusInfo: Raw = _NULL
    customFields: Raw = _NULL
    extendedFields: Raw = _NULL


class LoyaltyInfo(msgspec.Struct, gc=False):
    loyaltyType: str | None = None
    lifetimePurchases: float | None = None  # msgspec accepts JSON ints for a float field
    score: float | None = None
    attributionV2: Raw = _NULL


class Entity(msgspec.Struct, gc=False):
    id: int
    profiles: list[Profile] = []
    loyaltyInfo: LoyaltyInfo | None = None
    segments: Raw = _NULL
    associatedWith: str | None = None
    extendedFields: Raw = _NULL
    cardDetails: list[Card] = []


class ApiError(msgspec.Struct, gc=False):
    status: bool | None = None
    code: int | None = None
    message: str | None = None


class Item(msgspec.Struct, gc=False):
    entity: Entity
    warnings: list[msgspec.Raw] = []
    errors: list[ApiError] = []
    success: bool | None = None


class Page(msgspec.Struct, gc=False):
    data: list[Item] = []
    warnings: list[msgspec.Raw] = []
    errors: list[ApiError] = []


# -- (e) polars' readers -----------------------------------------------------------------------------


def _without_raw(dtype: Any) -> Any:
    """The wire dtype with the open-ended (raw JSON) fields left out."""
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _without_raw(f.dtype) for f in dtype.fields if not _is_raw(f.name, f.dtype)})
    if isinstance(dtype, pl.List):
        return pl.List(_without_raw(dtype.inner))
    return dtype


_RAW_NAMES = {
    "fields", "allFields", "attributes", "conflictingProfileList", "attribution", "statusInfo",
    "customFields", "extendedFields", "segments", "attributionV2", "warnings",
}  # fmt: skip


def _is_raw(name: str, dtype: Any) -> bool:
    return name in _RAW_NAMES and (dtype == pl.String or dtype == pl.List(pl.String))


def _prototype(dtype: Any) -> Any:
    """A JSON value from which polars infers ``dtype``, numbers as text (see route e3)."""
    if isinstance(dtype, pl.Struct):
        return {f.name: _prototype(f.dtype) for f in dtype.fields}
    if isinstance(dtype, pl.List):
        return [_prototype(dtype.inner)]
    if dtype == pl.Boolean:
        return True
    return None if dtype == pl.Null else ""


METHOD = """\
method: wall time (time.perf_counter) of each route over all pages, best of {repeat}; before each call the
previous result is released and gc.collect() runs; the garbage collector stays on unless a route says
otherwise. The floor parses each page with orjson.loads and drops the result before the next (nothing kept
alive, default GC): what parsing the JSON alone costs. tidy_customers keeps its eight tables (its output)
and checks them against the models' rules (capframe._contract, pandera only for a table that fails them);
it runs polars on {cpus} thread(s), the floor on one."""


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def parse_and_drop(pages: list[bytes]) -> None:
    """The floor: what parsing the JSON alone costs, nothing kept alive."""
    for page in pages:
        orjson.loads(page)


def phases(pages: list[bytes], repeat: int) -> list[tuple[str, float]]:
    """tidy_customers' steps one after the other on one thread, best of ``repeat`` each: where its time goes.

    The same calls tidy_customers makes per read of pages (capframe._customers), and the check of the
    result against the models' rules; the concatenation of reads is not timed apart.
    """
    reads = _customers._reads(pages)
    capframe.tidy_customers(pages)  # the prototype learns these pages' open-ended fields
    prototype = _wire._PROTOTYPES[id(_wire.CUSTOMERS_PAGE)]._state
    arrays = [
        b"[" + prototype.document + b"," + b",".join(chunk) + b"]"
        for pages_read in reads
        for chunk in _chunks(pages_read)
    ]
    read_json, _ = best_of(lambda: [pl.read_json(array, infer_schema_length=1) for array in arrays], repeat)
    read, answers = best_of(lambda: [_customers.read_customers(pages_read) for pages_read in reads], repeat)
    tidy, tidied = best_of(lambda: [_customers.tidy_customer_answers([answer]) for answer in answers], repeat)
    order, _ = best_of(lambda: [in_order(t.tables, t.tables["customers"]["customer_id"]) for t in tidied], repeat)
    tables = capframe.tidy_customers(pages)
    check, _ = best_of(tables.checked, repeat)
    return [
        ("read: the wire read (capframe._wire), per read of pages", read),
        ("tidy: eight tables from the entities", tidy),
        ("order: each read's tables in page order (capframe._answers.in_order)", order),
        ("check: the models' rules (capframe._contract), eight tables", check),
        ("(of the read) pl.read_json alone, with the learnt prototype", read_json),
    ]


def _without_gc(fn: Callable[[], T]) -> T:
    """Python's cyclic GC runs over every dict a dict-building parser makes: show its share."""
    gc.disable()
    try:
        return fn()
    finally:
        gc.enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=20_000, help="number of customers (default 20000)")
    parser.add_argument("--full", action="store_true", help="the issue-sized run: 100000 entities")
    parser.add_argument("--batch", type=int, default=100, help="ids per page (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings (default 3)")
    parser.add_argument("--skip-pandas", action="store_true", help="leave out the (slow) pandas route")
    add_write_flag(parser)
    args = parser.parse_args()
    with report("bench_parse", write=args.write):
        return run(args)


def run(args: argparse.Namespace) -> int:
    n = 100_000 if args.full else args.entities

    pages = customer_pages(n, batch=args.batch)
    size = sum(map(len, pages))
    mb = size / 1e6
    print(
        f"bench_parse ({revision()}): {n:,} entities in {len(pages)} pages of {args.batch} ids, {mb:.1f} MB of JSON; "
        f"best of {args.repeat}; {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; polars {pl.__version__}, pandas {pd.__version__}, "
        f"orjson {orjson.__version__}, msgspec {msgspec.__version__}",
        flush=True,
    )
    schema = _wire.CUSTOMERS_PAGE
    lean_schema = pl.Schema({name: _without_raw(dtype) for name, dtype in schema.items() if not _is_raw(name, dtype)})
    every_key = pl.read_json(b"[" + b",".join(pages) + b"]").schema
    prototype = orjson.dumps({name: _prototype(dtype) for name, dtype in every_key.items()})
    typed = msgspec.json.Decoder(Page)
    untyped = msgspec.json.Decoder()

    def ndjson_exact() -> list[pl.DataFrame]:
        # as capframe._wire calls it (one line per body)
        return [pl.read_ndjson(p.replace(b"\n", b" ").replace(b"\r", b" "), schema=schema) for p in pages]

    routes: list[tuple[str, str, object]] = [
        ("a", "capframe.tidy_customers (tables + validation)", lambda: capframe.tidy_customers(pages)),
        ("b", "pandas: orjson + json_normalize (6 tables, no validation)", lambda: pandas_route(pages)),
        ("c", "the floor: orjson.loads per page, nothing kept", lambda: parse_and_drop(pages)),
        ("c1", "orjson.loads per page, all kept alive", lambda: [orjson.loads(p) for p in pages]),
        (
            "c2",
            "orjson.loads per page, all kept alive, GC off",
            lambda: _without_gc(lambda: [orjson.loads(p) for p in pages]),
        ),
        ("d1", "msgspec decode untyped, all kept alive", lambda: [untyped.decode(p) for p in pages]),
        ("d2", "msgspec decode into Structs, all kept alive", lambda: [typed.decode(p) for p in pages]),
        ("e", "pl.read_ndjson + wire schema (exact reader)", ndjson_exact),
        ("e'", "pl.read_json, schema inferred", lambda: [pl.read_json(p) for p in pages]),
        (
            "e''",
            "pl.read_json + wire schema minus raw maps",
            lambda: [pl.read_json(p, schema=lean_schema) for p in pages],
        ),
        (
            "e3",
            "pl.read_json, schema from a prototype of every key",
            lambda: [pl.read_json(b"[" + prototype + b"," + p + b"]", infer_schema_length=1) for p in pages],
        ),
    ]
    if args.skip_pandas:
        routes = [r for r in routes if r[0] != "b"]

    # A first call's one-off costs (bench_import.py measures them) are not a parse's.
    capframe.tidy_customers(pages[:1])
    seconds: dict[str, float] = {}
    produced: dict[str, str] = {}
    for key, _label, fn in routes:
        started = time.perf_counter()
        best, result = best_of(fn, args.repeat)  # type: ignore[arg-type]
        seconds[key] = best
        if key == "a":
            produced[key] = ", ".join(f"{k} {v.height:,}" for k, v in result.tables().items())
        elif key == "b":
            produced[key] = ", ".join(f"{k} {len(v):,}" for k, v in result.items())
        print(
            f"  ({key}) done: best {best:.3f} s of {args.repeat}, {time.perf_counter() - started:.1f} s in all",
            file=sys.stderr,
            flush=True,
        )
        del result

    tidy, floor = seconds["a"], seconds["c"]
    print()
    print(METHOD.format(repeat=args.repeat, cpus=pl.thread_pool_size()))
    print()
    print("headline:")
    print(
        f"  tidy_customers / floor   = {tidy / floor:6.2f}x   ({tidy:.3f} s against {floor:.3f} s; "
        f"goal <= 1.0x: {verdict(tidy / floor <= 1.0)}, stretch 0.6x: {verdict(tidy / floor <= 0.6)})"
    )
    if "b" in seconds:
        r = seconds["b"] / tidy
        print(
            f"  pandas / tidy_customers  = {r:6.2f}x   ({seconds['b']:.3f} s against {tidy:.3f} s; goal >= 20x: {verdict(r >= 20)})"
        )
    rows = [
        (
            f"({key}) {label}",
            f"{seconds[key]:.3f}",
            f"{mb / seconds[key]:.1f}",
            f"{n / seconds[key]:,.0f}",
            f"{seconds[key] / floor:.2f}",
            f"{seconds[key] / tidy:.2f}",
        )
        for key, label, _ in routes
    ]
    print()
    print("every route (context):")
    print(fmt_table(["route", "seconds", "MB/s", "entities/s", "x floor", "x tidy"], rows))
    print()
    for key in produced:
        print(f"rows produced by ({key}): {produced[key]}")
    print()
    steps = phases(pages, args.repeat)
    print(
        f"where tidy_customers' time goes: its steps one after the other on one thread, best of {args.repeat} each "
        f"(tidy_customers itself reads and tidies pages in even reads of up to about {_customers._READ_BYTES >> 20} MB on {pl.thread_pool_size()} thread(s)):"
    )
    total = sum(step for _, step in steps[:4])
    print(
        fmt_table(
            ["step", "seconds", "x floor", "share"],
            [
                (name, f"{step:.3f}", f"{step / floor:.2f}", f"{step / total:.0%}")
                for name, step in [*steps[:4], ("sum of the four", total), steps[4]]
            ],
        )
    )
    print()
    print("context ratios (not the headline):")
    print(
        f"  tidy / orjson with every page kept alive = {tidy / seconds['c1']:.2f} (GC on), {tidy / seconds['c2']:.2f} (GC off); "
        f"keeping every page alive costs {seconds['c1'] / floor:.2f}x the floor with the GC on, {seconds['c2'] / floor:.2f}x with it off"
    )
    print(
        f"  tidy / msgspec kept alive = {tidy / seconds['d1']:.2f} (untyped), {tidy / seconds['d2']:.2f} (typed Structs)"
    )
    inferred, lean = seconds["e'"], seconds["e''"]
    print(
        f"  tidy / read_json inferred = {tidy / inferred:.2f};  read_ndjson / read_json inferred = {seconds['e'] / inferred:.1f}x;  "
        f"read_ndjson / read_json lean schema = {seconds['e'] / lean:.1f}x"
    )
    print(
        f"  read_json with a prototype of every key (e3) = {seconds['e3'] / floor:.2f}x the floor, "
        f"{seconds['e3'] / inferred:.2f} of read_json inferred"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
