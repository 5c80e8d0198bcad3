"""Peak memory of a large pull: capframe with a cache_dir against collecting the bodies and normalising with pandas.

    python benchmarks/bench_memory.py            # N = 10k, 100k
    python benchmarks/bench_memory.py --full     # capframe at 10k, 100k, 1M; sink at 100k, 1M, 2M (takes many minutes)
    python benchmarks/bench_memory.py --sizes 10000 50000
    python benchmarks/bench_memory.py --sizes 1000000 --sink-sizes 100000 1000000 2000000   # issue 20's targets

The sandbox serves the API from a process of its own (``capframe sandbox --port 0``), as a real
cluster would from elsewhere: the figures are the client's memory only. Each case runs in a fresh
child process; its peak RSS is the child's own (os.wait4 rusage, and the child's VmHWM). Cases:

  floor     python + import capframe + the ids in a list: no request
  capframe  fetch_customers(ids, "INSTORE", client=Client(<sandbox URL>, requests_per_minute=None),
            cache_dir=<temp dir>, progress=False)
  sink      sink_customers(ids, "INSTORE", <temp dir>, client=...): the same pull, the result left in
            the snapshot as a LazyFrame (not collected), the ids a polars Series read from the ids file
            (the other cases hold them as a list of ints). At --sink-sizes (default 100k; --full 100k,
            1M, 2M). Issue 20's targets: sink 2M/100k peak at most 1.2x, every sink peak under 400 MB,
            the in-memory (capframe) pull at 1M under 800 MB.
  pandas    the usual alternative: a plain httpx.Client loop over the same batches of 100, all bodies
            kept, then orjson + pd.json_normalize into the same six tables as bench_parse's pandas
            route. Up to --alt-max ids (default 10k, 100k with --full).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _pages import ROOT, child_env, fmt_table, revision
from _report import add_write_flag, report

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = r"""
import json, os, sys, tempfile, time
sys.path[:0] = [{root!r}, {here!r}]
from _pages import peak_rss_mb, auth_header
import capframe
from capframe.sandbox import Sandbox
case, n, url, ids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if case == "sink":  # a column of ids, as a user with millions has them: one buffer, not an int object each
    import polars as pl
    ids = pl.read_csv(ids_file, has_header=False, new_columns=["id"])["id"]
else:
    with open(ids_file) as handle:
        ids = [int(line) for line in handle]
before = peak_rss_mb()
out = {{"case": case, "n": n, "before_mb": before}}
started = time.perf_counter()
if case == "capframe":
    client = capframe.Client(url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, requests_per_minute=None)
    with tempfile.TemporaryDirectory(prefix="capframe-bench-") as tmp:
        frame = capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=tmp, progress=False)
        out["seconds"] = time.perf_counter() - started
        out["rows"] = frame.height
        out["cache_mb"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs) / 1e6
elif case == "sink":
    client = capframe.Client(url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, requests_per_minute=None)
    with tempfile.TemporaryDirectory(prefix="capframe-bench-") as tmp:
        lazy = capframe.sink_customers(ids, "INSTORE", tmp, client=client, progress=False)
        out["seconds"] = time.perf_counter() - started
        out["peak_mb"] = peak_rss_mb()  # before anything is collected: the pull's own peak
        out["rows"] = 0
        out["cache_mb"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs) / 1e6
elif case == "pandas":
    import httpx
    from bench_parse import pandas_route
    bodies = []
    with httpx.Client(base_url=url, headers={{"Authorization": auth_header()}}, timeout=60) as http:
        for i in range(0, len(ids), 100):
            r = http.post("/v2/bulk/getCustomers", params={{"source": "INSTORE"}}, json=sorted(ids[i:i + 100]))
            r.raise_for_status()
            bodies.append(r.content)
    tables = pandas_route(bodies)
    out["seconds"] = time.perf_counter() - started
    out["rows"] = len(tables["customers"])
    out["bodies_mb"] = sum(map(len, bodies)) / 1e6
else:
    out["seconds"] = 0.0
    out["rows"] = 0
out.setdefault("peak_mb", peak_rss_mb())
print(json.dumps(out))
"""


@contextmanager
def sandbox_server(n: int) -> Iterator[tuple[str, str]]:
    """A sandbox of ``n`` customers in its own process: (its URL, a file of its ids)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "capframe", "sandbox", "--port", "0", "--customers", str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" at ", 1)[-1].strip()
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as ids:
            subprocess.run(
                [sys.executable, "-m", "capframe", "sandbox", "--customers", str(n), "--print-ids", str(n)],
                stdout=ids,
                check=True,
                env=child_env(),
            )
            ids.flush()
            yield url, ids.name
    finally:
        server.kill()
        server.wait()


