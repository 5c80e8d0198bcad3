"""What a snapshot (cache_dir) costs and saves: requests for one added id, index lookup time, peak memory.

    python benchmarks/bench_snapshot.py              # N = 10k
    python benchmarks/bench_snapshot.py --full       # N = 10k, 100k, 1M (the 1M pull takes minutes)
    python benchmarks/bench_snapshot.py --sizes 20000

For each N, in a fresh child process against the sandbox served from a process of its own (as
bench_memory does, so the figures are the client's memory only):

  pull      fetch_customers(ids[1:], "INSTORE", cache_dir=<temp dir>): its peak RSS (VmHWM), the
            figure the 1 GB budget at 1M ids is about
  added     fetch_customers(ids) with the same cache_dir, one id added in front: requests sent
            (a snapshot keyed by whole requests would send every request again: N / 100)
  lookup    which of the N ids the snapshot holds: the index read and joined with the ids (best of
            3), and the same with every file's checksum verified (what a fetch does before asking)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from _pages import ROOT, child_env, fmt_table, revision
from _report import add_write_flag, report
from bench_memory import sandbox_server

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = r"""
import json, sys, tempfile, time
sys.path[:0] = [{root!r}, {here!r}]
import httpx, polars as pl
from _pages import peak_rss_mb
import capframe
from capframe._snapshot import Snapshot, Store
from capframe.sandbox import Sandbox

url, ids_file = sys.argv[1], sys.argv[2]
with open(ids_file) as handle:
    ids = [int(line) for line in handle]


class Counting(httpx.AsyncBaseTransport):
    def __init__(self):
        self.inner, self.sent = httpx.AsyncHTTPTransport(), 0

    async def handle_async_request(self, request):
        self.sent += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


counting = Counting()
client = capframe.Client(url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, requests_per_minute=None,
                         concurrency=8, transport=counting)
out = {{"n": len(ids)}}
with tempfile.TemporaryDirectory(prefix="capframe-bench-") as tmp:
    started = time.perf_counter()
    capframe.fetch_customers(ids[1:], "INSTORE", client=client, cache_dir=tmp, progress=False)
    out["pull_seconds"] = time.perf_counter() - started
    out["pull_requests"] = counting.sent
    out["peak_mb"] = peak_rss_mb()
    counting.sent = 0
    capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=tmp, progress=False)
    out["added_requests"] = counting.sent
    store = Store(Snapshot(tmp), "customers")
    wanted = pl.Series(ids, dtype=pl.Int64)
    lookups = []
    for _ in range(3):
        started = time.perf_counter()
        with store.snapshot.lock(exclusive=False):
            index, _ = store.view()
        held = index.join(pl.DataFrame({{"unit": wanted}}), on="unit", how="semi").height
        lookups.append(time.perf_counter() - started)
    out["lookup_seconds"], out["held"] = min(lookups), held
    started = time.perf_counter()
    rows, _ = store.held(wanted, url, "INSTORE", None)
    out["verified_seconds"], out["verified"] = time.perf_counter() - started, rows.height
print(json.dumps(out))
"""


def run_case(n: int) -> dict[str, Any]:
    code = _CHILD.format(root=str(ROOT), here=HERE)
    with sandbox_server(n) as (url, ids):
        done = subprocess.run(
            [sys.executable, "-c", code, url, ids], capture_output=True, text=True, env=child_env(), check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"the case N={n} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of ids (default 10000)")
    parser.add_argument("--full", action="store_true", help="N = 10k, 100k, 1M")
    add_write_flag(parser)
    args = parser.parse_args()
    with report("bench_snapshot", write=args.write):
        return run(args)


def run(args: argparse.Namespace) -> int:
    sizes = sorted(args.sizes or ([10_000, 100_000, 1_000_000] if args.full else [10_000]))
    print(
        f"bench_snapshot ({revision()}): N = {', '.join(f'{n:,}' for n in sizes)}; each case in a fresh process; "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    for n in sizes:
        started = time.perf_counter()
        r = run_case(n)
        print(f"  N={n:,}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        assert r["held"] == r["verified"] == n, r
        rows.append(
            (
                f"{n:,}",
                f"{r['pull_requests']:,}",
                f"{r['pull_seconds']:.1f}",
                f"{r['peak_mb']:.0f}",
                f"{r['added_requests']}",
                f"{-(-n // 100):,}",
                f"{r['lookup_seconds'] * 1000:.0f}",
                f"{r['verified_seconds'] * 1000:.0f}",
            )
        )
    print()
    print(
        fmt_table(
            [
                "N ids",
                "pull requests",
                "pull s",
                "pull peak MB",
                "requests, 1 id added in front",
                "same, keyed by request",
                "lookup of N ids ms",
                "lookup + checksums ms",
            ],
            rows,
        )
    )
    print(
        "\nmethod: 'requests, 1 id added in front' counts what the second pull sent (the first pull asked for "
        "ids[1:]); 'keyed by request' is what capframe 0.1's snapshot, keyed by each request's exact ids, sent "
        "(every request shifts); lookup is the index read and joined with the N ids, best of 3; peak is VmHWM "
        "of the pulling process after the first pull, the sandbox serving from another process."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
