"""Fetching through the sandbox: concurrency against a plain loop, and pacing against a rate limit.

    python benchmarks/bench_fetch.py                 # (a) 100 batches at 0.05 s latency; (b) 600 rpm for 20 s
    python benchmarks/bench_fetch.py --full          # (b) runs 90 s: the shortest run whose 429 count means something
    python benchmarks/bench_fetch.py --only b --seconds 120 --rpm 1000

(a) latency-bound. A sandbox answering every request after ``--latency`` seconds; the same batches
    of ``--batch-size`` ids fetched by
      - capframe.fetch_customers(ids, "INSTORE", client=Client.sandbox(latency=..., concurrency=8,
        requests_per_minute=None)): requests, parsing, tidying and validation;
      - a plain sequential loop: httpx.Client(transport=sandbox.sync_transport()) POSTing each batch
        (sync_transport sleeps the same latency per request), keeping the bodies; and that loop
        followed by capframe.tidy_customers(bodies), which yields the same tables as the fetch.
    Both use the same Sandbox (its rendered-JSON cache warmed first), best of ``--repeat``.
(b) rate-bound. ``Client.sandbox(requests_per_minute=R, sandbox_requests_per_minute=R)``, no latency:
    the sandbox answers 429 past R requests in any 60 s window. Enough batches for ``--seconds``
    of requests at R a minute. From ``sandbox.request_log``: requests sent, achieved rate against
    the budget, the most requests in any sliding window of k*60/R seconds (allowed: k), the smallest
    gap between consecutive requests, and 429s. A run of 60 s or less sends at most R requests, which
    no 60 s window can refuse: only a longer run (--full: 90 s) tests for 429s. The usual alternative, measured on a fresh sandbox
    with the same limit: a limiter with a whole minute of capacity (what aiolimiter.AsyncLimiter(R, 60)
    does), the same concurrency, no retries, which sends the batches as a burst.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import math
import os
import sys
import time

import httpx
from _pages import auth_header, best_of, fmt_table, revision  # also puts the checkout on sys.path

import capframe
from capframe.sandbox import Sandbox

BULK = "/v2/bulk/getCustomers"


def _batches(ids: list[int], size: int) -> list[list[int]]:
    return [sorted(ids[i : i + size]) for i in range(0, len(ids), size)]


def plain_loop(sandbox: Sandbox, batches: list[list[int]]) -> list[bytes]:
    """What one writes without capframe: one request after the other."""
    bodies = []
    headers = {"Authorization": auth_header(), "Accept": "application/json"}
    with httpx.Client(base_url=Sandbox.BASE_URL, transport=sandbox.sync_transport(), headers=headers) as http:
        for batch in batches:
            response = http.post(BULK, params={"source": "INSTORE"}, json=batch)
            response.raise_for_status()
            bodies.append(response.content)
    return bodies


def latency_bound(args: argparse.Namespace) -> None:
    n_ids = args.batches * args.batch_size
    client = capframe.Client.sandbox(
        customers=n_ids,
        latency=args.latency,
        concurrency=args.concurrency,
        requests_per_minute=None,
        batch_size=args.batch_size,
    )
    sandbox = client.sandbox_org
    assert sandbox is not None
    ids = sandbox.customer_ids(n_ids)
    batches = _batches(ids, args.batch_size)
    assert sandbox.latency == args.latency  # sync_transport sleeps this too: the same latency per request

    print(
        f"(a) latency-bound: {len(batches)} batches of {args.batch_size} ids, sandbox latency {args.latency} s per request, "
        f"capframe concurrency={args.concurrency}, requests_per_minute=None; best of {args.repeat}",
        flush=True,
    )
    plain_loop(sandbox, batches)  # warm the sandbox's rendered-JSON cache for both routes
    t_loop, bodies = best_of(lambda: plain_loop(sandbox, batches), args.repeat)
    t_tidy, _ = best_of(lambda: capframe.tidy_customers(bodies), args.repeat)
    t_loop_tidy = t_loop + t_tidy
    t_cap, frame = best_of(lambda: capframe.fetch_customers(ids, "INSTORE", client=client, progress=False), args.repeat)
    assert frame.height == len(ids)
    floor = math.ceil(len(batches) / args.concurrency) * args.latency
    rows = [
        (
            "plain loop, httpx.Client + sync_transport (bodies only)",
            f"{t_loop:.2f}",
            f"{len(batches) / t_loop:.1f}",
            f"{t_loop / t_cap:.2f}",
        ),
        (
            "plain loop, then capframe.tidy_customers (same tables)",
            f"{t_loop_tidy:.2f}",
            f"{len(batches) / t_loop_tidy:.1f}",
            f"{t_loop_tidy / t_cap:.2f}",
        ),
        (
            "capframe.fetch_customers (requests + tidy + validation)",
            f"{t_cap:.2f}",
            f"{len(batches) / t_cap:.1f}",
            "1.00",
        ),
    ]
    print(fmt_table(["route", "seconds", "requests/s", "x capframe"], rows))
    print(
        f"latency floors: sequential {len(batches) * args.latency:.2f} s; at concurrency {args.concurrency} {floor:.2f} s. "
        f"tidy_customers alone on these bodies: {t_tidy:.2f} s"
    )
    r = t_loop / t_cap
    print(
        f"plain loop / capframe = {r:.2f}x (target >= 6x: {'meets target' if r >= 6 else 'MISSES target'}); "
        f"with the loop also tidying: {t_loop_tidy / t_cap:.2f}x"
    )
    print()


# -- (b) ---------------------------------------------------------------------------------------------


def _max_in_window(times: list[float], width: float) -> int:
    """The most requests in any half-open window [t, t + width)."""
    best = 0
    for i, t in enumerate(times):
        best = max(best, bisect.bisect_left(times, t + width, lo=i) - i)
    return best


def _report_pacing(
    name: str, sandbox: Sandbox, wall: float, rpm: int, seconds: float, ks: list[int]
) -> tuple[list[str], dict[str, float]]:
    log = [r for r in sandbox.request_log if r.path == BULK]
    times = sorted(r.time for r in log)
    n = len(times)
    n429 = sum(1 for r in log if r.status == 429)
    interval = 60 / rpm
    span = times[-1] - times[0] if n > 1 else float("nan")
    rate_span = (n - 1) / span * 60 if n > 1 else float("nan")
    rate_wall = n / wall * 60
    gaps = [b - a for a, b in itertools.pairwise(times)]
    windows = {k: _max_in_window(times, k * interval) for k in ks}
    figures = {
        "n": n,
        "rate_wall": rate_wall,
        "rate_span": rate_span,
        "min_gap": min(gaps) if gaps else float("nan"),
        "n429": n429,
    }
    cells = [
        name,
        f"{n}",
        f"{wall:.1f}",
        f"{rate_wall:.0f} ({rate_wall / rpm:.0%})",
        f"{rate_span:.0f} ({rate_span / rpm:.0%})",
        " ".join(f"{windows[k]}/{k}" for k in windows),
        f"{figures['min_gap'] * 1000:.1f}",
        f"{n429}",
    ]
    figures["worst_excess"] = max((windows[k] - k for k in windows), default=0)
    return cells, figures


class MinuteBucket:
    """A leaky bucket with a whole minute of capacity: aiolimiter.AsyncLimiter(rpm, 60)'s algorithm."""

    def __init__(self, rpm: int) -> None:
        self.capacity = rpm
        self.rate = rpm / 60.0
        self.level = 0.0
        self.last = time.monotonic()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.level = max(0.0, self.level - (now - self.last) * self.rate)
            self.last = now
            if self.level + 1 <= self.capacity:
                self.level += 1
                return
            await asyncio.sleep((self.level + 1 - self.capacity) / self.rate)