def run_case(case: str, n: int) -> dict[str, Any]:
    code = _CHILD.format(root=str(ROOT), here=HERE)
    with sandbox_server(n) as (url, ids), tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, case, str(n), url, ids], stdout=out, env=child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"the {case} case for N={n} failed (exit {proc.returncode}):\n{text}")
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    result["rusage_peak_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    result["wall"] = wall
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of ids (default 10000 100000)")
    parser.add_argument("--full", action="store_true", help="N = 10k, 100k, 1M")
    parser.add_argument("--alt-max", type=int, help="largest N for the pandas case (default 10000; 100000 with --full)")
    parser.add_argument(
        "--sink-sizes",
        type=int,
        nargs="*",
        help="numbers of ids for the sink case (default 100000; --full 100k, 1M, 2M)",
    )
    add_write_flag(parser)
    args = parser.parse_args()
    with report("bench_memory", write=args.write):
        return run(args)


def run(args: argparse.Namespace) -> int:
    sizes = args.sizes or ([10_000, 100_000, 1_000_000] if args.full else [10_000, 100_000])
    sizes = sorted(sizes)
    if args.alt_max is None:
        args.alt_max = 100_000 if args.full else 10_000
    sink_sizes = sorted(
        args.sink_sizes if args.sink_sizes is not None else [100_000, 1_000_000, 2_000_000] if args.full else [100_000]
    )
    print(
        f"bench_memory ({revision()}): N = {', '.join(f'{n:,}' for n in sizes)}; sink N = "
        f"{', '.join(f'{n:,}' for n in sink_sizes) or 'none'}; each case in a fresh process; "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    results: list[dict[str, Any]] = []
    floor = run_case("floor", sizes[0])
    results.append(floor)
    cases = [(n, case) for n in sizes for case in ("capframe", "pandas") if case == "capframe" or n <= args.alt_max]
    for n, case in [*cases, *((n, "sink") for n in sink_sizes)]:
        r = run_case(case, n)
        print(f"  {case} N={n:,}: peak {r['rusage_peak_mb']:.0f} MB, {r['seconds']:.1f} s", file=sys.stderr, flush=True)
        results.append(r)

    rows = []
    for r in results:
        rows.append(
            (
                r["case"],
                f"{r['n']:,}" if r["case"] != "floor" else "-",
                f"{r['rusage_peak_mb']:.0f}",
                f"{r['peak_mb']:.0f}",
                f"{r['rusage_peak_mb'] - floor['rusage_peak_mb']:.0f}" if r["case"] != "floor" else "0",
                f"{r['seconds']:.1f}",
                f"{r['n'] / r['seconds']:,.0f}" if r["seconds"] else "-",
                f"{r.get('cache_mb', 0):.0f}" if r["case"] in ("capframe", "sink") else "-",
            )
        )
    print()
    print(
        fmt_table(
            [
                "case",
                "N",
                "peak MB (rusage)",
                "VmHWM MB",
                "above floor MB",
                "fetch s",
                "ids/s",
                "cache_dir MB",
            ],
            rows,
        )
    )
    print()
    cap = [r for r in results if r["case"] == "capframe"]
    base = floor["rusage_peak_mb"]
    first = cap[0]
    for r in cap[1:]:
        n_ratio = r["n"] / first["n"]
        peak_ratio = r["rusage_peak_mb"] / first["rusage_peak_mb"]
        growth_ratio = (r["rusage_peak_mb"] - base) / max(1e-9, first["rusage_peak_mb"] - base)
        print(
            f"capframe N x{n_ratio:g} ({first['n']:,} -> {r['n']:,}): peak x{peak_ratio:.2f}, peak above floor x{growth_ratio:.2f} "
            f"(flat = 1, linear = {n_ratio:g}); {(r['rusage_peak_mb'] - first['rusage_peak_mb']) / (r['n'] - first['n']) * 1000:.2f} MB per 1k more ids"
        )
    last = cap[-1]
    if last["n"] >= 1_000_000:
        print(
            f"capframe at {last['n']:,}: peak {last['rusage_peak_mb']:.0f} MB (target at 1M < 800 MB: "
            f"{'meets target' if last['rusage_peak_mb'] < 800 else 'MISSES target'})"
        )
    elif len(cap) >= 2:
        slope = (cap[-1]["rusage_peak_mb"] - cap[-2]["rusage_peak_mb"]) / (cap[-1]["n"] - cap[-2]["n"])
        estimate = cap[-1]["rusage_peak_mb"] + slope * (1_000_000 - cap[-1]["n"])
        print(
            f"capframe at 1,000,000 (linear estimate from the last two sizes, not measured): ~{estimate:.0f} MB (target < 800 MB; run --full to measure)"
        )
    sinks = [r for r in results if r["case"] == "sink"]
    for r in sinks[1:]:
        ratio = r["rusage_peak_mb"] / sinks[0]["rusage_peak_mb"]
        print(
            f"sink N x{r['n'] / sinks[0]['n']:g} ({sinks[0]['n']:,} -> {r['n']:,}): peak x{ratio:.2f} (target: at most "
            f"1.2 from 100k to 2M: {'meets' if ratio <= 1.2 else 'MISSES'})"
        )
    for r in sinks:
        print(
            f"sink at {r['n']:,}: peak {r['rusage_peak_mb']:.0f} MB (target < 400 MB: "
            f"{'meets' if r['rusage_peak_mb'] < 400 else 'MISSES'})"
        )
    for r in cap:
        alt = next((a for a in results if a["case"] == "pandas" and a["n"] == r["n"]), None)
        if alt:
            print(
                f"N={r['n']:,}: pandas / capframe peak = {alt['rusage_peak_mb'] / r['rusage_peak_mb']:.2f}x "
                f"(above floor {(alt['rusage_peak_mb'] - base) / max(1e-9, r['rusage_peak_mb'] - base):.2f}x); "
                f"time {alt['seconds'] / r['seconds']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
