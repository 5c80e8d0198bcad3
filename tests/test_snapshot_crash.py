"""A SIGKILL at any moment of a pull, a commit, a max_age refetch or a prune leaves every unit held
before readable offline, equal to before: no file a committed index names is changed in place.

A parent process imports capframe once and forks a child per kill point (a fresh interpreter per
point would make this test minutes long); the child counts the snapshot's file changes (os.replace,
os.unlink, os.rmdir, os.mkdir: every write ends in a rename) and SIGKILLs itself before the Nth.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import capframe
from capframe._snapshot import Store
from capframe.sandbox import Sandbox

CUSTOMERS = 200
IDS = Sandbox(CUSTOMERS).customer_ids(40)
ENV = ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY", "CAPILLARY_CLIENT_SECRET")
POINTS = 12  # kill points per operation, spread over all of its file changes, first and last included

_FORKER = textwrap.dedent(
    f"""
    import json, os, signal, sys
    import capframe
    from capframe._snapshot import Snapshot, Store
    from capframe.sandbox import Sandbox

    IDS = Sandbox({CUSTOMERS}).customer_ids(40)

    # Made once, before any fork: each child has its own copy.
    client = capframe.Client.sandbox({CUSTOMERS}, requests_per_minute=None, concurrency=2)

    def run(operation, root):
        if operation == "pull":  # 20 new ids in 10 requests: two parts, then the commit
            capframe.fetch_customers(IDS[:40], "INSTORE", client=client, cache_dir=root, batch_size=2, progress=False)
        elif operation == "refetch":  # the 10 ids dated 2000 fetched again: both parts written again without them
            capframe.fetch_customers(IDS[:20], "INSTORE", client=client, cache_dir=root, max_age=86400, progress=False)
        elif operation == "commit":  # journal entries folded in, superseding units of both old parts
            snapshot = Snapshot(root)
            with snapshot.lock(exclusive=True):
                Store(snapshot, "customers").commit()
        elif operation == "prune":  # the ten units dated 2000 go: their part is written again without them
            Snapshot(root).prune(86400)

    for line in sys.stdin:
        operation, root, kill_at = json.loads(line)
        readable, writable = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(readable)
            changes = [0]
            def counted(change):
                def change_or_die(*args, **kwargs):
                    changes[0] += 1
                    if changes[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return change(*args, **kwargs)
                return change_or_die
            for name in ("replace", "unlink", "rmdir", "mkdir"):
                setattr(os, name, counted(getattr(os, name)))
            try:
                run(operation, root)
            except BaseException as exc:
                print(repr(exc), file=sys.stderr)
                os._exit(1)
            os.write(writable, str(changes[0]).encode())
            os._exit(0)
        os.close(writable)
        _, status = os.waitpid(child, 0)
        with os.fdopen(readable) as counted_changes:
            print(json.dumps([status, int(counted_changes.read() or 0)]), flush=True)
    """
)


def _no_commit(store: Store, drop_before: object = None) -> int:
    return 0


def _dated(root: Path, ids: list[int]) -> None:
    """Units dated 2000 in the index: what max_age or prune treats as old, whatever second it is."""
    index = root / "customers" / "index.parquet"
    old = pl.col("unit").is_in(ids)
    pl.read_parquet(index).with_columns(
        fetched_at=pl.when(old).then(pl.lit(datetime(2000, 1, 1, tzinfo=UTC))).otherwise("fetched_at")
    ).write_parquet(index)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A snapshot for each operation: IDS[:20] in two parts, ten of them (five of each part) dated
    2000 but where a pull adds ids; and one with a killed run's parts in its journal."""
    client = capframe.Client.sandbox(CUSTOMERS, requests_per_minute=None)
    folder = tmp_path_factory.mktemp("bases")
    plain = folder / "plain"
    for held in (IDS[:10], IDS[10:20]):
        capframe.fetch_customers(held, "INSTORE", client=client, cache_dir=plain)
    dated = folder / "dated"
    shutil.copytree(plain, dated)
    _dated(dated, OLD)
    journal = folder / "journal"
    shutil.copytree(dated, journal)
    with pytest.MonkeyPatch.context() as uncommitted:  # a run killed before its commit: its parts in the journal
        uncommitted.setattr(Store, "commit", _no_commit)
        capframe.fetch_customers(IDS[:30], "INSTORE", client=client, cache_dir=journal, max_age=86400)
    return {"pull": plain, "refetch": dated, "commit": journal, "prune": dated}


OLD = IDS[:5] + IDS[10:15]
# What each operation must leave readable after a kill at any point: every unit held before, but
# for those a prune is asked to drop.
HELD = {"pull": IDS[:20], "refetch": IDS[:20], "commit": IDS[:30], "prune": [i for i in IDS[:20] if i not in OLD]}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def forker() -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(Path(capframe.__file__).parent.parent)}
    for name in ENV:
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-c", _FORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def _run(forker: subprocess.Popen[str], operation: str, root: Path, kill_at: int) -> tuple[int, int]:
    """The operation in a forked child killed before its ``kill_at``-th file change: (its wait status,
    the file changes it made when it finished)."""
    assert forker.stdin is not None
    assert forker.stdout is not None
    forker.stdin.write(json.dumps([operation, str(root), kill_at]) + "\n")
    forker.stdin.flush()
    status, changes = json.loads(forker.stdout.readline())
    return int(status), int(changes)


def _read(root: Path, ids: list[int]) -> dict[str, pl.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a kill leaves no damage to warn about
        return capframe.fetch_customer_tables(ids, "INSTORE", cache_dir=root).tables()


@pytest.fixture(scope="module")
def whole_runs() -> dict[str, int]:
    """The file changes of each operation run to the end, counted by the first of its cases here."""
    return {}


# Each operation's kill points in two interleaved halves, two cases a worker each can take: alone, an
# operation's twelve kills were the suite's longest test.
@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("half", [0, 1], ids=["odd points", "even points"])
@pytest.mark.parametrize("operation", ["pull", "commit", "refetch", "prune"])
def test_a_kill_at_any_moment_leaves_every_unit_held_before_readable(
    operation: str,
    half: int,
    tmp_path: Path,
    bases: dict[str, Path],
    forker: subprocess.Popen[str],
    whole_runs: dict[str, int],
) -> None:
    base, held = bases[operation], HELD[operation]
    before = _read(base, held)
    if operation not in whole_runs:
        # Run once to the end, counting its file changes (a kill point past the last never fires).
        whole = tmp_path / "whole"
        shutil.copytree(base, whole)
        status, whole_runs[operation] = _run(forker, operation, whole, 10**9)
        assert status == 0
    changes = whole_runs[operation]
    points = sorted({1 + round(i * (changes - 1) / (POINTS - 1)) for i in range(POINTS)})
    assert changes >= POINTS, changes
    assert len(points) == POINTS
    for point in points[half::2]:
        root = tmp_path / f"killed-{point}"
        shutil.copytree(base, root)
        status, _ = _run(forker, operation, root, point)
        assert os.WIFSIGNALED(status), (point, status)
        after = _read(root, held)
        for name, frame in before.items():
            assert after[name].equals(frame), (operation, point, name)
        shutil.rmtree(root)
