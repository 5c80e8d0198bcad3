"""A snapshot folder someone else handed over: it cannot reach outside its folder, exhaust the machine,
or lose rows without a word (issue 18's catalogue of crafted snapshots).

Every case crafts one snapshot, then: verify() and info() report without a traceback; a pull with
no credentials is a SnapshotError naming the file; a pull with credentials and ``max_age`` warns,
fetches again and returns what a clean pull does; prune, on a second copy crafted the same way,
finishes. Canary files outside the folder keep their bytes and mtimes throughout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import capframe
from capframe._endpoints import SPECS
from capframe.sandbox import Sandbox

CUSTOMERS = 200
FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
ENV = ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY", "CAPILLARY_CLIENT_SECRET")
IDS = Sandbox(CUSTOMERS).customer_ids(30)


def sandbox() -> capframe.Client:
    return capframe.Client.sandbox(CUSTOMERS, **FAST)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two parts of 15 customers each."""
    root = tmp_path_factory.mktemp("base") / "snap"
    for held in (IDS[:15], IDS[15:]):
        capframe.fetch_customers(held, "INSTORE", client=sandbox(), cache_dir=root)
    return root


@pytest.fixture(scope="module")
def clean() -> capframe.CustomerTables:
    return capframe.fetch_customer_tables(IDS, "INSTORE", client=sandbox())


# --- the world outside the folder -----------------------------------------------------------------


def _outside(tmp_path: Path) -> Path:
    """A user's own files next to the snapshot: a parquet file, a Spark-style dataset, JSON notes."""
    outside = tmp_path / "outside"
    (outside / "dataset").mkdir(parents=True)
    pl.DataFrame({"a": [1, 2, 3, 4]}).write_parquet(outside / "victim.parquet")
    for n in range(2):
        pl.DataFrame({"a": [n]}).write_parquet(outside / "dataset" / f"part-{n}.parquet")
    (outside / "notes.json").write_text('{"mine": true}')
    return outside


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# --- crafting -------------------------------------------------------------------------------------


def _parts(root: Path, table: str = "customers") -> list[Path]:
    return sorted((root / "customers" / table).glob("*.parquet"))


def _files(root: Path) -> pl.DataFrame:
    return pl.read_parquet(root / "customers" / "files.parquet", glob=False)


def _set_files(root: Path, files: pl.DataFrame) -> None:
    files.write_parquet(root / "customers" / "files.parquet")


def _tamper(path: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> Path:
    """A part file changed, and its size and sha256 recomputed in files.parquet: a colleague who
    edits the data and recomputes the checksums."""
    import hashlib

    change(pl.read_parquet(path, glob=False)).write_parquet(path)
    root = path.parents[2]
    data = path.read_bytes()
    files = _files(root).with_columns(
        sha256=pl.when((pl.col("part") == path.stem) & (pl.col("table") == path.parent.name))
        .then(pl.lit(hashlib.sha256(data).hexdigest()))
        .otherwise("sha256"),
        bytes=pl.when((pl.col("part") == path.stem) & (pl.col("table") == path.parent.name))
        .then(pl.lit(len(data)))
        .otherwise("bytes"),
    )
    _set_files(root, files)
    return path


def _index_part(root: Path, part: str) -> Path:
    path = root / "customers" / "index.parquet"
    index = pl.read_parquet(path)
    pl.concat([index.head(1).with_columns(part=pl.lit(part)), index.slice(1)]).write_parquet(path)
    files = _files(root)
    _set_files(root, pl.concat([files, files.head(1).with_columns(part=pl.lit(part))]))
    return path


def _files_column(root: Path, column: str, value: str) -> Path:
    files = _files(root)
    _set_files(root, pl.concat([files.head(1).with_columns(pl.lit(value).alias(column)), files.slice(1)]))
    return root / "customers" / "files.parquet"


def _journal(root: Path, part: str = "18ef0000000000aa-0badc0de", table: str = "customers", name: str = "") -> Path:
    """A journal entry listing the first 5 ids again, newer than the index, as a killed run leaves one."""
    journal = root / "customers" / "journal"
    journal.mkdir(exist_ok=True)
    entry = {
        "part": part,
        "host": Sandbox.BASE_URL,
        "source": "INSTORE",
        "units": IDS[:5],
        "fetched_at": datetime.now(UTC).isoformat(),
        "fingerprint": SPECS["customers"].fingerprint,
        "notes": {},
        "files": {table: ["0" * 64, 4]},
    }
    path = journal / f"{name or '18ef0000000000aa-0badc0de'}.json"
    path.write_text(json.dumps(entry))
    return path


def _link(path: Path, target: Path | str) -> Path:
    if path.is_dir() and not path.is_symlink():
        shutil.copytree(path, target, dirs_exist_ok=True) if not Path(target).exists() else None
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)
    return path


