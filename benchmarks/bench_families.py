"""Families: every parent of the sandbox's organisation in one ``fetch_children_tables`` call.

    python benchmarks/bench_families.py                  # 10,000 customers: 107 parents
    python benchmarks/bench_families.py --customers 2000

The issue's case (issue 21): each parent's family from the embedded sandbox, with the client's default
request pacing (``Client.sandbox()``, as a user runs it) and without it (``requests_per_minute=None``:
capframe's own cost). It prints the parents, the median family, the hierarchy requests sent, the
children fetched and the wall time (``time.perf_counter``, best of ``--repeat``). The request count is
the figure that matters: paced, the time is about requests / pace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _pages import fmt_table, revision
from _report import add_write_flag, report

import capframe


def run_once(customers: int, paced: bool) -> tuple[int, int, float]:
    """-> (hierarchy requests, children, seconds) of one pull of every parent."""
    options = {} if paced else {"requests_per_minute": None}
    client = capframe.Client.sandbox(customers, **options)  # type: ignore[arg-type]
    sandbox = client.sandbox_org
    assert sandbox is not None
    started = time.perf_counter()
    tables = capframe.fetch_children_tables(sandbox.parents(), client=client, progress=False)
    seconds = time.perf_counter() - started
    requests = sum(r.path == "/v2/customers/bulk" for r in sandbox.request_log)
    return requests, tables.children.height, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000, help="the sandbox's size (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    add_write_flag(parser)
    args = parser.parse_args()
    with report("bench_families", write=args.write):
        return run(args)


def run(args: argparse.Namespace) -> int:
    print(
        f"bench_families ({revision()}): {sys.executable}; best of {args.repeat}; {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sandbox = capframe.Client.sandbox(args.customers).sandbox_org
    assert sandbox is not None
    sizes = [len(f.child_ids) for f in sandbox.families() if f.entity_type == "parentCustomer"]
    print(f"{len(sizes)} parents, median family {statistics.median(sizes):g}, largest {max(sizes)}\n")
    rows = []
    for paced in (True, False):
        runs = [run_once(args.customers, paced) for _ in range(args.repeat)]
        requests, children, _ = runs[0]
        rows.append(
            (
                "default pacing" if paced else "no pacing",
                str(requests),
                str(children),
                f"{min(seconds for _, _, seconds in runs):.2f}",
            )
        )
    print(fmt_table(("client", "requests", "children", "seconds"), rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
