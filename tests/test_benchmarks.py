"""The benchmark scripts still run (tiny sizes, nothing timed): they call capframe's internals, which move."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, tmp_path: Path, *args: str) -> str:
    """Run benchmarks/<name> with this checkout's capframe; its page cache goes to tmp_path. -> stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_parse_runs_and_prints_its_headline_and_method(tmp_path: Path) -> None:
    out = run_script("bench_parse.py", tmp_path, "--entities", "200", "--repeat", "1", "--skip-pandas")
    assert "tidy_customers / floor" in out
    assert "method: " in out
    assert "where tidy_customers' time goes" in out
    assert "rows produced by (a): customers 200," in out


def test_bench_snapshot_runs_and_prints_its_figures(tmp_path: Path) -> None:
    out = run_script("bench_snapshot.py", tmp_path, "--sizes", "500")
    row = next(line for line in out.splitlines() if line.startswith("500 "))
    assert row.split()[1:2] == ["5"]  # 500 ids (499, then one added): 5 requests, then 1
    assert row.split()[4:6] == ["1", "5"]
    assert "method: " in out


def test_bench_families_runs_and_prints_its_requests(tmp_path: Path) -> None:
    out = run_script("bench_families.py", tmp_path, "--customers", "300", "--repeat", "1")
    assert "parents, median family" in out
    assert "default pacing" in out
    assert "no pacing" in out


def test_bench_lookup_runs_and_prints_its_ratio(tmp_path: Path) -> None:
    out = run_script("bench_lookup.py", tmp_path, "--values", "30", "--rate", "60000", "--latency", "0.01")
    row = next(line for line in out.splitlines() if line.startswith("30 ") and "mobiles" not in line)
    assert row.split()[1] == "30", "one lookup a value"
    assert "ratio to floor" in out


def test_bench_fetch_no_stall_case_runs_and_prints_its_ratio(tmp_path: Path) -> None:
    out = run_script("bench_fetch.py", tmp_path, "--only", "e", "--stall-ids", "300", "--repeat", "1")
    assert "(e) no stall: a warm pull of 300 ids (3 requests of 100)" in out
    assert "capframe / the faster plain loop + tidy = " in out
