"""The snapshot behind ``cache_dir``: a dataset of the API's answers, one per unit.

A pull looks up which of its units the snapshot holds, asks the API only for the others, and adds
what comes back. The words are those of :mod:`capframe._engine` (unit, request, part). Layout,
relative to ``cache_dir`` (nothing absolute is stored: a copied folder works the same):

    capframe-snapshot.json             {"format": 2}: what this folder is
    .lock                              held (fcntl) while the index is read or changed
    <endpoint>/index.parquet           one row per unit: host, source, unit, part, fetched_at, wire_version,
                                       code and message (the API's refusal of a unit that has no rows)
    <endpoint>/files.parquet           one row per file: part, table, sha256, bytes
    <endpoint>/journal/<part>.json     a part written but not yet in the index (a run going on, or killed)
    <endpoint>/<table>/<part>.parquet  one part's tables (a group of requests), every row with ``host`` and ``source``

``<endpoint>`` is ``customers`` (a unit is a customer id) or ``children`` (a unit is one parent's
walk). A part's files are written to temporary names and renamed, then its journal entry: a run
killed at any point leaves whole parts or files no index names. Index changes are made under an
exclusive lock, by folding journal entries in; a unit fetched again replaces the old one, and the old
part is rewritten without it, so the files hold each (host, source, unit) once. Every file is checked
against its sha256 before its units count as held: a damaged one is warned about and fetched again.
Files are created owner-only (0600, folders 0700) and hold no credential.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from capframe._wire import WIRE_VERSION
from capframe.errors import InvalidArgumentError, SnapshotDamagedWarning, SnapshotError

__all__ = [
    "ENDPOINTS",
    "Notice",
    "Snapshot",
    "SnapshotInfo",
    "Store",
    "cannot_write",
    "damaged_or_missing",
    "max_age_of",
    "named",
]

Notice = tuple[str, type[Warning]]

FORMAT = 2
MARKER = "capframe-snapshot.json"
_LEGACY = "capframe.json"  # what capframe 0.1 wrote
_STALE = 15 * 60  # seconds after which a temporary file is a leftover of a killed run
_FILES_AT_ONCE = 100
# endpoint -> (the unit's dtype, the table column that holds it, or None: one unit per part)
ENDPOINTS: Mapping[str, tuple[pl.DataType, str | None]] = {
    "customers": (pl.Int64(), "customer_id"),
    "children": (pl.String(), None),
}
TIME = pl.Datetime("us", "UTC")
FILES = pl.Schema({"part": pl.String, "table": pl.String, "sha256": pl.String, "bytes": pl.Int64})


def _index_schema(endpoint: str) -> pl.Schema:
    return pl.Schema(
        {  # type: ignore[arg-type]  # mypy widens a dict of mixed dtypes to object
            "host": pl.String,
            "source": pl.String,
            "unit": ENDPOINTS[endpoint][0],
            "part": pl.String,
            "fetched_at": TIME,
            "wire_version": pl.Int64,
            "code": pl.Int64,
            "message": pl.String,
        }
    )


def max_age_of(value: object) -> timedelta | None:
    """``max_age``: a timedelta, or seconds; None is never too old."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        age = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        age = timedelta(seconds=value)
    else:
        raise InvalidArgumentError(f"max_age must be a timedelta or seconds, not {type(value).__name__}")
    if age < timedelta(0):
        raise InvalidArgumentError(f"max_age must not be negative, not {value!r}")
    return age


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _remove(path: Path) -> None:
    """A snapshot file gone, whatever took its place (a folder, after damage)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _readable(path: Path) -> bool:
    try:
        pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        return False
    return True


def named(items: Sequence[object]) -> str:
    """Files (or anything) for a message: the first three, and how many more."""
    return ", ".join(map(str, items[:3])) + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def damaged_or_missing(paths: Sequence[Path]) -> str:
    return f"{named(paths)} {'is' if len(paths) == 1 else 'are'} damaged or missing"


def cannot_write(root: Path, exc: OSError) -> SnapshotError:
    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or type(exc).__name__).lower()
    return SnapshotError(
        f"cannot write the snapshot in {root} ({why}): free space or make the folder writable, "
        "or pass another cache_dir (or none)"
    )


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``Snapshot.info()`` reports."""

    path: str
    hosts: tuple[str, ...]
    sources: tuple[str, ...]
    units: Mapping[str, int]  # endpoint -> units held
    first_fetched_at: datetime | None
    last_fetched_at: datetime | None
    bytes: int
    damaged: tuple[str, ...]  # files (relative paths) that are missing or not what the index says

    def __str__(self) -> str:
        when = (
            f"{self.first_fetched_at:%Y-%m-%d %H:%M:%S} to {self.last_fetched_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.first_fetched_at and self.last_fetched_at
            else "-"
        )
        lines = [
            f"snapshot   {self.path}",
            f"hosts      {', '.join(self.hosts) or '-'}",
            f"sources    {', '.join(self.sources) or '-'}",
            *(f"{endpoint:<10} {count:,} units" for endpoint, count in self.units.items()),
            f"fetched    {when}",
            f"on disk    {self.bytes / 1e6:.1f} MB",
            f"damaged    {len(self.damaged)} file(s)" + "".join(f"\n  {name}" for name in self.damaged),
        ]
        return "\n".join(lines)


