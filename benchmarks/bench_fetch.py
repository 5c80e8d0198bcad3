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
(c) latency sweep. For each latency in ``--latencies`` (0.05, 0.5, 1, 2, 3 s) a sandbox server in its own
    process (``capframe sandbox --port 0 --latency L --rpm R``, enforcing R with 429s), and
    ``--sweep-batches`` (100) batches fetched at ``requests_per_minute=R`` (1,000) with the default
    ``concurrency="auto"``, then with a fixed ``concurrency=8``. The floor is what the budget allows:
    the last request cannot leave before (n - 1) x 60/R s, and is answered L s later. Target: auto at
    most 1.1x the floor at every latency. The concurrency trajectory comes from capframe's DEBUG line
    logged at each send ("concurrency N (k in flight, p90 ..., pace .../min)").
(d) a degrading server: ``capframe sandbox --latency 1 --capacity 8 --rpm R``: past 8 requests in
    flight latency grows in proportion (the server answers no more than 8 a second, half the budget)
    and past 16 it answers 503. ``--degrading-batches`` (200) batches with concurrency="auto", and
    with a fixed 8 (the capacity, which only an oracle knows). Target: auto settles near 8 in flight,
    503s under 1% of requests, time near the server's own floor (n / 8 a second).
    (c) and (d) take about three minutes: ``--only cd``.
(e) no stall. ``capframe sandbox --port 0 --customers N`` (N = ``--stall-ids``, 3,000) in its own process,
    no latency, every answer already rendered once (warm); capframe.fetch_customers of the N ids with
    ``requests_per_minute=None`` (concurrency "auto") against the same requests sent by the usual
    alternative at its best: a plain sequential httpx.Client loop, and an httpx.AsyncClient gather at
    the concurrency capframe starts with (8), each followed by capframe.tidy_customers on the bodies
    (the same tables). Best of ``--repeat``; the baseline is the faster of the two. Target: capframe
    within 1.5x of it (a stall, such as a dropped SYN waiting out a 1 s retry, shows as a second).
    ``--write`` puts (a)+(b)+(e) and (c)+(d) into their sections of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from _pages import auth_header, best_of, child_env, fmt_table, revision  # also puts the checkout on sys.path
from _report import add_write_flag, report

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
    print()


# -- (c) and (d) -------------------------------------------------------------------------------------