def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def _bomb_index(root: Path) -> Path:
    """A million index rows that compress to a few kilobytes (a 6.5 MB index of 200M rows, smaller)."""
    path = root / "customers" / "index.parquet"
    one = pl.read_parquet(path).head(1)
    pl.select(pl.repeat(0, 1_000_000).alias("n")).join(one, how="cross").drop("n").write_parquet(path)
    return path


def _bomb_part(root: Path) -> Path:
    """A part whose rows are far more than its 15 units could have (a 14 MB part of 200M rows, smaller)."""
    return _tamper(_parts(root, "identifiers")[0], lambda f: pl.concat([f] * 2_000))


def _drop_files_row(root: Path) -> Path:
    part = _parts(root)[0].stem
    files = _files(root)
    _set_files(root, files.filter(~((pl.col("part") == part) & (pl.col("table") == "identifiers"))))
    return root / "customers" / "identifiers" / f"{part}.parquet"


OUT = "../../../outside"
# case -> (craft the snapshot, return the file a message must name; the tmp_path is the second argument)
CASES: dict[str, Callable[[Path, Path], Path]] = {
    # traversal in each metadata file
    "index part ../": lambda root, tmp: _index_part(root, f"{OUT}/victim"),
    "index part absolute": lambda root, tmp: _index_part(root, str(tmp / "outside" / "victim")),
    "files.parquet part ../": lambda root, tmp: _files_column(root, "part", f"{OUT}/victim"),
    "files.parquet table ../": lambda root, tmp: _files_column(root, "table", OUT),
    "journal part ../": lambda root, tmp: _journal(root, part=f"{OUT}/dataset"),
    "journal part absolute": lambda root, tmp: _journal(root, part=str(tmp / "outside" / "dataset")),
    "journal table ../": lambda root, tmp: _journal(root, table=OUT),
    "journal name not a part": lambda root, tmp: _journal(root, name="notes"),
    # symbolic links at each level
    "endpoint folder link": lambda root, tmp: _link(root / "customers", tmp / "outside" / "customers"),
    "table folder link": lambda root, tmp: _link(root / "customers" / "identifiers", tmp / "outside" / "dataset"),
    "journal folder link": lambda root, tmp: (_journal(root), _link(root / "customers" / "journal", tmp / "outside"))[
        1
    ],
    # A link to a copy outside: read, it would pass every check but where it is.
    "index link": lambda root, tmp: _link(
        p := root / "customers" / "index.parquet", shutil.copy(p, tmp / "outside" / "index.parquet")
    ),
    "part link": lambda root, tmp: _link(
        p := _parts(root, "profiles")[0], shutil.copy(p, tmp / "outside" / "copy.parquet")
    ),
    "journal entry link": lambda root, tmp: _link(p := _journal(root), shutil.copy(p, tmp / "outside" / "entry.json")),
    "marker link": lambda root, tmp: _link(root / "capframe-snapshot.json", tmp / "outside" / "notes.json"),
    "dangling .lock link": lambda root, tmp: _link(root / ".lock", tmp / "outside" / "created-by-lock"),
    # special files
    "marker /dev/zero": lambda root, tmp: _link(root / "capframe-snapshot.json", "/dev/zero"),
    "marker FIFO": lambda root, tmp: _fifo(root / "capframe-snapshot.json"),
    "journal entry /dev/urandom": lambda root, tmp: _link(_journal(root), "/dev/urandom"),
    "journal entry FIFO": lambda root, tmp: _fifo(_journal(root)),
    "part /dev/zero": lambda root, tmp: _link(_parts(root, "fields")[0], "/dev/zero"),
    "part FIFO": lambda root, tmp: _fifo(_parts(root, "cards")[0]),
    "index FIFO": lambda root, tmp: _fifo(root / "customers" / "index.parquet"),
    # bombs
    "index of a million rows in kilobytes": lambda root, tmp: _bomb_index(root),
    "part of more rows than its units": lambda root, tmp: _bomb_part(root),
    # inconsistent metadata, the checksums recomputed
    "files.parquet lacks a table's row": lambda root, tmp: _drop_files_row(root),
    "part lacks a unit's row": lambda root, tmp: _tamper(_parts(root)[0], lambda f: f.slice(1)),
    "part with a wrong dtype": lambda root, tmp: _tamper(
        _parts(root)[0], lambda f: f.with_columns(pl.col("customer_id").cast(pl.String))
    ),
    "part with an extra column": lambda root, tmp: _tamper(_parts(root)[1], lambda f: f.with_columns(extra=pl.lit(1))),
    "part with a duplicated row": lambda root, tmp: _tamper(_parts(root)[0], lambda f: pl.concat([f, f.head(1)])),
    "part without customer_id": lambda root, tmp: _tamper(
        _parts(root, "identifiers")[0], lambda f: f.drop("customer_id")
    ),
}
# Cases whose damage loses no unit: a journal entry (its units are in the index too), the marker
# (written again), the lock (refuses a writer). A pull with no credentials reads them all.
NOTHING_LOST = {
    *(case for case in CASES if case.startswith("journal")),
    "marker link",
    "marker /dev/zero",
    "marker FIFO",
    "dangling .lock link",
}
# Folders and files a pull must not write through: refused with a SnapshotError naming them.
REFUSED_ONLINE = {"endpoint folder link", "table folder link", "journal folder link", "dangling .lock link"}


