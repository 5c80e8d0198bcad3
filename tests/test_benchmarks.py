"""The benchmark scripts still run (tiny sizes, nothing timed): they call capframe's internals, which move."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_parse_runs_and_prints_its_headline_and_method(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}  # the page cache goes to tmp_path
    args = ["--entities", "200", "--repeat", "1", "--skip-pandas"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_parse.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tidy_customers / floor" in done.stdout
    assert "method: " in done.stdout
    assert "where tidy_customers' time goes" in done.stdout
    assert "rows produced by (a): customers 200," in done.stdout


def test_bench_snapshot_runs_and_prints_its_figures(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_snapshot.py"), "--sizes", "500"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("500 "))
    assert row.split()[1:2] == ["5"]  # 500 ids (499, then one added): 5 requests, then 1
    assert row.split()[4:6] == ["1", "5"]
    assert "method: " in done.stdout