async def _bucket_pull(sandbox: Sandbox, batches: list[list[int]], rpm: int, concurrency: int) -> None:
    bucket = MinuteBucket(rpm)
    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Authorization": auth_header(), "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=Sandbox.BASE_URL, transport=sandbox.transport(), headers=headers) as http:

        async def one(batch: list[int]) -> None:
            async with semaphore:
                await bucket.acquire()
                await http.post(BULK, params={"source": "INSTORE"}, json=batch)

        await asyncio.gather(*(one(b) for b in batches))


def rate_bound(args: argparse.Namespace) -> None:
    rpm, seconds = args.rpm, args.seconds
    n_batches = max(2, round(rpm * seconds / 60))
    n_ids = n_batches * args.batch_size
    interval = 60 / rpm
    ks = [k for k in (1, 2, 5, 10, 30, 60, rpm) if k <= n_batches]
    print(
        f"(b) rate-bound: requests_per_minute={rpm} on a sandbox enforcing {rpm}/min (sliding 60 s window), no latency; "
        f"{n_batches} batches of {args.batch_size} ids (~{seconds:g} s at {interval * 1000:.0f} ms a request), "
        f"concurrency={args.concurrency}",
        flush=True,
    )
    client = capframe.Client.sandbox(
        customers=n_ids,
        sandbox_requests_per_minute=rpm,
        requests_per_minute=rpm,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
    )
    sandbox = client.sandbox_org
    assert sandbox is not None
    ids = sandbox.customer_ids(n_ids)
    started = time.perf_counter()
    frame = capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
    wall = time.perf_counter() - started
    assert frame.height == len(ids)
    rows = []
    cells, cap = _report_pacing("capframe.fetch_customers", sandbox, wall, rpm, seconds, ks)
    rows.append(cells)

    alt = None
    if not args.no_alternative:
        other = Sandbox(customers=n_ids, requests_per_minute=rpm)
        started = time.perf_counter()
        asyncio.run(_bucket_pull(other, _batches(other.customer_ids(n_ids), args.batch_size), rpm, args.concurrency))
        cells, alt = _report_pacing(
            "minute bucket as AsyncLimiter(R, 60), no retry", other, time.perf_counter() - started, rpm, seconds, ks
        )
        rows.append(cells)

    print(
        fmt_table(
            [
                "route",
                "requests",
                "wall s",
                "rate/min over wall (budget)",
                "rate/min over span",
                "max in window of k*60/R s: got/k",
                "min gap ms",
                "429s",
            ],
            rows,
        )
    )
    print(
        f"(window lengths k*60/R for k = {', '.join(map(str, ks))}: {', '.join(f'{k * interval:g} s' for k in ks)}; 60/R = {interval * 1000:.0f} ms)"
    )
    ok_rate = cap["rate_wall"] / rpm >= 0.9
    print(
        f"capframe: achieved {cap['rate_wall'] / rpm:.0%} of the budget over the whole call "
        f"(target >= 90%: {'meets target' if ok_rate else 'MISSES target'}), {cap['rate_span'] / rpm:.0%} between first and last request; "
        f"smallest gap {cap['min_gap'] * 1000:.1f} ms = {cap['min_gap'] / interval:.2f} x 60/R; "
        f"worst window excess {cap['worst_excess']:+d}; 429s {cap['n429']} (target 0: {'meets target' if cap['n429'] == 0 else 'MISSES target'})"
    )
    if alt is not None:
        print(
            f"minute bucket: {alt['rate_wall'] / rpm:.0%} of the budget over the call; "
            f"worst window excess {alt['worst_excess']:+d} requests; 429s {alt['n429']}"
        )
    if n_batches <= rpm:
        print(
            f"note: {n_batches} requests fit in one minute's budget of {rpm}, so the sandbox's 60 s window cannot send a 429 "
            "in this run; the short windows above are the real test of even spacing (--full runs 90 s: the 429 test)."
        )
    print(
        "note: times are the sandbox's request_log (time.monotonic() when each answer was made), not the client's send times."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100, help="(a) number of batches (default 100)")
    parser.add_argument("--batch-size", type=int, default=100, help="ids per batch (default 100)")
    parser.add_argument("--latency", type=float, default=0.05, help="(a) sandbox latency per request, s (default 0.05)")
    parser.add_argument("--concurrency", type=int, default=8, help="capframe concurrency (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="(a) best of N (default 3)")
    parser.add_argument(
        "--rpm", type=int, default=600, help="(b) requests per minute, client and sandbox (default 600)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="(b) length of the paced run (default 20)")
    parser.add_argument("--full", action="store_true", help="(b) runs 90 s, long enough for 429s to be possible")
    parser.add_argument("--no-alternative", action="store_true", help="(b) skip the minute-bucket comparison")
    parser.add_argument("--only", choices=("a", "b"), help="run one part only")
    args = parser.parse_args()
    if args.full:
        args.seconds = max(args.seconds, 90.0)
    print(
        f"bench_fetch ({revision()}): {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, httpx {httpx.__version__}"
    )
    print()
    if args.only in (None, "a"):
        latency_bound(args)
    if args.only in (None, "b"):
        rate_bound(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