@pytest.fixture
def no_hang() -> Iterator[None]:
    """A FIFO read without O_NONBLOCK blocks for ever: fail instead."""

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("a snapshot read blocked (a FIFO?)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("no_hang")
@pytest.mark.parametrize("case", list(CASES))
def test_a_crafted_snapshot_stays_in_its_folder_and_loses_nothing(
    case: str, base: Path, clean: capframe.CustomerTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = _outside(tmp_path)
    roots = [tmp_path / "snap", tmp_path / "pruned"]
    for root in roots:
        shutil.copytree(base, root)
    named = CASES[case](roots[0], tmp_path)
    CASES[case](roots[1], tmp_path / "pruned-outside" if case == "endpoint folder link" else tmp_path)
    before = _state(outside)
    root = roots[0]
    mentioned = named.name

    # Inspecting: a report that names the file, no traceback; every value printed is inert.
    snapshot = capframe.Snapshot(root)
    assert any(mentioned in name for name in snapshot.verify()), snapshot.verify()
    info = snapshot.info()
    assert any(mentioned in name for name in info.damaged)
    assert "\x1b" not in str(info)

    # Offline: what the damage made missing is a SnapshotError naming the file, never fewer rows.
    with monkeypatch.context() as offline:
        for name in ENV:
            offline.delenv(name, raising=False)
        if case in NOTHING_LOST:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", capframe.SnapshotDamagedWarning)
                assert_same(capframe.fetch_customer_tables(IDS, "INSTORE", cache_dir=root), clean)
        else:
            with pytest.raises(capframe.SnapshotError, match=rf"{mentioned}.*no credentials"):
                capframe.fetch_customer_tables(IDS, "INSTORE", cache_dir=root)
            table = named.name if named.name in capframe.CustomerTables.NAMES else named.parent.name
            if table in capframe.CustomerTables.NAMES:
                with pytest.raises(capframe.SnapshotError, match=mentioned):
                    capframe.scan_customers(root, table).collect()

    # Online: five ids fetched again (max_age=0: their part are written again without them), then
    # all: the damage is warned about and fetched again, or a folder or lock that is not capframe's
    # is refused, naming it. The result is a clean pull's either way.
    if case in REFUSED_ONLINE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", capframe.SnapshotDamagedWarning)
            with pytest.raises(capframe.SnapshotError, match=rf"{mentioned}"):
                capframe.fetch_customer_tables(IDS[10:15], "INSTORE", client=sandbox(), cache_dir=root, max_age=0)
    else:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            capframe.fetch_customer_tables(IDS[10:15], "INSTORE", client=sandbox(), cache_dir=root, max_age=0)
            healed = capframe.fetch_customer_tables(IDS, "INSTORE", client=sandbox(), cache_dir=root)
        assert any(issubclass(w.category, capframe.SnapshotDamagedWarning) for w in said), case
        assert_same(healed, clean)
        assert capframe.Snapshot(root).verify() == []
        with monkeypatch.context() as offline:
            for name in ENV:
                offline.delenv(name, raising=False)
            assert_same(capframe.fetch_customer_tables(IDS, "INSTORE", cache_dir=root), clean)

    # Pruning the same crafted folder: it finishes, or refuses what it must not write through.
    if case in {"endpoint folder link", "dangling .lock link"}:  # what prune writes: the index, the lock
        with pytest.raises(capframe.SnapshotError, match=rf"{mentioned}"):
            capframe.Snapshot(roots[1]).prune(0)
    else:
        capframe.Snapshot(roots[1]).prune(0)

    assert _state(outside) == before
    assert not (outside / "created-by-lock").exists()
    assert not list(outside.rglob("*.tmp"))


def assert_same(got: capframe.CustomerTables, want: capframe.CustomerTables) -> None:
    for name, frame in want.tables().items():
        assert got.tables()[name].equals(frame), name


# --- ages, terminals, the marker ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["capframe-snapshot.json", ".lock"])
def test_a_folder_in_place_of_the_marker_or_the_lock_is_a_snapshot_error(name: str, base: Path, tmp_path: Path) -> None:
    root = tmp_path / "snap"
    shutil.copytree(base, root)
    (root / name).unlink(missing_ok=True)
    (root / name / "inside").mkdir(parents=True)
    assert name in capframe.Snapshot(root).verify()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capframe.SnapshotDamagedWarning)
        with pytest.raises(capframe.SnapshotError, match=rf"cannot write the snapshot in {root}"):
            capframe.fetch_customers(IDS[:31], "INSTORE", client=sandbox(), cache_dir=root, max_age=0)
    assert (root / name / "inside").is_dir()


@pytest.mark.parametrize("age", [float("nan"), -1, 1e20, 10**30, "30d", True])
def test_an_age_that_is_not_a_duration_is_an_invalid_argument_error(age: object, base: Path) -> None:
    with pytest.raises(capframe.InvalidArgumentError, match=r"max_age must be a timedelta or a number of seconds"):
        capframe.fetch_customers(IDS, "INSTORE", client=sandbox(), cache_dir=base, max_age=age)  # type: ignore[arg-type]
    with pytest.raises(capframe.InvalidArgumentError, match="max_age"):
        capframe.Snapshot(base).prune(age)  # type: ignore[arg-type]


def test_an_infinite_age_is_never_too_old(base: Path, tmp_path: Path) -> None:
    client = sandbox()
    assert capframe.fetch_customers(IDS, "INSTORE", client=client, cache_dir=base, max_age=float("inf")).height == 30
    assert client.sandbox_org is not None
    assert client.sandbox_org.request_log == []
    root = tmp_path / "snap"
    shutil.copytree(base, root)
    assert capframe.Snapshot(root).prune(float("inf")) == 0


@pytest.mark.parametrize("option", ["--max-age", "--older-than"])
def test_a_duration_past_any_date_is_a_usage_error_not_a_traceback(
    option: str, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from capframe.cli import main

    argv = ["customers", "--source", "INSTORE", "--cache-dir", str(base), option, "99999999999d", "--ids", "-"]
    if option == "--older-than":
        argv = ["snapshot", "prune", str(base), option, "99999999999d"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "over a thousand years: use at most 365000d" in capsys.readouterr().err


def test_info_and_verify_show_control_characters_from_the_index_as_escapes(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host with a newline and ESC cannot forge a line ("damaged 0 file(s)") or hide text."""
    from capframe.cli import main

    root = tmp_path / "snap\x1b[2J"
    shutil.copytree(base, root)
    forged = "https://x\x1b[8m\ndamaged    0 file(s)\x07"
    index = root / "customers" / "index.parquet"
    pl.read_parquet(index, glob=False).with_columns(host=pl.lit(forged)).write_parquet(index)
    _tamper(sorted((root / "customers" / "cards").iterdir())[0], lambda f: f.with_columns(extra=pl.lit(1)))
    assert main(["snapshot", "info", str(root)]) == 0
    assert main(["snapshot", "verify", str(root)]) == 1
    printed = capsys.readouterr().out
    assert "\x1b" not in printed
    assert "\x07" not in printed
    assert "\\x1b[8m\\ndamaged    0 file(s)\\x07" in printed
    assert [line for line in printed.splitlines() if line.startswith("damaged    ")] == ["damaged    1 file(s)"]
    assert "snap\\x1b[2J" in printed


def test_the_marker_records_the_version_that_wrote_it(base: Path) -> None:
    from importlib.metadata import version

    marker = json.loads((base / "capframe-snapshot.json").read_text())
    assert marker == {"format": 2, "capframe": version("capframe")}
    info = capframe.Snapshot(base).info()
    assert info.written_by == version("capframe")
    assert f"written by capframe {version('capframe')}" in str(info)


def test_a_snapshot_written_before_the_marker_named_its_version_is_read(base: Path, tmp_path: Path) -> None:
    """capframe 0.2 wrote {"format": 2} alone: the same layout, read as it is (the format is not bumped)."""
    root = tmp_path / "snap"
    shutil.copytree(base, root)
    (root / "capframe-snapshot.json").write_text('{"format": 2}')
    info = capframe.Snapshot(root).info()
    assert (info.written_by, info.units, info.damaged) == (None, {"customers": 30}, ())
    assert "written by capframe -" in str(info)


def test_a_part_whose_values_break_the_tables_checks_is_a_snapshot_error_saying_what_to_do(
    base: Path, clean: capframe.CustomerTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right schema, right units, checksums recomputed, but a value no answer can have: capframe's own
    error (pandera's would print the data), and max_age=0 with credentials heals it."""
    root = tmp_path / "snap"
    shutil.copytree(base, root)
    _tamper(_parts(root)[0], lambda f: f.with_columns(profile_count=pl.lit(-1, pl.Int64)))
    with monkeypatch.context() as offline:
        for name in ENV:
            offline.delenv(name, raising=False)
        with pytest.raises(capframe.SnapshotError, match=r"'profile_count'.*max_age=0") as raised:
            capframe.fetch_customer_tables(IDS, "INSTORE", cache_dir=root)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    healed = capframe.fetch_customer_tables(IDS, "INSTORE", client=sandbox(), cache_dir=root, max_age=0)
    assert_same(healed, clean)


def test_a_sink_over_a_part_whose_values_break_the_tables_checks_is_a_snapshot_error(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sink_customers reads nothing back, but checks the tables it hands out as a fetch does: a crafted
    part (checksums recomputed) is refused, not passed on lazily."""
    root = tmp_path / "snap"
    shutil.copytree(base, root)
    _tamper(_parts(root)[0], lambda f: f.with_columns(profile_count=pl.lit(-1, pl.Int64)))
    with monkeypatch.context() as offline:
        for name in ENV:
            offline.delenv(name, raising=False)
        with pytest.raises(capframe.SnapshotError, match=r"the customers table.*max_age=0"):
            capframe.sink_customer_tables(IDS, "INSTORE", root)
    healed = capframe.sink_customer_tables(IDS, "INSTORE", root, client=sandbox(), max_age=0)
    assert healed["customers"].collect()["profile_count"].min() >= 0  # type: ignore[operator]
