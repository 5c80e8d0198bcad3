"""Time to the first table: ``import capframe`` and a first fetch, each in fresh processes.

    python benchmarks/bench_import.py             # best of 5
    python benchmarks/bench_import.py --repeat 10

Wall time of ``python -c "import X"`` (interpreter start included, so ``python -c pass`` is shown
too), best of N, alternating the cases so that both see the same machine load. Then the same with
``-X importtime``, whose cumulative microseconds for the top-level module leave interpreter start
out; and the modules capframe's import spends most on beyond polars (from one -X importtime run).
capframe is imported from bytecode, as an installed copy is, even where PYTHONDONTWRITEBYTECODE is
set (:func:`from_bytecode`): polars always is.

Then the first table: in a fresh process, ``import capframe`` and ``fetch_customers`` of 100 ids
from ``Client.sandbox()`` (in-process, no network), each timed, against the same fetch again in
that process (warm: what every fetch after the first costs); and, in fresh processes of their
own, what the first fetch imports beyond ``import capframe``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _pages import child_env, fmt_table, revision
from _report import add_write_flag, report

CASES = {"python -c pass": "pass", "import polars": "import polars", "import capframe": "import capframe"}
_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def wall(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - started


def importtime(code: str, env: dict[str, str], *argv: str) -> list[tuple[int, int, int, str]]:
    """(self us, cumulative us, depth, module) per line of -X importtime."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv], env=env, check=True, capture_output=True, text=True
    )
    rows = []
    for line in done.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    return rows


# A fresh process: import capframe, then fetch 100 ids twice; prints the three times as JSON.
FIRST_FETCH = """
import json, sys, time
started = time.perf_counter()
import capframe
imported = time.perf_counter()
client = capframe.Client.sandbox(latency=float(sys.argv[2]))
ids = json.loads(sys.argv[1])
capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
first = time.perf_counter()
capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
second = time.perf_counter()
print(json.dumps([imported - started, first - imported, second - first]))
"""


def first_fetch(ids: list[int], latency: float, env: dict[str, str]) -> list[float]:
    """(import capframe, first fetch, second fetch) seconds in one fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_FETCH, json.dumps(ids), str(latency)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    times: list[float] = json.loads(done.stdout)
    return times


def cumulative(rows: list[tuple[int, int, int, str]], module: str) -> float:
    return next(cum for _, cum, depth, name in rows if name == module and depth == 0) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="best of N fresh processes (default 5)")
    parser.add_argument("--top", type=int, default=8, help="modules to list (default 8)")
    add_write_flag(parser)
    args = parser.parse_args()
    with report("bench_import", write=args.write):
        return run(args)


def from_bytecode(env: dict[str, str]) -> dict[str, str]:
    """``env`` in which capframe is imported from bytecode, as an installed copy is (pip compiles a
    package's modules when it installs it): with PYTHONDONTWRITEBYTECODE set, a checkout's modules were
    compiled from source on every import (about 0.1 s), polars' never. The bytecode goes to a folder
    of the temp dir, not into the checkout; the warm-up run writes it."""
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "capframe-bench-pycache")
    return env


def run(args: argparse.Namespace) -> int:
    env = from_bytecode(child_env())
    print(
        f"bench_import ({revision()}): {sys.executable}; best of {args.repeat}; {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; "
        "capframe imported from bytecode, as installed",
        flush=True,
    )

    for code in CASES.values():  # warm the OS file cache
        wall(code, env)
    walls: dict[str, list[float]] = {name: [] for name in CASES}
    cums: dict[str, list[float]] = {"import polars": [], "import capframe": []}
    for _ in range(args.repeat):
        for name, code in CASES.items():
            walls[name].append(wall(code, env))
        for name in cums:
            module = CASES[name].split()[1]
            cums[name].append(cumulative(importtime(CASES[name], env), module))

    best = {name: min(v) for name, v in walls.items()}
    best_cum = {name: min(v) for name, v in cums.items()}
    rows = [
        (
            name,
            f"{best[name] * 1000:.0f}",
            f"{(best[name] - best['python -c pass']) * 1000:.0f}",
            f"{best_cum[name] * 1000:.0f}" if name in best_cum else "-",
        )
        for name in CASES
    ]
    print()
    print(fmt_table(["case", "wall ms", "wall - python ms", "-X importtime cumulative ms"], rows))
    print()
    p, c = best["import polars"], best["import capframe"]
    base = best["python -c pass"]
    print(
        f"capframe - polars: {(c - p) * 1000:.0f} ms wall; capframe / polars = {c / p:.2f}x wall, "
        f"{(c - base) / (p - base):.2f}x without interpreter start, {best_cum['import capframe'] / best_cum['import polars']:.2f}x by -X importtime"
    )

    # What capframe adds beyond polars: top-level packages by cumulative time, excluding polars' own tree.
    rows_c = importtime("import capframe", env)
    polars_modules = {name for _, _, _, name in importtime("import polars", env)}
    extra = [(cum, name) for _, cum, _, name in rows_c if name not in polars_modules and "." not in name]
    extra.sort(reverse=True)
    print()
    print(
        "top-level modules capframe's import loads that `import polars` does not (one -X importtime run, cumulative ms; nested, so they overlap):"
    )
    print(fmt_table(["module", "ms"], [(name, f"{cum / 1000:.0f}") for cum, name in extra[: args.top]]))

    from capframe.sandbox import Sandbox

    ids = Sandbox().customer_ids(100)
    print()
    print(
        "the first table: a fresh process imports capframe and fetches 100 ids from Client.sandbox() (in-process, "
        f"answering after the latency shown), then fetches them again (warm); best of {args.repeat} each:"
    )
    rows = []
    for latency in (0.0, 0.5):
        runs = [first_fetch(ids, latency, env) for _ in range(args.repeat)]
        imported, first, warm = (min(run[i] for run in runs) for i in range(3))
        rows.append(
            (
                f"{latency:g}",
                f"{imported * 1000:.0f}",
                f"{first * 1000:.0f}",
                f"{warm * 1000:.0f}",
                f"{(imported + first) * 1000:.0f}",
                f"{(first - warm) * 1000:.0f}",
            )
        )
    headers = ["latency s", "import ms", "first fetch ms", "warm fetch ms", "import + first ms", "first - warm ms"]
    print(fmt_table(headers, rows))
    print(
        "first - warm: what only the first fetch of a process pays (the modules below, the sandbox's organisation, "
        "a TLS context, polars' first calls); pandera is imported only for a table that fails capframe._contract's check."
    )
    loaded = importtime(FIRST_FETCH, env, json.dumps(ids), "0")
    before = {name for _, _, _, name in importtime("import capframe", env)}
    later = sorted(((cum, name) for _, cum, depth, name in loaded if depth == 0 and name not in before), reverse=True)
    print()
    print("top-level modules the first fetch imports beyond `import capframe` (one -X importtime run, cumulative ms):")
    print(fmt_table(["module", "ms"], [(name, f"{cum / 1000:.0f}") for cum, name in later[: args.top]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