@contextlib.contextmanager
def sandbox_process(customers: int, *options: str) -> Iterator[str]:
    """``capframe sandbox`` in its own process, as a real API is elsewhere: its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "capframe", "sandbox", "--port", "0", "--customers", str(customers), *options],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().rsplit(" at ", 1)[-1].strip()
    finally:
        server.kill()
        server.wait()


_SENT = re.compile(r" sent; concurrency (\d+) \((\d+) in flight")
_ANSWER = re.compile(r" -> (\d+),")


@dataclass(eq=False)  # handlers are kept in weak sets: hashed by identity
class Trace(logging.Handler):
    """capframe's DEBUG lines of one pull: (time, limit, in flight) at each send, and each status."""

    sends: list[tuple[float, int, int]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    last_answer: float = 0.0

    def __post_init__(self) -> None:
        super().__init__(logging.DEBUG)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if sent := _SENT.search(message):
            self.sends.append((record.created, int(sent[1]), int(sent[2])))
        elif answer := _ANSWER.search(message):
            self.statuses.append(int(answer[1]))
            self.last_answer = record.created

    def requests_seconds(self) -> float:
        """From the first request sent to the last answer: the pull without its setup and last tidying."""
        return self.last_answer - self.sends[0][0]

    def trajectory(self, step: float) -> str:
        """The limit every ``step`` seconds from the first send."""
        if not self.sends:
            return "-"
        start, end = self.sends[0][0], self.sends[-1][0]
        points, i = [], 0
        for k in range(int((end - start) / step) + 1):
            while i + 1 < len(self.sends) and self.sends[i + 1][0] <= start + k * step:
                i += 1
            points.append(str(self.sends[i][1]))
        return " ".join(points)


def timed_pull(url: str, ids: list[int], rpm: int, concurrency: int | str) -> tuple[float, Trace]:
    client = capframe.Client(
        url,
        username=Sandbox.USERNAME,
        password=Sandbox.PASSWORD,
        requests_per_minute=rpm,
        concurrency=concurrency,  # type: ignore[arg-type]
        max_retries=8,
    )
    trace = Trace()
    logger = logging.getLogger("capframe")
    logger.addHandler(trace)
    level, logger.level = logger.level, logging.DEBUG
    try:
        started = time.perf_counter()
        frame = capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
        seconds = time.perf_counter() - started
    finally:
        logger.removeHandler(trace)
        logger.setLevel(level)
    assert frame.height == len(ids)
    return seconds, trace


def latency_sweep(args: argparse.Namespace) -> None:
    rpm, n = args.sweep_rpm, args.sweep_batches
    ids = Sandbox(customers=n * args.batch_size).customer_ids(n * args.batch_size)  # the server's, same seed
    print(
        f"(c) latency sweep: {n} batches of {args.batch_size} ids at requests_per_minute={rpm}, each latency against "
        f"its own sandbox server process (enforcing {rpm}/min with 429s); concurrency='auto' (max 64) vs a fixed 8. "
        f"floor = (n - 1) x 60/R + latency (the budget's; capframe paces 1% under it)."
    )
    rows, trajectories, worst = [], [], 0.0
    for latency in args.latencies:
        with sandbox_process(n * args.batch_size, "--latency", str(latency), "--rpm", str(rpm)) as url:
            if not rows:
                timed_pull(url, ids[: args.batch_size], rpm, "auto")  # warm up imports and the first validation
            t_auto, auto = timed_pull(url, ids, rpm, "auto")
            t_fixed, fixed = timed_pull(url, ids, rpm, 8)
        floor = (n - 1) * 60 / rpm + latency
        worst = max(worst, t_auto / floor)
        statuses = auto.statuses + fixed.statuses
        rows.append(
            (
                f"{latency:g}",
                f"{floor:.2f}",
                f"{t_auto:.2f}",
                f"{t_auto / floor:.2f}",
                f"{auto.requests_seconds() / floor:.2f}",
                f"{max(limit for _, limit, _ in auto.sends)}",
                f"{t_fixed:.2f}",
                f"{t_fixed / floor:.2f}",
                f"{t_fixed / t_auto:.2f}",
                f"{sum(s == 429 for s in statuses)}",
            )
        )
        trajectories.append(f"  {latency:g} s: {auto.trajectory(0.5)}")
        print(f"  latency {latency:g} s done", file=sys.stderr, flush=True)
    print(
        fmt_table(
            [
                "latency s",
                "floor s",
                "auto s",
                "auto / floor",
                "requests only / floor",
                "auto peak limit",
                "fixed 8 s",
                "fixed 8 / floor",
                "fixed 8 / auto",
                "429s",
            ],
            rows,
        )
    )
    print("concurrency='auto': the limit every 0.5 s from the first request:")
    print("\n".join(trajectories))
    print(f"worst auto / floor {worst:.2f} (target <= 1.10: {'meets target' if worst <= 1.1 else 'MISSES target'})")
    print(
        "auto s and fixed 8 s are the whole fetch_customers call: setup, requests, and the tidying and validation "
        "of the last answers; 'requests only' is from the first request sent to the last answer."
    )
    print()


def degrading(args: argparse.Namespace) -> None:
    rpm, n, capacity, latency = args.sweep_rpm, args.degrading_batches, args.capacity, args.degrading_latency
    ids = Sandbox(customers=n * args.batch_size).customer_ids(n * args.batch_size)
    served = capacity / latency  # the most the server answers a second, however much it is asked
    print(
        f"(d) degrading server: latency {latency:g} s growing in proportion past {capacity} requests in flight, 503 past "
        f"{2 * capacity}: it answers at most {served:g} a second ({served * 60:.0f}/min) against a budget of {rpm}/min. "
        f"{n} batches, concurrency='auto' vs a fixed {capacity} (the capacity, which only an oracle knows)."
    )
    rows, trajectories = [], []
    options = ("--latency", str(latency), "--capacity", str(capacity), "--rpm", str(rpm))
    for concurrency in ("auto", capacity):
        with sandbox_process(n * args.batch_size, *options) as url:
            timed_pull(url, ids[: args.batch_size], rpm, 1)  # warm up
            seconds, trace = timed_pull(url, ids, rpm, concurrency)
        second_half = [(limit, in_flight) for t, limit, in_flight in trace.sends[len(trace.sends) // 2 :]]
        overloaded = sum(s == 503 for s in trace.statuses)
        rows.append(
            (
                f"{concurrency}",
                f"{seconds:.1f}",
                f"{seconds / (n / served):.2f}",
                f"{len(trace.statuses)}",
                f"{overloaded} ({overloaded / len(trace.statuses):.2%})",
                f"{statistics.mean(limit for limit, _ in second_half):.1f}",
                f"{statistics.mean(in_flight for _, in_flight in second_half):.1f}",
            )
        )
        trajectories.append(f"  {concurrency}: {trace.trajectory(1.0)}")
        print(f"  concurrency {concurrency} done", file=sys.stderr, flush=True)
    print(
        fmt_table(
            [
                "concurrency",
                "seconds",
                "/ server floor",
                "requests",
                "503s",
                "mean limit, 2nd half",
                "mean in flight at send, 2nd half",
            ],
            rows,
        )
    )
    print(f"server floor: {n} requests at {served:g} a second = {n / served:.1f} s. The limit every second:")
    print("\n".join(trajectories))
    print()


# -- (e) ---------------------------------------------------------------------------------------------


def _sequential_loop(url: str, batches: list[list[int]]) -> list[bytes]:
    headers = {"Authorization": auth_header(), "Accept": "application/json"}
    with httpx.Client(base_url=url, headers=headers) as http:
        return [_ok(http.post(BULK, params={"source": "INSTORE"}, json=batch)) for batch in batches]


async def _concurrent_loop(url: str, batches: list[list[int]], concurrency: int) -> list[bytes]:
    headers = {"Authorization": auth_header(), "Accept": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:

        async def one(batch: list[int]) -> bytes:
            async with semaphore:
                return _ok(await http.post(BULK, params={"source": "INSTORE"}, json=batch))

        return list(await asyncio.gather(*(one(b) for b in batches)))


def _ok(response: httpx.Response) -> bytes:
    response.raise_for_status()
    return response.content


def no_stall(args: argparse.Namespace) -> None:
    n = args.stall_ids
    ids = Sandbox(customers=n).customer_ids(n)  # the server's, same seed
    batches = _batches(ids, args.batch_size)
    concurrency = 8  # where concurrency="auto" starts unpaced
    print(
        f"(e) no stall: a warm pull of {n:,} ids ({len(batches)} requests of {args.batch_size}) from `capframe sandbox` "
        f"in its own process (loopback, no latency), capframe with requests_per_minute=None and concurrency='auto', "
        f"against the same requests by a plain loop followed by capframe.tidy_customers on its bodies; best of {args.repeat}",
        flush=True,
    )
    with sandbox_process(n) as url:
        client = capframe.Client(url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, requests_per_minute=None)

        def pull() -> int:
            return capframe.fetch_customers(ids, "INSTORE", client=client, progress=False).height

        def sequential() -> int:
            return capframe.tidy_customers(_sequential_loop(url, batches)).customers.height

        def concurrent() -> int:
            return capframe.tidy_customers(asyncio.run(_concurrent_loop(url, batches, concurrency))).customers.height

        pull()  # warm: the server renders each answer once, the client imports what a pull needs
        sequential()
        t_seq_requests, bodies = best_of(lambda: _sequential_loop(url, batches), args.repeat)
        t_tidy, _ = best_of(lambda: capframe.tidy_customers(bodies), args.repeat)
        t_seq, rows_seq = best_of(sequential, args.repeat)
        t_conc, rows_conc = best_of(concurrent, args.repeat)
        t_cap, rows_cap = best_of(pull, args.repeat)
    assert rows_seq == rows_conc == rows_cap == n
    baseline = min(t_seq, t_conc)
    rows = [
        ("plain sequential loop, httpx.Client (requests only)", f"{t_seq_requests:.3f}", "-"),
        ("capframe.tidy_customers alone on those bodies", f"{t_tidy:.3f}", "-"),
        ("plain sequential loop, then tidy_customers", f"{t_seq:.3f}", f"{t_cap / t_seq:.2f}"),
        (
            f"httpx.AsyncClient at concurrency {concurrency}, then tidy_customers",
            f"{t_conc:.3f}",
            f"{t_cap / t_conc:.2f}",
        ),
        (
            "capframe.fetch_customers (requests + tidy + validation)",
            f"{t_cap:.3f}",
            "1.00" if baseline == t_cap else "-",
        ),
    ]
    print(fmt_table(["route", "seconds", "capframe / route"], rows))
    r = t_cap / baseline
    print(
        f"capframe / the faster plain loop + tidy = {r:.2f}x (target <= 1.5x: {'meets target' if r <= 1.5 else 'MISSES target'})"
    )
    print()


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
    parser.add_argument("--only", default="abcde", help="the parts to run, e.g. 'cd' (default abcde)")
    parser.add_argument("--stall-ids", type=int, default=3000, help="(e) ids of the warm pull (default 3000)")
    parser.add_argument(
        "--latencies",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[0.05, 0.5, 1.0, 2.0, 3.0],
        help="(c) latencies, s, comma-separated (default 0.05,0.5,1,2,3)",
    )
    parser.add_argument("--sweep-batches", type=int, default=100, help="(c) batches per run (default 100)")
    parser.add_argument("--sweep-rpm", type=int, default=1000, help="(c, d) requests per minute (default 1000)")
    parser.add_argument("--degrading-batches", type=int, default=200, help="(d) batches (default 200)")
    parser.add_argument("--capacity", type=int, default=8, help="(d) the server's capacity C (default 8)")
    parser.add_argument("--degrading-latency", type=float, default=1.0, help="(d) its latency up to C, s (default 1)")
    add_write_flag(parser)
    args = parser.parse_args()
    if args.full:
        args.seconds = max(args.seconds, 90.0)
    heading = (
        f"bench_fetch ({revision()}): {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, "
        f"httpx {httpx.__version__}\n"
    )
    if any(part in args.only for part in "abe"):
        with report("bench_fetch", write=args.write):
            print(heading)
            print(
                "The machine is shared (2 cores, other work running): the load average above says how quiet it was.\n"
            )
            if "a" in args.only:
                latency_bound(args)
            if "b" in args.only:
                rate_bound(args)
            if "e" in args.only:
                no_stall(args)
    if "c" in args.only or "d" in args.only:
        with report("bench_fetch_latency", write=args.write):
            print(heading)
            print(
                "The machine is shared (2 cores, other work running): the load average above says how quiet it was.\n"
            )
            if "c" in args.only:
                latency_sweep(args)
            if "d" in args.only:
                degrading(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