class Snapshot:
    """A ``cache_dir`` folder: what it holds, whether its files are intact, and pruning.

    >>> import capframe, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = capframe.fetch_customers([565338404], "INSTORE", client=capframe.Client.sandbox(), cache_dir=folder)
    >>> snapshot = capframe.Snapshot(folder)
    >>> snapshot.info().units["customers"], snapshot.verify()
    (1, [])
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgumentError(f"a snapshot is a folder path, not {type(path).__name__}")
        self.root = Path(path)

    def __repr__(self) -> str:
        return f"Snapshot({str(self.root)!r})"

    # -- the folder ---------------------------------------------------------------------------------

    def check(self, *, create: bool, notices: list[Notice] | None = None) -> None:
        """Refuse what is not a snapshot (a file, capframe 0.1's cache, another format); create if asked."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise SnapshotError(f"cache_dir {root} is a file, not a folder: pass a folder (it is created if missing)")
        marker = root / MARKER
        if (root / _LEGACY).exists() and not marker.exists():
            raise SnapshotError(
                f"{root} is a cache written by capframe 0.1, which this version does not read: delete it "
                "(or pass another cache_dir) and the next run fetches everything again"
            )
        if marker.exists():
            try:
                found = json.loads(marker.read_bytes()).get("format")
            except (OSError, ValueError, AttributeError):
                found = None
                if create and self.writable():
                    (notices if notices is not None else []).append(
                        (f"{marker} is damaged; it is written again", SnapshotDamagedWarning)
                    )
                    self._write_marker()
            if found not in (None, FORMAT):
                raise SnapshotError(
                    f"{root} is a snapshot of format {found!r}, written by another capframe version: "
                    "use that version, or delete the folder to fetch everything again"
                )
            return
        if not create:
            raise InvalidArgumentError(f"{root} holds no capframe snapshot: pass the cache_dir of a fetch")
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._write_marker()
        except OSError as exc:
            raise cannot_write(root, exc) from None

    def _write_marker(self) -> None:
        _write_atomically(self.root / MARKER, json.dumps({"format": FORMAT}).encode())

    def writable(self) -> bool:
        return os.access(self.root, os.W_OK | os.X_OK)

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Index changes are exclusive; reads of the index and files share. A read-only snapshot is read unlocked."""
        path = self.root / ".lock"
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            if exclusive:
                raise
            yield
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def hosts(self) -> tuple[list[str], list[Path]]:
        """(the hosts the snapshot holds units of, index files that could not be read)."""
        hosts: set[str] = set()
        unreadable: list[Path] = []
        for endpoint in ENDPOINTS:
            if (self.root / endpoint).is_dir():
                store = Store(self, endpoint)
                hosts |= set(store.units()["host"].unique())
                unreadable += store.unreadable
        return sorted(hosts), unreadable

    def clean_temporary(self) -> None:
        """Remove temporary files left by runs killed mid-write (old enough that no run is writing them)."""
        cutoff = time.time() - _STALE
        for path in self.root.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    # -- inspect and manage -------------------------------------------------------------------------

    def info(self) -> SnapshotInfo:
        self.check(create=False)
        hosts: set[str] = set()
        sources: set[str] = set()
        units: dict[str, int] = {}
        times: list[datetime] = []
        for endpoint in ENDPOINTS:
            if not (self.root / endpoint).is_dir():
                continue
            index = Store(self, endpoint).units()
            hosts |= set(index["host"])
            sources |= set(index["source"])
            units[endpoint] = index.height
            times += [t for t in (index["fetched_at"].min(), index["fetched_at"].max()) if isinstance(t, datetime)]
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return SnapshotInfo(
            str(self.root),
            tuple(sorted(hosts)),
            tuple(sorted(sources)),
            units,
            min(times) if times else None,
            max(times) if times else None,
            size,
            tuple(self.verify()),
        )

    def verify(self) -> list[str]:
        """Files (paths relative to the folder) that are missing, unreadable or not what the index says."""
        self.check(create=False)
        damaged: list[str] = []
        for endpoint in ENDPOINTS:
            if (self.root / endpoint).is_dir():
                store = Store(self, endpoint)
                with self.lock(exclusive=False):
                    _, files = store.view()
                    damaged += [str(p.relative_to(self.root)) for p in store.damaged_files(files)]
                    damaged += [str(p.relative_to(self.root)) for p in store.unreadable]
        return sorted(set(damaged))

    def prune(self, older_than: timedelta | float) -> int:
        """Remove units fetched longer than ``older_than`` ago (and files no index names): how many units went."""
        age = max_age_of(older_than)
        assert age is not None
        self.check(create=False)
        if not self.writable():
            raise SnapshotError(f"cannot prune {self.root}: the folder is read-only")
        removed = 0
        for endpoint in ENDPOINTS:
            if (self.root / endpoint).is_dir():
                store = Store(self, endpoint)
                with self.lock(exclusive=True):
                    removed += store.commit(drop_before=_now() - age)
        self.clean_temporary()
        return removed


class Store:
    """One endpoint's side of a snapshot: look units up, write parts, fold them into the index, read them."""

    def __init__(self, snapshot: Snapshot, endpoint: str) -> None:
        self.snapshot = snapshot
        self.endpoint = endpoint
        self.folder = snapshot.root / endpoint
        self.unit_dtype, self.unit_column = ENDPOINTS[endpoint]
        self.schema = _index_schema(endpoint)
        self.unreadable: list[Path] = []  # index or journal files that could not be read (found by view())
        self.damaged_parts: set[str] = set()  # parts found damaged by held(): dropped at the next commit
        self.notices: list[Notice] = []  # warnings for the public function to give, at its caller's line

    @property
    def one_unit_per_part(self) -> bool:
        """Whether a part may hold one unit only: its tables have no column naming the unit of a row,
        so a part could not be rewritten without one of several units."""
        return self.unit_column is None

    def _path(self, table: str, part: str) -> Path:
        return self.folder / table / f"{part}.parquet"

    def _mkdir(self, *names: str) -> None:
        for folder in (self.folder, *(self.folder / n for n in names)):
            folder.mkdir(exist_ok=True, mode=0o700)

    def can_write(self, tables: Sequence[str]) -> bool:
        folders = [self.snapshot.root, self.folder, self.folder / "journal", *(self.folder / t for t in tables)]
        return all(os.access(f, os.W_OK | os.X_OK) for f in folders if f.exists())

    # -- the index ----------------------------------------------------------------------------------

    def _read_frame(self, path: Path, schema: pl.Schema) -> pl.DataFrame:
        empty = pl.DataFrame(schema=schema)
        if not path.exists():
            return empty
        try:
            frame = pl.read_parquet(path)
            return frame.select(schema.names()).cast(dict(schema))  # type: ignore[arg-type]
        except (OSError, pl.exceptions.PolarsError) as exc:
            self.unreadable.append(path)
            self.notices.append(
                (
                    f"{path} is damaged ({type(exc).__name__}): the units it lists are fetched again",
                    SnapshotDamagedWarning,
                )
            )
            return empty

    def _journal(self) -> tuple[list[pl.DataFrame], list[pl.DataFrame], list[Path]]:
        units: list[pl.DataFrame] = []
        files: list[pl.DataFrame] = []
        entries = sorted((self.folder / "journal").glob("*.json")) if (self.folder / "journal").is_dir() else []
        read: list[Path] = []
        for path in entries:
            try:
                entry = json.loads(path.read_bytes())
                part = entry["part"]
                notes = entry.get("notes", {})
                units.append(
                    pl.DataFrame(
                        {
                            "host": entry["host"],
                            "source": entry["source"],
                            "unit": entry["units"],
                            "part": part,
                            "fetched_at": datetime.fromisoformat(entry["fetched_at"]),
                            "wire_version": entry["wire_version"],
                            "code": [notes.get(str(u), [None, None])[0] for u in entry["units"]],
                            "message": [notes.get(str(u), [None, None])[1] for u in entry["units"]],
                        },
                        schema=self.schema,
                    )
                )
                files.append(
                    pl.DataFrame(
                        [(part, table, sha, size) for table, (sha, size) in entry["files"].items()],
                        schema=FILES,
                        orient="row",
                    )
                )
                read.append(path)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, pl.exceptions.PolarsError) as exc:
                self.unreadable.append(path)
                self.notices.append(
                    (
                        f"{path} is damaged ({type(exc).__name__}): the units it lists are fetched again",
                        SnapshotDamagedWarning,
                    )
                )
        return units, files, read

    def view(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(units, files): the index with the journal folded in, each (host, source, unit) once, the
        latest fetch winning. Call under the lock."""
        self.unreadable = []
        index, files = self._read_index()
        journal_units, journal_files, _ = self._journal()
        return self._fold(index, files, journal_units, journal_files)

    def _read_index(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(index, files) as stored. Without the files' checksums no part of the index can be verified:
        the index counts as lost too, and its units are fetched again."""
        index = self._read_frame(self.folder / "index.parquet", self.schema)
        path = self.folder / "files.parquet"
        files = self._read_frame(path, FILES)
        if index.height and not path.exists():
            self.unreadable.append(path)
            self.notices.append(
                (f"{path} is missing: the units of the index are fetched again", SnapshotDamagedWarning)
            )
        if path in self.unreadable:
            index = index.clear()
        return index, files

    @staticmethod
    def _fold(
        index: pl.DataFrame, files: pl.DataFrame, journal_units: list[pl.DataFrame], journal_files: list[pl.DataFrame]
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        units = pl.concat([index, *journal_units])
        if journal_units and units["unit"].n_unique() < units.height:
            # Only rows whose unit repeats are compared: a unique() over every row's host, source and
            # unit held three times the index (300 MB for a million units), for nothing in a first pull.
            repeated = pl.col("unit").is_duplicated()
            latest = (
                units.filter(repeated)
                .sort("fetched_at", "part", maintain_order=True)
                .unique(["host", "source", "unit"], keep="last", maintain_order=True)
            )
            units = pl.concat([units.filter(~repeated), latest])
        files = pl.concat([files, *journal_files]).unique(["part", "table"], keep="last", maintain_order=True)
        return units, files

    def units(self) -> pl.DataFrame:
        with self.snapshot.lock(exclusive=False):
            return self.view()[0]

    def damaged_files(self, files: pl.DataFrame) -> list[Path]:
        """Files of ``files`` that are missing, unreadable, or not the bytes the index names."""
        bad: list[Path] = []
        for part, table, sha, size in files.iter_rows():
            path = self._path(table, part)
            try:
                if path.stat().st_size != size or _sha256(path.read_bytes()) != sha:
                    bad.append(path)
            except OSError:
                bad.append(path)
        return bad

    def held(
        self, units: pl.Series, host: str, source: str, max_age: timedelta | None
    ) -> tuple[pl.DataFrame, list[Path]]:
        """(held, damaged): index rows of ``units`` for host and source whose files are intact (and
        fresh enough), and the snapshot files found damaged or missing (the index and journal files
        too). Damaged parts are warned about once."""
        with self.snapshot.lock(exclusive=False):
            index, files = self.view()
            rows = index.filter(
                (pl.col("host") == host) & (pl.col("source") == source) & (pl.col("wire_version") == WIRE_VERSION)
            ).join(pl.DataFrame({"unit": units}, schema={"unit": self.unit_dtype}), on="unit", how="semi")
            if max_age is not None:
                rows = rows.filter(pl.col("fetched_at") >= _now() - max_age)
            needed = files.join(rows.select("part").unique(), on="part", how="semi")
            bad = self.damaged_files(needed)
        if bad:
            self.damaged_parts |= {p.stem for p in bad}
            self.notices.append(
                (
                    f"snapshot file(s) missing or damaged: {named(bad)}; their units are fetched again",
                    SnapshotDamagedWarning,
                )
            )
            rows = rows.filter(~pl.col("part").is_in(list(self.damaged_parts)))
        return rows, [*self.unreadable, *bad]

    # -- writing ------------------------------------------------------------------------------------

    def write(
        self,
        host: str,
        source: str,
        units: Sequence[Hashable],
        tables: Mapping[str, pl.DataFrame],
        notes: Mapping[Hashable, tuple[int | None, str]],
        columns: Mapping[str, str],
    ) -> datetime:
        """One part (a group of requests' answers): its tables (with ``columns`` such as host and
        source in front), then its journal entry. Returns the time it records as fetched."""
        part = f"{time.time_ns():x}-{secrets.token_hex(4)}"
        fetched_at = _now()
        self._mkdir("journal", *tables)
        written: dict[str, list[object]] = {}
        try:
            for name, frame in tables.items():
                stored = frame.select(*(pl.lit(v, pl.String).alias(k) for k, v in columns.items()), pl.all())
                data = _parquet(stored)
                _write_atomically(self._path(name, part), data)
                written[name] = [_sha256(data), len(data)]
            entry = {
                "part": part,
                "host": host,
                "source": source,
                "units": list(units),
                "fetched_at": fetched_at.isoformat(),
                "wire_version": WIRE_VERSION,
                "notes": {str(unit): list(note) for unit, note in notes.items()},
                "files": written,
            }
            _write_atomically(self.folder / "journal" / f"{part}.json", json.dumps(entry).encode())
        except BaseException:
            # A part written in half (a full disk) is no part: a glob would count its files.
            for name in written:
                self._path(name, part).unlink(missing_ok=True)
            raise
        return fetched_at

    def commit(self, drop_before: datetime | None = None) -> int:
        """Fold the journal into the index; rewrite or delete parts whose units were fetched again,
        and damaged ones; with ``drop_before``, drop units fetched before it. Call under the exclusive lock.
        Returns how many units were dropped."""
        self.unreadable = []
        index, files = self._read_index()
        journal_units, journal_files, entries = self._journal()
        units, files = self._fold(index, files, journal_units, journal_files)
        stored = pl.concat([f.select("part") for f in [index, *journal_units]]).group_by("part").agg(stored=pl.len())
        dropped = 0
        if self.damaged_parts:
            units = units.filter(~pl.col("part").is_in(list(self.damaged_parts)))
        if drop_before is not None:
            old = units.filter(pl.col("fetched_at") <= drop_before)
            dropped = old.height
            units = units.filter(pl.col("fetched_at") > drop_before)
        # Parts holding fewer units than they were written with: rewritten without the others, or deleted
        # when none is left. Joined, not looped over: a snapshot grown by many small pulls holds thousands of parts.
        parts = stored.join(units.group_by("part").agg(kept=pl.len()), on="part", how="left").filter(
            pl.col("kept").fill_null(0) < pl.col("stored")
        )
        gone = parts.filter(pl.col("kept").is_null())["part"]
        for part, table in files.join(gone.to_frame(), on="part", how="semi").select("part", "table").iter_rows():
            _remove(self._path(table, part))
        files = files.filter(~pl.col("part").is_in(gone.implode()))
        if self.unit_column is not None:
            shrunk = units.join(parts.filter(pl.col("kept").is_not_null()), on="part", how="semi")
            for part, keep in shrunk.group_by("part", maintain_order=True).agg("unit").iter_rows():
                files = self._rewrite(part, files.filter(pl.col("part") == part), keep, files)
        self.folder.mkdir(exist_ok=True, mode=0o700)
        files = files.join(units.select("part").unique(), on="part", how="semi").sort("part", "table")
        _write_atomically(self.folder / "files.parquet", _parquet(files))
        _write_atomically(self.folder / "index.parquet", _parquet(units))
        for path in [*entries, *(p for p in self.unreadable if p.parent.name == "journal")]:
            path.unlink(missing_ok=True)
        self.damaged_parts = set()
        # With the index lost, no file is known to be any run's: every file it does not name now goes.
        lost = {self.folder / "index.parquet", self.folder / "files.parquet"} & set(self.unreadable)
        self._remove_orphans(files, every=bool(lost))
        return dropped

    def _rewrite(self, part: str, part_files: pl.DataFrame, keep: list[object], files: pl.DataFrame) -> pl.DataFrame:
        assert self.unit_column is not None
        unit = pl.col(self.unit_column)
        wanted = pl.Series(keep, dtype=self.unit_dtype).implode()
        for table in part_files["table"]:
            path = self._path(table, part)
            data = _parquet(pl.read_parquet(path).filter(unit.is_null() | unit.is_in(wanted)))
            _write_atomically(path, data)
            files = files.with_columns(
                sha256=pl.when((pl.col("part") == part) & (pl.col("table") == table))
                .then(pl.lit(_sha256(data)))
                .otherwise("sha256"),
                bytes=pl.when((pl.col("part") == part) & (pl.col("table") == table))
                .then(pl.lit(len(data)))
                .otherwise("bytes"),
            )
        return files

    def _remove_orphans(self, files: pl.DataFrame, *, every: bool = False) -> None:
        """Table files no index or journal entry names, old enough not to be a part being written now."""
        named = {f"{table}/{part}.parquet" for part, table in files.select("part", "table").iter_rows()}
        if (self.folder / "journal").is_dir():
            for entry in (self.folder / "journal").glob("*.json"):
                named |= {f"{t}/{entry.stem}.parquet" for t in os.listdir(self.folder) if (self.folder / t).is_dir()}
        cutoff = time.time() - (0 if every else _STALE)
        for path in self.folder.glob("*/*.parquet"):
            if f"{path.parent.name}/{path.name}" not in named:
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime <= cutoff:
                        _remove(path)

    # -- reading ------------------------------------------------------------------------------------

    def read(
        self,
        parts: Sequence[str],
        units: pl.Series,
        files: pl.DataFrame,
        tables: Sequence[str],
        keep: Sequence[str],
        dropped: Sequence[str],
    ) -> dict[str, pl.DataFrame | None]:
        """The tables of ``units`` from the files of ``parts``, in that order; None for a table no
        part has a file of. The files are those ``files`` (the index's) lists: one gone since it was
        checked is an error, not rows silently missing. Columns in ``dropped`` (host, source) are left
        out. Tables not in ``keep`` are read for their schema only (memory)."""
        wanted = units.implode()
        listed = set(files.select("part", "table").iter_rows())
        out: dict[str, pl.DataFrame | None] = {}
        with self.snapshot.lock(exclusive=False):
            for table in tables:
                paths = [self._path(table, part) for part in parts if (part, table) in listed]
                if not paths:
                    out[table] = None
                    continue
                try:
                    if table not in keep:
                        schema = pl.read_parquet_schema(paths[0])
                        out[table] = pl.DataFrame(schema=schema).drop(dropped)
                        continue
                    # A file read is a chunk of every column, whose buffers outweigh its rows: files are read
                    # 100 at a time and made contiguous (a million ids read at once held 400 MB for 125 MB).
                    # The filter is pushed into the reader: rows of units not asked are never materialised.
                    chunks = []
                    for i in range(0, len(paths), _FILES_AT_ONCE):
                        scan = pl.scan_parquet(paths[i : i + _FILES_AT_ONCE]).drop(dropped)
                        if self.unit_column is not None:
                            unit = pl.col(self.unit_column)
                            scan = scan.filter(unit.is_null() | unit.is_in(wanted))
                        chunks.append(scan.collect().rechunk())
                    out[table] = pl.concat(chunks)
                except (OSError, pl.exceptions.PolarsError) as exc:
                    # Files are checked before a pull reads them: this one changed since (another process?).
                    raise SnapshotError(
                        f"{named([p for p in paths if not _readable(p)]) or 'a file'} of the snapshot "
                        f"{self.snapshot.root} could not be read ({type(exc).__name__}: {str(exc)[:200]}); it "
                        "changed after it was checked: run again, and a damaged file is fetched again"
                    ) from None
        return out
