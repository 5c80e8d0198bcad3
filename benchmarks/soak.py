"""Soak: pull many ids from a sandbox where a quarter of the requests fail, in every way the sandbox knows.

    python benchmarks/soak.py                 # 100k ids, 25% of requests faulty
    python benchmarks/soak.py --ids 20000     # a quicker run
    python benchmarks/soak.py --rate 0.5      # harsher

The faulty pull runs against ``Client.sandbox(customers=..., faults=Faults(rates=...))`` with every
fault kind except ``token-expiry`` (Basic auth has no token; the renewal is tested in
tests/test_faults.py), each kind at an equal share of ``--rate``. A fault-free pull of the same ids
from the same organisation (same seed) is the reference. The script prints ids asked, rows returned,
ids lost (asked but absent), ids failed by capframe (a row with success=False that the reference has
as a success), duplicate rows, wrong rows (rows of any table that differ from the reference, as a
multiset: whole tables compared), whether every table is equal to the reference row for row, requests
made, faults injected by kind (from the sandbox's request_log) and elapsed seconds. The faulty pull
writes a snapshot (``cache_dir``, a temporary folder); the same ids, reversed, are then pulled again
through it with the faulty client: that rerun must send no request and give the reference's rows.

Exits 1 if anything was lost, duplicated, failed or wrong; 0 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: soak the working tree
    sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
from _report import add_write_flag, report  # noqa: E402

import capframe  # noqa: E402
from capframe.sandbox import FAULT_KINDS, Faults  # noqa: E402

KINDS = tuple(kind for kind in FAULT_KINDS if kind != "token-expiry")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=100_000, help="ids to pull (default 100000)")
    parser.add_argument("--rate", type=float, default=0.25, help="share of requests that fail (default 0.25)")
    parser.add_argument("--customers", type=int, default=None, help="size of the sandbox org (default 1.2 x ids)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the org and of the faults")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--concurrency", type=lambda v: v if v == "auto" else int(v), default=8, help="an int, or auto (default 8)"
    )
    parser.add_argument("--max-retries", type=int, default=10)
    add_write_flag(parser)
    return parser.parse_args()


def client(args: argparse.Namespace, faults: Faults | None) -> capframe.Client:
    return capframe.Client.sandbox(
        customers=args.customers or max(120_000, int(args.ids * 1.2)),
        seed=args.seed,
        faults=faults,
        requests_per_minute=None,
        concurrency=args.concurrency,
        retry_backoff=0.001,
        max_retry_after=0.01,
        max_retries=args.max_retries,
    )


def pull(
    c: capframe.Client, ids: list[int], batch_size: int, cache_dir: str | None = None
) -> tuple[capframe.CustomerTables, float, str, list[Any]]:
    """-> (tables, seconds, what went wrong if anything, capframe warnings)."""
    start = time.perf_counter()
    problem = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tables = capframe.fetch_customer_tables(
                ids, "INSTORE", client=c, batch_size=batch_size, progress=False, cache_dir=cache_dir
            )
        except capframe.FetchError as exc:  # some batches ran out of retries: the rest is in .partial
            if not isinstance(exc.partial, capframe.CustomerTables):
                raise
            tables, problem = exc.partial, f"FetchError: {exc}"
    seen = [w for w in caught if issubclass(w.category, capframe.CapframeWarning)]
    return tables, time.perf_counter() - start, problem, seen


def row_difference(got: pl.DataFrame, want: pl.DataFrame) -> int:
    """Rows in one table and not the other, counted with multiplicity (row order ignored)."""
    if got.equals(want):
        return 0
    if got.schema != want.schema:
        return max(got.height, want.height)
    columns = got.columns
    counts = (
        pl.concat([got.with_columns(_side=pl.lit(1)), want.with_columns(_side=pl.lit(-1))])
        .group_by(columns, maintain_order=True)
        .agg(pl.col("_side").sum())
    )
    return int(counts["_side"].abs().sum())


def main() -> int:
    args = parse_args()
    with report("soak", write=args.write):
        return run(args)


def run(args: argparse.Namespace) -> int:
    each = args.rate / len(KINDS)
    faulty = client(args, Faults(rates=dict.fromkeys(KINDS, each), seed=args.seed))
    reference = client(args, None)
    assert faulty.sandbox_org is not None
    assert reference.sandbox_org is not None
    ids = faulty.sandbox_org.customer_ids(args.ids)

    cpus = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"capframe {capframe.__version__} soak: {len(ids):,} ids, {args.rate:.0%} of requests faulty "
          f"({len(KINDS)} kinds, {each:.2%} each), batches of {args.batch_size}, concurrency {args.concurrency}, "
          f"max_retries {args.max_retries}; {cpus} CPUs, load {load}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="capframe-soak-") as snapshot:
        got, seconds, problem, caught = pull(faulty, ids, args.batch_size, snapshot)
        sent = len(faulty.sandbox_org.request_log)
        rerun, _, rerun_problem, _ = pull(faulty, ids[::-1], args.batch_size, snapshot)
        rerun_sent = len(faulty.sandbox_org.request_log) - sent
    want, ref_seconds, ref_problem, _ = pull(reference, ids, args.batch_size)
    if ref_problem:
        print(f"the fault-free reference pull failed: {ref_problem}")
        return 2
    rerun_wrong = {name: row_difference(getattr(rerun, name), getattr(want, name)) for name in want.MODELS}

    customers, ref_customers = got.customers, want.customers
    present = set(customers["customer_id"])
    lost = [i for i in ids if i not in present]
    duplicates = customers.height - customers["customer_id"].n_unique()
    ref_ok = set(ref_customers.filter(pl.col("success"))["customer_id"])
    failed_by_capframe = customers.filter(~pl.col("success") & pl.col("customer_id").is_in(list(ref_ok)))
    wrong = {name: row_difference(getattr(got, name), getattr(want, name)) for name in want.MODELS}
    equal = {name: getattr(got, name).equals(getattr(want, name)) for name in want.MODELS}
    log = faulty.sandbox_org.request_log[:sent]
    injected = collections.Counter(r.fault for r in log if r.fault)
    statuses = collections.Counter(r.status for r in log)

    print()
    print(f"ids asked                  {len(ids):>10,}")
    print(f"rows returned (customers)  {customers.height:>10,}")
    print(f"ids lost (asked, absent)   {len(lost):>10,}")
    print(f"ids failed by capframe     {failed_by_capframe.height:>10,}   (success=False where the reference has data)")
    print(f"duplicate rows             {duplicates:>10,}")
    print(
        f"wrong rows (all tables)    {sum(wrong.values()):>10,}   ({', '.join(f'{k} {v}' for k, v in wrong.items())})"
    )
    print(f"tables equal to reference  {sum(equal.values()):>10} of {len(equal)}   (row for row, order included)")
    print(f"rows in all tables         {sum(getattr(got, n).height for n in want.MODELS):>10,}")
    codes = collections.Counter(ref_customers.filter(~pl.col("success"))["error_code"].to_list())
    print(f"failed by the API, both    {ref_customers.height - len(ref_ok):>10,}   (codes {dict(codes.most_common())})")
    print(f"requests made              {len(log):>10,}   (reference: {len(reference.sandbox_org.request_log):,})")
    print(
        f"faults injected            {sum(injected.values()):>10,}   ({sum(injected.values()) / len(log):.1%} of requests)"
    )
    for kind in KINDS:
        print(f"  {kind:<24} {injected.get(kind, 0):>10,}")
    print(f"statuses                   {dict(sorted(statuses.items()))}   (0 = reset or timeout, no answer)")
    print(f"warnings                   {len(caught)}: {'; '.join(str(w.message)[:90] for w in caught) or '-'}")
    print(
        f"rerun from the snapshot    {rerun_sent:>10,} requests, {sum(rerun_wrong.values()):,} wrong rows   "
        "(the ids reversed, the faulty client; the faulty pull wrote the snapshot)"
    )
    print(f"elapsed, faulty pull       {seconds:>10.1f} s   ({len(ids) / seconds:,.0f} ids/s, into a snapshot)")
    print(f"elapsed, reference pull    {ref_seconds:>10.1f} s   ({len(ids) / ref_seconds:,.0f} ids/s)")
    if problem:
        print(problem)
    if failed_by_capframe.height:
        print(failed_by_capframe.select("customer_id", "error_message").head(5))

    if rerun_problem:
        print(f"the rerun from the snapshot: {rerun_problem}")
    bad = lost or duplicates or failed_by_capframe.height or any(wrong.values()) or problem
    bad = bad or rerun_sent or any(rerun_wrong.values()) or rerun_problem
    print("\nRESULT:", "FAIL" if bad else "OK: 0 ids lost, 0 duplicated, 0 wrong rows; the rerun sent nothing")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
