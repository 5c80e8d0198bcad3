"""Lookups at the rate budget: identifier values to customer ids against the sandbox's HTTP server.

    python benchmarks/bench_lookup.py                    # 1,000 mobiles at 1000/min, 0.5 s latency
    python benchmarks/bench_lookup.py --values 100 --rate 6000 --latency 0.1

The issue's case (issue 19): the API has no batch lookup, so N values cost N requests, and at R requests
a minute the floor is N / R minutes (1,000 at 1000/min: 60 s). This looks the values up with
``lookup_customer_ids`` through a real loopback HTTP server (``capframe.sandbox.serve``) whose every
answer takes ``--latency`` seconds, with the client paced at ``--rate``, and prints the wall time
(``time.perf_counter``) and its ratio to the floor: pacing and adaptive concurrency should spend the
budget evenly, keeping the ratio near 1 however slow each answer is.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _pages import fmt_table, revision
from _report import add_write_flag, report

import capframe
from capframe.sandbox import Sandbox, serve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", type=int, default=1_000, help="mobiles looked up (default 1,000)")
    parser.add_argument("--rate", type=int, default=1_000, help="the client's requests_per_minute (default 1000)")
    parser.add_argument("--latency", type=float, default=0.5, help="seconds each answer takes (default 0.5)")
    add_write_flag(parser)
    args = parser.parse_args()
    with report("bench_lookup", write=args.write):
        return run(args)


def run(args: argparse.Namespace) -> int:
    print(
        f"bench_lookup ({revision()}): {sys.executable}; {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sandbox = Sandbox(max(2_000, args.values), latency=args.latency)
    # A customer's mobile is in its WeChat profile too: each value once, so the floor is one request a value.
    mobiles = list(dict.fromkeys(v for _, _, t, v in sandbox.identifiers() if t == "mobile"))[: args.values]
    assert len(mobiles) == args.values, "a larger sandbox holds more mobiles"
    with serve(sandbox) as server:
        client = capframe.Client(
            server.url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, requests_per_minute=args.rate
        )
        started = time.perf_counter()
        lookups = capframe.lookup_customer_ids(mobiles, "INSTORE", identifier="mobile", client=client, progress=False)
        seconds = time.perf_counter() - started
    floor = args.values / args.rate * 60
    sent = sum(r.path == "/v2/customers/lookup" for r in sandbox.request_log)
    found = int(lookups["found"].sum())
    print(f"{args.values:,} mobiles, {found:,} found; {args.rate}/min, {args.latency:g} s latency\n")
    row = (str(args.values), str(sent), f"{floor:.1f}", f"{seconds:.1f}", f"{seconds / floor:.3f}")
    print(fmt_table(("values", "lookups sent", "floor s", "seconds", "ratio to floor"), [row]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
