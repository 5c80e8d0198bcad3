"""The snapshot behind ``cache_dir``: a dataset of the API's answers, one per unit.

A pull looks up which of its units the snapshot holds, asks the API only for the others, and adds
what comes back. The words are those of :mod:`capframe._engine` (unit, request, part). Layout,
relative to ``cache_dir`` (nothing absolute is stored: a copied folder works the same), owned by
:class:`Layout`:

    capframe-snapshot.json             {"format": 2, "capframe": <the version that wrote it>}: what this folder is
    .lock                              held (fcntl) while the index is read or changed
    <endpoint>/index.parquet           one row per unit: host, source, unit, part, fetched_at, fingerprint,
                                       code and message (the API's refusal of a unit that has no rows)
    <endpoint>/files.parquet           one row per file: part, table, sha256, bytes
    <endpoint>/journal/<part>.json     a part written but not yet in the index (a run going on, or killed)
    <endpoint>/<table>/<part>.parquet  one part's tables (a group of requests), every row with ``host`` and ``source``

``<endpoint>`` is a registered endpoint's name (:data:`capframe._endpoints.SPECS`, each declared in
its own module; its unit is a customer id, one parent's walk, or one lookup of an identifier). A
part's files are written to temporary names and renamed, then its journal entry: a run killed at any
point leaves whole parts or files no index names. Index changes are made under an exclusive lock, by
folding journal entries in; a unit fetched again replaces the old one, and the old part is written
again, under a new name, without it, so the files hold each (host, source, unit) once.

A folder may come from someone else: it is untrusted input. No file the index names is ever changed
in place, so a run killed at any moment leaves what was held readable. Every name read from the
folder's own files is checked against what capframe writes before it becomes a path; every file is
reached without following a symbolic link and must be a regular file; reads are bounded (small
files by a byte cap, parquet files by the row counts their metadata states, parts by the sizes the
file list records); every part is checked against its sha256, its schema and the index before its
units count as held: a damaged one is warned about and fetched again. Files are created owner-only
(0600, folders 0700) and hold no credential.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from capframe._endpoints import SPECS, Spec
from capframe._inert import visible
from capframe.errors import InvalidArgumentError, SnapshotDamagedWarning, SnapshotError

__all__ = [
    "MOST_DAYS",
    "Layout",
    "Notice",
    "Refused",
    "Snapshot",
    "SnapshotInfo",
    "Store",
    "by_part",
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
# Byte caps of the small files, read whole: a marker is a few bytes, a journal entry lists at most a
# part's units (20 requests of 1,000 ids, with notes).
_MARKER_BYTES = 64 * 1024
_ENTRY_BYTES = 16 * 1024 * 1024
# An index or file list holds about one row per byte (a million sequential ids: 1.04 MB); more rows
# than this per byte is a bomb (200M rows in 6.5 MB), refused before it is decoded.
_ROWS_PER_BYTE = 8
_ROWS_SLACK = 100_000
_HASH_CHUNK = 1024 * 1024
MOST_DAYS = 365_000  # a max_age of a thousand years: older is no date a fetch could have
# A part name as Store.write makes it: f"{time.time_ns():x}-{secrets.token_hex(4)}".
_PART = re.compile(r"[0-9a-f]{1,16}-[0-9a-f]{8}")
_PART_PATTERN = f"^{_PART.pattern}$"
_TEMPORARY = re.compile(r"\..+\.tmp")  # what _write_atomically's mkstemp names


TIME = pl.Datetime("us", "UTC")
# The index and the file list in memory: the text every row of a part repeats (host, source, part,
# fingerprint, table) held as categories, 4 bytes a row; as text, they were 70 of an index row's 94
# bytes, a million units 70 MB a copy. Written as text: the files are what they were.
_NAME: pl.DataType = pl.Categorical()
_SLICE = 65_536  # rows of the index written at a time
FILES = pl.Schema({"part": _NAME, "table": _NAME, "sha256": pl.String(), "bytes": pl.Int64()})


@functools.cache
def _stored_schema(facts: Spec, table: str) -> dict[str, pl.DataType]:
    """Column -> dtype of a stored table file: the columns in front, then the table's (made once)."""
    return {**dict.fromkeys(facts.columns, pl.String()), **facts.table_schemas()[table]}


def _index_schema(endpoint: str) -> pl.Schema:
    return pl.Schema(
        {  # type: ignore[arg-type]  # mypy widens a dict of mixed dtypes to object
            "host": _NAME,
            "source": _NAME,
            "unit": SPECS[endpoint].unit_dtype,
            "part": _NAME,
            "fetched_at": TIME,
            "fingerprint": _NAME,
            "code": pl.Int64,
            "message": pl.String,
        }
    )


def max_age_of(value: object) -> timedelta | None:
    """``max_age``: a timedelta, or seconds; None or ``float("inf")`` is never too old."""
    if value is None or value == float("inf"):
        return None
    what = (
        f"max_age must be a timedelta or a number of seconds, from 0 to {MOST_DAYS:,} days "
        "(None or float('inf'): never too old)"
    )
    if not isinstance(value, (timedelta, int, float)) or isinstance(value, bool):
        raise InvalidArgumentError(f"{what}, not {type(value).__name__}")
    try:
        age = value if isinstance(value, timedelta) else timedelta(seconds=value)
    except (OverflowError, ValueError):  # nan, 1e20, 10**30: no timedelta holds them
        raise InvalidArgumentError(f"{what}, not {value!r}") from None
    if not timedelta(0) <= age <= timedelta(days=MOST_DAYS):  # further back than any fetch, or before year 1
        raise InvalidArgumentError(f"{what}, not {value!r}")
    return age


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _capframe_version() -> str:
    try:
        return version("capframe")
    except PackageNotFoundError:
        return "unknown"


def _schema(path: Path) -> pl.Schema:
    """A parquet file's schema, from its metadata. Never a glob: a cache_dir may be named ``data[2024]``."""
    return pl.scan_parquet(path, glob=False).collect_schema()


def _parquet(frame: pl.DataFrame) -> bytes:
    """A frame's parquet file; categories (the index's) are written as text, as they always were.
    Streamed in slices: written at once, a million units' index held its text and the encoder's
    buffers (170 MB) on top of the index; streamed whole, 90 MB; in slices, 36 MB."""
    buffer = io.BytesIO()
    slices = [piece.lazy() for piece in frame.iter_slices(_SLICE)] or [frame.lazy()]
    pl.concat(slices).with_columns(pl.col(pl.Categorical).cast(pl.String)).sink_parquet(buffer)
    return buffer.getvalue()


def _by_name(files: pl.DataFrame) -> pl.DataFrame:
    """The file list in the order it is written: by part and table names (not by the categories' codes)."""
    return files.sort(pl.col("part").cast(pl.String), pl.col("table").cast(pl.String))


def named(items: Sequence[object]) -> str:
    """Files (or anything) for a message: the first three, and how many more."""
    return ", ".join(map(str, items[:3])) + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def damaged_or_missing(paths: Sequence[Path]) -> str:
    return f"{named(paths)} {'is' if len(paths) == 1 else 'are'} damaged or missing"


def cannot_write(root: Path, exc: OSError) -> SnapshotError:
    if isinstance(exc, Refused):
        why = str(exc.strerror)
    else:
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or type(exc).__name__).lower()
    return SnapshotError(
        f"cannot write the snapshot in {root} ({why}): free space or make the folder writable, "
        "or pass another cache_dir (or none)"
    )


class Refused(OSError):
    """A snapshot path capframe will not use: a symbolic link, a special file, a name capframe does not
    write, or a file too large for what it is. An OSError: every caller treats it as a damaged file."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(errno.EPERM, f"{path} {why}")
        self.why = why


class Layout:
    """Every path of a snapshot, and the only way to them: names read from the folder's own files are
    checked before they become paths, and files are reached without following a symbolic link."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = root / MARKER
        self.legacy = root / _LEGACY
        self.lock = root / ".lock"

    # -- paths --------------------------------------------------------------------------------------

    def folder(self, endpoint: str) -> Path:
        return self.root / endpoint

    def index(self, endpoint: str) -> Path:
        return self.root / endpoint / "index.parquet"

    def files(self, endpoint: str) -> Path:
        return self.root / endpoint / "files.parquet"

    def journal(self, endpoint: str) -> Path:
        return self.root / endpoint / "journal"

    def entry(self, endpoint: str, part: str) -> Path:
        return self.journal(endpoint) / f"{self.part(part)}.json"

    def table(self, endpoint: str, table: str) -> Path:
        return self.root / endpoint / self.table_name(endpoint, table)

    def part_file(self, endpoint: str, table: str, part: str) -> Path:
        return self.table(endpoint, table) / f"{self.part(part)}.parquet"

    @staticmethod
    def new_part() -> str:
        return f"{time.time_ns():x}-{secrets.token_hex(4)}"

    @staticmethod
    def part(name: object) -> str:
        """A part name read from the snapshot: what new_part makes, or ValueError (never a path elsewhere)."""
        if not isinstance(name, str) or not _PART.fullmatch(name):
            raise ValueError(f"{visible(name)[:80]!r} is not a part name capframe writes")
        return name

    @staticmethod
    def table_name(endpoint: str, name: object) -> str:
        if name not in SPECS[endpoint].tables:
            raise ValueError(f"{visible(name)[:80]!r} is not a {endpoint} table")
        return str(name)

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    # -- reaching files -----------------------------------------------------------------------------

    def checked(self, path: Path, *, folder: bool = False) -> os.stat_result:
        """lstat of ``path``, every component under the root a real folder and ``path`` itself a regular
        file (or a folder): a symbolic link or a special file anywhere is Refused."""
        current = self.root
        parts = path.relative_to(self.root).parts
        found = os.lstat(self.root)
        for position, name in enumerate(parts):
            current = current / name
            found = os.lstat(current)
            last = position == len(parts) - 1
            if stat.S_ISLNK(found.st_mode):
                raise Refused(current, "is a symbolic link")
            if (not last or folder) and not stat.S_ISDIR(found.st_mode):
                raise Refused(current, "is not a folder")
            if last and not folder and not stat.S_ISREG(found.st_mode):
                raise Refused(current, "is not a regular file")
        return found

    def is_folder(self, path: Path) -> bool:
        try:
            self.checked(path, folder=True)
        except OSError:
            return False
        return True

    def exists(self, path: Path) -> bool:
        """Whether anything is at ``path`` (a link, a special file: what a read then refuses)."""
        return os.path.lexists(path)

    @contextlib.contextmanager
    def opened(self, path: Path) -> Iterator[tuple[int, os.stat_result]]:
        """A regular file opened for reading without following a link, never blocking (a FIFO)."""
        self.checked(path)
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            found = os.fstat(descriptor)
            if not stat.S_ISREG(found.st_mode):  # swapped since it was checked
                raise Refused(path, "is not a regular file")
            yield descriptor, found
        finally:
            os.close(descriptor)

    def read_small(self, path: Path, most: int) -> bytes:
        with self.opened(path) as (descriptor, found):
            if found.st_size > most:
                raise Refused(path, f"holds {found.st_size:,} bytes, more than such a file ever holds")
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                data = handle.read(most + 1)
        if len(data) > most:
            raise Refused(path, "grew past what such a file ever holds")
        return data

    def sha256(self, path: Path, size: int) -> str:
        """The file's sha256, read in chunks, once its size is the one recorded (Refused otherwise)."""
        digest = hashlib.sha256()
        with self.opened(path) as (descriptor, found):
            if found.st_size != size:
                raise Refused(path, f"holds {found.st_size:,} bytes, not the {size:,} files.parquet records")
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
        return digest.hexdigest()

    def rows(self, path: Path) -> int:
        """A parquet file's rows, from its metadata: nothing is decoded."""
        self.checked(path)
        return int(pl.scan_parquet(path, glob=False).select(pl.len()).collect().item())

    # -- changing files -----------------------------------------------------------------------------

    def mkdir(self, path: Path) -> None:
        """A folder of the snapshot, made if missing; one that is a link or a file is Refused."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        self.checked(path, folder=True)

    def write(self, target: Path, data: bytes) -> None:
        """Write to a temporary name in the same (real) folder, then rename: readers never see half a
        file, and the rename replaces a link at ``target`` rather than writing through it."""
        self.checked(target.parent, folder=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def remove(self, path: Path) -> None:
        """A file the snapshot no longer needs gone: unlinked (a link itself, never what it points to),
        only inside real folders; a folder where a file was is removed only when empty, never recursively."""
        with contextlib.suppress(OSError):
            self.checked(path.parent, folder=True)
            if stat.S_ISDIR(os.lstat(path).st_mode):
                os.rmdir(path)
            else:
                os.unlink(path)

    def entries(self, folder: Path, pattern: re.Pattern[str]) -> list[os.DirEntry[str]]:
        """The entries of a real folder of the snapshot whose names match ``pattern`` (none if it is a link)."""
        if not self.is_folder(folder):
            return []
        with os.scandir(folder) as found:
            return sorted((e for e in found if pattern.fullmatch(e.name)), key=lambda e: e.name)

    def walk(self) -> Iterator[tuple[Path, os.stat_result]]:
        """Every entry under the root, links not followed: (path, lstat)."""
        for folder, folders, names in os.walk(self.root, followlinks=False):
            for name in [*folders, *names]:
                path = Path(folder) / name
                with contextlib.suppress(OSError):
                    yield path, os.lstat(path)


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
    written_by: str | None = None  # the capframe version the marker names (as written: not trusted)

    def __str__(self) -> str:
        # Every value comes from the folder's own files: a newline or ESC in a host could forge a line.
        when = (
            f"{self.first_fetched_at:%Y-%m-%d %H:%M:%S} to {self.last_fetched_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.first_fetched_at and self.last_fetched_at
            else "-"
        )
        lines = [
            f"snapshot   {visible(self.path)}",
            f"hosts      {', '.join(map(visible, self.hosts)) or '-'}",
            f"sources    {', '.join(map(visible, self.sources)) or '-'}",
            *(f"{endpoint:<10} {count:,} units" for endpoint, count in self.units.items()),
            f"fetched    {when}",
            f"on disk    {self.bytes / 1e6:.1f} MB",
            f"written by capframe {visible(self.written_by or '-')}",
            f"damaged    {len(self.damaged)} file(s)" + "".join(f"\n  {visible(name)}" for name in self.damaged),
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
        self.layout = Layout(self.root)

    def __repr__(self) -> str:
        return f"Snapshot({str(self.root)!r})"

    # -- the folder ---------------------------------------------------------------------------------

    def check(self, *, create: bool, notices: list[Notice] | None = None) -> None:
        """Refuse what is not a snapshot (a file, capframe 0.1's cache, another format); create if asked."""
        root, layout = self.root, self.layout
        if root.exists() and not root.is_dir():
            raise SnapshotError(f"cache_dir {root} is a file, not a folder: pass a folder (it is created if missing)")
        marker = layout.marker
        if layout.exists(layout.legacy) and not layout.exists(marker):
            raise SnapshotError(
                f"{root} is a cache written by capframe 0.1, which this version does not read: delete it "
                "(or pass another cache_dir) and the next run fetches everything again"
            )
        if layout.exists(marker):
            found = self._marker().get("format")
            if found is None and create and self.writable():
                (notices if notices is not None else []).append(
                    (f"{marker} is damaged; it is written again", SnapshotDamagedWarning)
                )
                try:
                    self._write_marker()
                except OSError as exc:  # a folder where the marker was: not replaced
                    raise cannot_write(root, exc) from None
            if found not in (None, FORMAT):
                raise SnapshotError(
                    f"{root} is a snapshot of format {visible(found)[:40]}, written by another capframe version: "
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

    def _marker(self) -> dict[str, object]:
        """The marker's fields; empty when it is damaged (not JSON, a link, a special file, too large)."""
        try:
            found = json.loads(self.layout.read_small(self.layout.marker, _MARKER_BYTES))
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _write_marker(self) -> None:
        self.layout.write(self.layout.marker, json.dumps({"format": FORMAT, "capframe": _capframe_version()}).encode())

    def written_by(self) -> str | None:
        """The capframe version the marker names, made visible (it is the folder's own text)."""
        found = self._marker().get("capframe")
        return visible(found)[:40] if isinstance(found, str) else None

    def writable(self) -> bool:
        return os.access(self.root, os.W_OK | os.X_OK)

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Index changes are exclusive; reads of the index and files share. A read-only snapshot is read unlocked."""
        path = self.layout.lock
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            if exclusive and exc.errno == errno.ELOOP:
                raise SnapshotError(
                    f"{path} is a symbolic link, not capframe's lock file: remove it, then run again"
                ) from None
            if exclusive:
                raise cannot_write(self.root, exc) from None
            yield
            return
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise SnapshotError(f"{path} is a special file, not capframe's lock file: remove it, then run again")
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def endpoints(self) -> list[str]:
        """The endpoints the folder holds anything of (a link in place of the folder is damage, said so)."""
        return [e for e in SPECS if self.layout.exists(self.layout.folder(e))]

    def hosts(self) -> tuple[list[str], list[Path]]:
        """(the hosts the snapshot holds units of, index files that could not be read)."""
        hosts: set[str] = set()
        unreadable: list[Path] = []
        for endpoint in self.endpoints():
            store = Store(self, endpoint)
            hosts |= set(store.units()["host"].unique())
            unreadable += store.unreadable
        return sorted(hosts), unreadable

    def clean_temporary(self) -> None:
        """Remove temporary files left by runs killed mid-write (old enough that no run is writing them)."""
        cutoff = time.time() - _STALE
        folders = [self.root]
        for endpoint in self.endpoints():
            folder = self.layout.folder(endpoint)
            tables = (self.layout.table(endpoint, t) for t in SPECS[endpoint].tables)
            folders += [folder, self.layout.journal(endpoint), *tables]
        for folder in folders:
            for entry in self.layout.entries(folder, _TEMPORARY):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        self.layout.remove(Path(entry.path))

    # -- inspect and manage -------------------------------------------------------------------------

    def info(self) -> SnapshotInfo:
        self.check(create=False)
        hosts: set[str] = set()
        sources: set[str] = set()
        units: dict[str, int] = {}
        times: list[datetime] = []
        for endpoint in self.endpoints():
            index = Store(self, endpoint).units()
            hosts |= set(index["host"])
            sources |= set(index["source"])
            units[endpoint] = index.height
            times += [t for t in (index["fetched_at"].min(), index["fetched_at"].max()) if isinstance(t, datetime)]
        size = sum(found.st_size for _, found in self.layout.walk() if stat.S_ISREG(found.st_mode))
        written_by = self._marker().get("capframe")
        return SnapshotInfo(
            str(self.root),
            tuple(sorted(hosts)),
            tuple(sorted(sources)),
            units,
            min(times) if times else None,
            max(times) if times else None,
            size,
            tuple(self.verify()),
            written_by if isinstance(written_by, str) else None,
        )

    def verify(self) -> list[str]:
        """Files (paths relative to the folder) that are missing, unreadable or not what the index says."""
        self.check(create=False)
        damaged = [
            self.layout.relative(path)
            for path in (self.layout.marker, self.layout.lock)
            if self.layout.exists(path) and not self._intact(path)
        ]
        for endpoint in self.endpoints():
            store = Store(self, endpoint)
            with self.lock(exclusive=False):
                units, files = store.view()
                # Parts of another version are not damaged: their schema is not this version's to check.
                damaged += [self.layout.relative(p) for p in store.damaged(units.filter(store.current()), files)]
                damaged += [self.layout.relative(p) for p in store.unreadable]
        return sorted(set(damaged))

    def _intact(self, path: Path) -> bool:
        """The marker or the lock: a regular file (the marker with a format), not a link or special file."""
        if path == self.layout.marker:
            return bool(self._marker().get("format"))
        try:
            self.layout.checked(path)
        except OSError:
            return False
        return True

    def prune(self, older_than: timedelta | float) -> int:
        """Remove units fetched longer than ``older_than`` ago (and files no index names): how many units went."""
        age = max_age_of(older_than)
        self.check(create=False)
        if age is None:  # never too old: nothing to remove
            return 0
        if not self.writable():
            raise SnapshotError(f"cannot prune {self.root}: the folder is read-only")
        removed = 0
        for endpoint in self.endpoints():
            store = Store(self, endpoint)
            try:
                with self.lock(exclusive=True):
                    removed += store.commit(drop_before=_now() - age)
            except OSError as exc:
                raise cannot_write(self.root, exc) from None
        self.clean_temporary()
        return removed


class Store:
    """One endpoint's side of a snapshot: look units up, write parts, fold them into the index, read them."""

    def __init__(self, snapshot: Snapshot, endpoint: str) -> None:
        self.snapshot = snapshot
        self.layout = snapshot.layout
        self.endpoint = endpoint
        self.facts = SPECS[endpoint]
        self.unit_dtype, self.unit_column = self.facts.unit_dtype, self.facts.unit_column
        self.schema = _index_schema(endpoint)
        self.unreadable: list[Path] = []  # index or journal files that could not be read (found by view())
        self.damaged_parts: set[str] = set()  # parts found damaged by held(): dropped at the next commit
        self.foreign = 0  # units held() found written under another fingerprint: not read
        self.why: dict[Path, str] = {}  # a damaged file -> what is wrong with it
        self.notices: list[Notice] = []  # warnings for the public function to give, at its caller's line
        # part -> units it was written with (index and journal, before folding): bounds its files' rows
        self._written_with: dict[str, int] = {}

    @property
    def one_unit_per_part(self) -> bool:
        """Whether a part may hold one unit only: its tables have no column naming the unit of a row,
        so a part could not be rewritten without one of several units."""
        return self.unit_column is None

    def _path(self, table: str, part: str) -> Path:
        return self.layout.part_file(self.endpoint, table, part)

    def can_write(self, tables: Sequence[str]) -> bool:
        layout, endpoint = self.layout, self.endpoint
        folders = [self.snapshot.root, layout.folder(endpoint), layout.journal(endpoint)]
        folders += [layout.table(endpoint, t) for t in tables]
        return all(os.access(f, os.W_OK | os.X_OK) for f in folders if f.exists())

    # -- the index ----------------------------------------------------------------------------------

    def _damaged(self, path: Path, exc: Exception, what: str) -> None:
        self.unreadable.append(path)
        why = exc.why if isinstance(exc, Refused) else f"{type(exc).__name__}: {visible(exc)[:200]}"
        self.why[path] = why
        self.notices.append((f"{path} is damaged ({why}): {what}", SnapshotDamagedWarning))

    def _real_folder(self, folder: Path) -> bool:
        """Whether ``folder`` is missing or a real folder; a link or a file in its place is damage."""
        if not self.layout.exists(folder):
            return True
        try:
            self.layout.checked(folder, folder=True)
        except OSError as exc:
            self._damaged(folder, exc, "what it holds is not read, and its units are fetched again")
            return False
        return True

    def _read_frame(
        self, path: Path, schema: pl.Schema, names: Mapping[str, Callable[[pl.Expr], pl.Expr]]
    ) -> pl.DataFrame:
        """An index or file list, its rows bounded by its size before it is decoded, and each column of
        ``names`` true of every distinct value (names as capframe writes them); else it is damaged, and
        empty. Read as a stream into categories: the text columns are never held whole as text."""
        empty = pl.DataFrame(schema=schema)
        if not self.layout.exists(path):
            return empty
        try:
            size = self.layout.checked(path).st_size
            if (rows := self.layout.rows(path)) > _ROWS_PER_BYTE * size + _ROWS_SLACK:
                raise Refused(path, f"states {rows:,} rows in {size:,} bytes: not a file capframe wrote")
            scan = pl.scan_parquet(path, glob=False)
            if (
                "fingerprint" in schema and "fingerprint" not in scan.collect_schema()
            ):  # an index written before fingerprints
                scan = scan.with_columns(fingerprint=pl.lit(None, pl.String))
            frame = scan.select(schema.names()).cast(dict(schema)).collect()  # type: ignore[arg-type]
            checks = [rule(pl.col(name).unique().cast(pl.String)).all() for name, rule in names.items()]
            if not all(frame.select(checks).row(0)):
                raise ValueError("it names parts or tables capframe does not write")
            return frame
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            self._damaged(path, exc, "the units it lists are fetched again")
            return empty

    def _journal(self) -> tuple[list[pl.DataFrame], list[pl.DataFrame], list[Path]]:
        units: list[pl.DataFrame] = []
        files: list[pl.DataFrame] = []
        journal = self.layout.journal(self.endpoint)
        read: list[Path] = []
        if not self._real_folder(journal):
            return units, files, read
        for found in self.layout.entries(journal, re.compile(r".+\.json")):
            path = journal / found.name
            try:
                entry = json.loads(self.layout.read_small(path, _ENTRY_BYTES))
                part = self.layout.part(entry["part"])
                if path.name != f"{part}.json":
                    raise ValueError(f"it is named {path.name} but lists part {part}")
                notes = entry.get("notes", {})
                entry_units = pl.DataFrame(
                    {
                        "host": entry["host"],
                        "source": entry["source"],
                        "unit": entry["units"],
                        "part": part,
                        "fetched_at": datetime.fromisoformat(entry["fetched_at"]),
                        "fingerprint": entry.get("fingerprint"),  # None: written before fingerprints
                        "code": [notes.get(str(u), [None, None])[0] for u in entry["units"]],
                        "message": [notes.get(str(u), [None, None])[1] for u in entry["units"]],
                    },
                    schema=self.schema,
                )
                entry_files = pl.DataFrame(
                    [
                        (part, self.layout.table_name(self.endpoint, table), sha, size)
                        for table, (sha, size) in entry["files"].items()
                    ],
                    schema=FILES,
                    orient="row",
                )
                units.append(entry_units)  # only once the whole entry is read: a damaged one adds nothing
                files.append(entry_files)
                read.append(path)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, pl.exceptions.PolarsError) as exc:
                self._damaged(path, exc, "the units it lists are fetched again")
        return units, files, read

    def view(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(units, files): the index with the journal folded in, each (host, source, unit) once, the
        latest fetch winning. Call under the lock."""
        self.unreadable = []
        index, files = self._read_index()
        journal_units, journal_files, _ = self._journal()
        self._note_written(index, journal_units)
        return self._fold(index, files, journal_units, journal_files)

    def _note_written(self, index: pl.DataFrame, journal_units: list[pl.DataFrame]) -> None:
        written = pl.concat([f.select("part") for f in [index, *journal_units]]).group_by("part").len()
        self._written_with = dict(written.iter_rows())

    def _read_index(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(index, files) as stored. Without the files' checksums no part of the index can be verified:
        the index counts as lost too, and its units are fetched again."""
        if not self._real_folder(self.layout.folder(self.endpoint)):
            return pl.DataFrame(schema=self.schema), pl.DataFrame(schema=FILES)
        part = {"part": lambda names: names.str.contains(_PART_PATTERN)}
        index = self._read_frame(self.layout.index(self.endpoint), self.schema, part)
        path = self.layout.files(self.endpoint)
        files = self._read_frame(path, FILES, part | {"table": lambda names: names.is_in(self.facts.tables)})
        if index.height and not self.layout.exists(path):
            self.unreadable.append(path)
            self.why[path] = "missing"
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
                .sort("fetched_at", pl.col("part").cast(pl.String), maintain_order=True)
                .unique(["host", "source", "unit"], keep="last", maintain_order=True)
            )
            units = pl.concat([units.filter(~repeated), latest])
        files = pl.concat([files, *journal_files]).unique(["part", "table"], keep="last", maintain_order=True)
        return units, files

    def units(self) -> pl.DataFrame:
        with self.snapshot.lock(exclusive=False):
            return self.view()[0]

    # -- checking parts -----------------------------------------------------------------------------

    def damaged(self, units: pl.DataFrame, files: pl.DataFrame, tables: Sequence[str] | None = None) -> list[Path]:
        """Files of the parts ``units`` (index rows) name that are missing, unreadable, or not what the
        index and the file list say: not in the file list, another size or checksum, another schema,
        more rows than their units could have, or (the main table) without a row for a unit indexed to
        its part, or with one twice. What is wrong with each is in ``self.why``. Reads metadata, and
        the main table's unit column only; row counts and unit columns are read 100 files at a time
        (one polars query each: per file, its fixed cost made the lookup of a million ids 10 times
        slower). With ``tables``, only the files of those tables are checked."""
        checked = self.facts.tables if tables is None else tables
        files = files.filter(pl.col("table").is_in(checked))
        bad: dict[Path, str] = {}
        listed: dict[str, list[tuple[str, str, int]]] = {}
        for part, table, sha, size in files.join(units.select("part"), on="part", how="semi").iter_rows():
            listed.setdefault(part, []).append((table, sha, size))
        # A part of refused units only has no files; any other has them all.
        refused = units.group_by("part").agg(pl.col("message").is_not_null().all().alias("refused"))
        refused_only = set(refused.filter("refused")["part"])
        intact: list[tuple[str, str, Path]] = []  # (part, table, path) of files whose bytes and schema are right
        for part in refused["part"]:
            present = {table for table, _, _ in listed.get(part, [])}
            if present or part not in refused_only:
                for table in (t for t in checked if t not in present):
                    bad[self._path(table, part)] = f"is not in {self.layout.files(self.endpoint).name}"
            for table, sha, size in listed.get(part, []):
                path = self._path(table, part)
                why = self._file_damage(table, path, sha, size)
                if why is None:
                    intact.append((part, table, path))
                else:
                    bad[path] = why
        for start in range(0, len(intact), _FILES_AT_ONCE):
            batch = intact[start : start + _FILES_AT_ONCE]
            for (part, _, path), count in zip(batch, self._row_counts([p for _, _, p in batch]), strict=True):
                most = self.facts.rows_per_unit * max(1, self._written_with.get(part, 0))
                if isinstance(count, str) or count > most:
                    bad[path] = (
                        count if isinstance(count, str) else f"states {count:,} rows: more than its units could have"
                    )
        if self.unit_column is not None:
            main = [(part, path) for part, table, path in intact if table == self.facts.main and path not in bad]
            answered = units.filter(pl.col("message").is_null()).select("unit", "part")
            for start in range(0, len(main), _FILES_AT_ONCE):
                bad |= self._units_missing(main[start : start + _FILES_AT_ONCE], answered)
        self.why |= bad
        return list(bad)

    def _file_damage(self, table: str, path: Path, sha: str, size: int) -> str | None:
        """What is wrong with one part file's bytes or schema, or None; nothing of its data is decoded."""
        try:
            if self.layout.sha256(path, size) != sha:
                return "is not the file files.parquet records (its sha256 differs)"
            if dict(_schema(path)) != _stored_schema(self.facts, table):
                return "has columns or types capframe does not write"
        except Refused as exc:
            return exc.why
        except FileNotFoundError:
            return "is missing"
        except (OSError, pl.exceptions.PolarsError) as exc:
            return f"cannot be read ({type(exc).__name__})"
        return None

    def _row_counts(self, paths: Sequence[Path]) -> list[int | str]:
        """Each file's rows, from its metadata (one query for all); what is wrong where that fails."""
        try:
            counts = pl.collect_all([pl.scan_parquet(p, glob=False).select(pl.len()) for p in paths])
            return [int(n.item()) for n in counts]
        except (OSError, pl.exceptions.PolarsError):
            return [self._rows_or_why(path) for path in paths]

    def _rows_or_why(self, path: Path) -> int | str:
        try:
            return self.layout.rows(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            return f"cannot be read ({type(exc).__name__})"

    def _units_missing(self, files: Sequence[tuple[str, Path]], answered: pl.DataFrame) -> dict[Path, str]:
        """Main-table files (part, path) that lack a row of a unit ``answered`` (unit, part: index rows
        with rows) gives their part, or hold one twice: their unit column only, one query for all."""
        assert self.unit_column is not None
        try:
            held = pl.concat(
                [
                    pl.scan_parquet(path, glob=False)
                    .select(pl.col(self.unit_column).alias("unit"))
                    .with_columns(file=pl.lit(number, pl.UInt32))
                    for number, (_, path) in enumerate(files)
                ]
            ).collect()
        except (OSError, pl.exceptions.PolarsError) as exc:
            return {path: f"cannot be read ({type(exc).__name__})" for _, path in files}
        held = held.drop_nulls("unit")  # rows tied to no unit
        twice = set(held.filter(pl.struct("unit", "file").is_duplicated())["file"])
        numbers = pl.DataFrame(
            {"part": [part for part, _ in files], "file": range(len(files))},
            schema={"part": _NAME, "file": pl.UInt32},
        )
        wanted = answered.join(numbers, on="part").select("unit", "file")
        lacking = set(wanted.join(held, on=["unit", "file"], how="anti")["file"])
        return {
            path: "holds a unit twice" if number in twice else "lacks rows of units the index names"
            for number, (_, path) in enumerate(files)
            if number in twice | lacking
        }

    def held(
        self, units: pl.Series, host: str, source: str, max_age: timedelta | None
    ) -> tuple[pl.DataFrame, list[Path]]:
        """(held, damaged): index rows of ``units`` for host and source whose files are intact (and
        fresh enough), and the snapshot files found damaged or missing (the index and journal files
        too). Damaged parts are warned about once."""
        with self.snapshot.lock(exclusive=False):
            index, files = self.view()
            rows = (
                index.lazy()
                .filter((pl.col("host") == host) & (pl.col("source") == source))
                .join(pl.LazyFrame({"unit": units}, schema={"unit": self.unit_dtype}), on="unit", how="semi")
                .collect()
            )
            if max_age is not None:
                # The precise time, not _now()'s whole second: max_age=0 fetches again what came a moment ago.
                rows = rows.filter(pl.col("fetched_at") > datetime.now(UTC) - max_age)
            self.foreign = rows.filter(~self.current()).height
            rows = rows.filter(self.current())
            # Every unit of a needed part, not only those asked: the part is checked against all of them.
            bad = self.damaged(index.join(rows.select("part").unique(), on="part", how="semi"), files)
        if self.foreign:
            self.notices.append((f"{self.written_elsewhere()}; they are fetched again", SnapshotDamagedWarning))
        if bad:
            self.damaged_parts |= {p.stem for p in bad}
            self.notices.append(
                (
                    f"snapshot file(s) missing or damaged: {self._explained(bad)}; their units are fetched again",
                    SnapshotDamagedWarning,
                )
            )
            rows = rows.filter(~pl.col("part").is_in(list(self.damaged_parts)))
        return rows, [*self.unreadable, *bad]

    def current(self) -> pl.Expr:
        """Index rows written under this version's fingerprint: the only ones read. Identical, not
        "compatible": a part stores tidied tables, not the answers, so a column added since cannot be
        filled from it, and one whose type or reading changed would be read as something it is not.
        A row with none was written before fingerprints (an index with ``wire_version``): another version
        too, since what schema wrote it cannot be told."""
        return pl.col("fingerprint").fill_null("") == self.facts.fingerprint

    def written_elsewhere(self) -> str:
        """Why ``self.foreign`` units of the last ``held`` are not read (a sentence without its remedy)."""
        written_by = self.snapshot.written_by()
        made = f" (the folder was made by capframe {written_by})" if written_by else ""
        return (
            f"{self.foreign:,} unit(s) of {self.endpoint} in the snapshot {self.snapshot.root} were written by another "
            f"capframe version{made}, whose {self.endpoint} tables differ from this version's"
        )

    def _explained(self, paths: Sequence[Path]) -> str:
        return named([f"{p} ({self.why[p]})" if p in self.why else str(p) for p in paths])

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
        part = self.layout.new_part()
        fetched_at = _now()
        layout, endpoint = self.layout, self.endpoint
        for folder in (layout.folder(endpoint), layout.journal(endpoint), *(layout.table(endpoint, t) for t in tables)):
            layout.mkdir(folder)
        written: dict[str, list[object]] = {}
        try:
            for name, frame in tables.items():
                stored = frame.select(*(pl.lit(v, pl.String).alias(k) for k, v in columns.items()), pl.all())
                data = _parquet(stored)
                layout.write(self._path(name, part), data)
                written[name] = [_sha256(data), len(data)]
            entry = {
                "part": part,
                "host": host,
                "source": source,
                "units": list(units),
                "fetched_at": fetched_at.isoformat(),
                "fingerprint": self.facts.fingerprint,
                "notes": {str(unit): list(note) for unit, note in notes.items()},
                "files": written,
            }
            layout.write(layout.entry(endpoint, part), json.dumps(entry).encode())
        except BaseException:
            # A part written in half (a full disk) is no part: a glob would count its files.
            for name in written:
                layout.remove(self._path(name, part))
            raise
        return fetched_at

    def commit(self, drop_before: datetime | None = None) -> int:
        """Fold the journal into the index; write again, under new names, parts whose units were fetched
        again (without those), and drop damaged ones; with ``drop_before``, drop units fetched before it.
        Call under the exclusive lock. Returns how many units were dropped.

        No file the stored index names is changed before the index stops naming it: new files are
        written, then the file list grows to name them too, then the index switches (one rename),
        then the file list shrinks to the index, then what is no longer named is removed. A kill at
        any point leaves an index whose every file is intact and listed."""
        self.unreadable = []
        index, files = self._read_index()
        journal_units, journal_files, entries = self._journal()
        self._note_written(index, journal_units)
        stored = pl.concat([f.select("part") for f in [index, *journal_units]]).group_by("part").agg(stored=pl.len())
        units, files = self._fold(index, files, journal_units, journal_files)
        del index, journal_units  # folded into units: at a million units each is 100 MB
        dropped = 0
        if self.damaged_parts:
            units = units.filter(~pl.col("part").is_in(list(self.damaged_parts)))
        if drop_before is not None:
            old = units.filter(pl.col("fetched_at") <= drop_before)
            dropped = old.height
            units = units.filter(pl.col("fetched_at") > drop_before)
        # Parts holding fewer units than they were written with: written again without the others, or
        # deleted when none is left. Joined, not looped over: a snapshot grown by many small pulls holds
        # thousands of parts.
        parts = stored.join(units.group_by("part").agg(kept=pl.len()), on="part", how="left").filter(
            pl.col("kept").fill_null(0) < pl.col("stored")
        )
        retired = set(parts["part"])  # parts no index will name: their files go once the index switched
        # A part of another version is not written again without some units: its tables are not this
        # version's. Its other units go too, and are fetched again when asked.
        foreign = units.filter(~self.current()).join(parts, on="part", how="semi")
        if foreign.height:  # a join copies every row: only when there is something to drop
            units = units.join(foreign.select("part").unique(), on="part", how="anti")
        if self.unit_column is not None:
            shrunk = units.join(parts.filter(pl.col("kept").is_not_null()), on="part", how="semi")
            renamed: dict[str, str] = {}
            added: list[pl.DataFrame] = []
            for part, keep in shrunk.group_by("part", maintain_order=True).agg("unit").iter_rows():
                written = self._rewrite(part, files.filter(pl.col("part") == part), keep, units)
                if written is None:  # damaged: its units are fetched again by the next pull that needs them
                    units = units.filter(pl.col("part") != part)
                    bad = [path for path in self.why if path.stem == part]
                    self.notices.append(
                        (
                            f"snapshot file(s) missing or damaged: {self._explained(bad)}; its other units "
                            "are dropped, and fetched again when asked",
                            SnapshotDamagedWarning,
                        )
                    )
                    continue
                renamed[part], new_files = written
                added.append(new_files)
            if renamed:
                units = units.with_columns(pl.col("part").replace(renamed))
                files = pl.concat([files, *added])
        layout, endpoint = self.layout, self.endpoint
        layout.mkdir(layout.folder(endpoint))
        named_by_index = _by_name(files.join(units.select("part").unique(), on="part", how="semi"))
        if named_by_index.height < files.height:
            layout.write(layout.files(endpoint), _parquet(_by_name(files)))
        layout.write(layout.index(endpoint), _parquet(units))
        layout.write(layout.files(endpoint), _parquet(named_by_index))
        for path in [*entries, *(p for p in self.unreadable if p.parent.name == "journal")]:
            layout.remove(path)
        for part, table in files.filter(pl.col("part").is_in(list(retired))).select("part", "table").iter_rows():
            layout.remove(self._path(table, part))
        self.damaged_parts = set()
        # With the index lost, no file is known to be any run's: every file it does not name now goes.
        lost = {layout.index(endpoint), layout.files(endpoint)} & set(self.unreadable)
        self._remove_orphans(named_by_index, every=bool(lost))
        return dropped

    def _rewrite(
        self, part: str, part_files: pl.DataFrame, keep: list[object], units: pl.DataFrame
    ) -> tuple[str, pl.DataFrame] | None:
        """A part's files written again under a new name, with only the rows of ``keep``: (the new
        name, its file list rows); None when the part is damaged (it is not read)."""
        assert self.unit_column is not None
        if self.damaged(units.filter(pl.col("part") == part), part_files):
            return None
        unit = pl.col(self.unit_column)
        wanted = pl.Series(keep, dtype=self.unit_dtype).implode()
        new = self.layout.new_part()
        rows: list[tuple[str, str, str, int]] = []
        try:
            for table in part_files["table"]:
                frame = (
                    pl.scan_parquet(self._path(table, part), glob=False)
                    .filter(unit.is_null() | unit.is_in(wanted))
                    .collect()
                )
                data = _parquet(frame)
                self.layout.write(self._path(table, new), data)
                rows.append((new, table, _sha256(data), len(data)))
        except pl.exceptions.PolarsError:
            return None
        return new, pl.DataFrame(rows, schema=FILES, orient="row")

    def _remove_orphans(self, files: pl.DataFrame, *, every: bool = False) -> None:
        """Table files no index or journal entry names, old enough not to be a part being written now.
        Only names capframe writes, in real table folders: nothing else in the folder is touched."""
        named = {(table, part) for part, table in files.select("part", "table").iter_rows()}
        journal = [
            e.name.removesuffix(".json") for e in self.layout.entries(self.layout.journal(self.endpoint), _ENTRY)
        ]
        cutoff = time.time() - (0 if every else _STALE)
        for table in self.facts.tables:
            folder = self.layout.table(self.endpoint, table)
            for found in self.layout.entries(folder, _PART_FILE):
                part = found.name.removesuffix(".parquet")
                if (table, part) in named or part in journal:
                    continue
                with contextlib.suppress(OSError):
                    if found.stat(follow_symlinks=False).st_mtime <= cutoff:
                        self.layout.remove(folder / found.name)

    # -- reading ------------------------------------------------------------------------------------

    def paths(self, table: str, parts: Sequence[str]) -> list[Path]:
        """The files of ``table`` of ``parts``, each checked to be a regular file reached without a link."""
        paths = [self._path(table, part) for part in parts]
        for path in paths:
            self.layout.checked(path)
        return paths

    def scan(self, table: str, units: Mapping[str, pl.DataFrame], parts: Sequence[str]) -> pl.LazyFrame:
        """The rows of ``table`` in the files of ``parts``, in that order, each part's rows only those of
        the units ``units`` (part -> its index rows, from ``by_part``) gives it, and rows tied to no
        unit: a unit fetched again whose old part is not yet written again (a run killed before its
        commit) is read once."""
        paths = self.paths(table, parts)
        if self.unit_column is None:
            return pl.scan_parquet(paths, glob=False)
        return pl.concat([self._part_scan(path, units.get(part)) for part, path in zip(parts, paths, strict=True)])

    def _part_scan(self, path: Path, units: pl.DataFrame | None) -> pl.LazyFrame:
        """The rows of one part's file that are those of ``units`` (index rows), or that name no unit."""
        scan = pl.scan_parquet(path, glob=False)
        if self.unit_column is None:
            return scan
        asked = pl.Series(dtype=self.unit_dtype) if units is None else units["unit"]
        return scan.filter(pl.col(self.unit_column).is_null() | pl.col(self.unit_column).is_in(asked.implode()))

    def _lasting_scan(self, table: str, units: Mapping[str, pl.DataFrame], parts: Sequence[str]) -> pl.LazyFrame:
        """:meth:`scan`, for LazyFrames handed to the user, collected whenever they like: a file a later
        pull into the folder (fetching its units again) or a prune removed since is a SnapshotError that
        says what to do, not polars' FileNotFoundError. The parts are read one at a time, in order."""
        paths = self.paths(table, parts)
        root = self.snapshot.root
        # The columns in the files' order, as a fetch reads them (the stored schema is in the models'
        # order); every file in it, whatever order a crafted one has.
        schema = _schema(paths[0])

        def read(
            columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, _batch_size: int | None
        ) -> Iterator[pl.DataFrame]:
            left = n_rows
            for part, path in zip(parts, paths, strict=True):
                frame = self._part_scan(path, units.get(part))
                frame = frame if predicate is None else frame.filter(predicate)
                frame = frame.select(list(schema) if columns is None else columns)
                try:
                    rows = frame.collect() if left is None else frame.head(left).collect()
                except FileNotFoundError:
                    raise SnapshotError(
                        f"a file of the snapshot {root} that these LazyFrames read is gone: a later pull into "
                        "the same folder fetched its units again and replaced it, or a prune removed it. "
                        "Collect a sink's LazyFrames (or .sink_parquet them) before pulling into or pruning "
                        "its folder again; call the sink again to read the snapshot as it is now"
                    ) from None
                yield rows
                if left is not None and (left := left - rows.height) <= 0:
                    return

        return register_io_source(read, schema=schema)

    def scans(
        self,
        units: pl.DataFrame,
        parts: Sequence[str],
        files: pl.DataFrame,
        tables: Sequence[str],
        dropped: Sequence[str],
    ) -> dict[str, pl.LazyFrame]:
        """What :meth:`read` would read, as LazyFrames that read the files when collected: only the
        rows of ``units``; an empty frame of the stored schema for a table no part has a file of."""
        listed = set(files.select("part", "table").iter_rows())
        of_part = by_part(units)
        out: dict[str, pl.LazyFrame] = {}
        for table in tables:
            in_list = [part for part in parts if (part, table) in listed]
            try:
                scan = (
                    self._lasting_scan(table, of_part, in_list)
                    if in_list
                    else pl.LazyFrame(schema=_stored_schema(self.facts, table))
                )
            except OSError as exc:  # checked before the pull read the index: changed since
                raise SnapshotError(
                    f"a file of the snapshot {self.snapshot.root} could not be read ({type(exc).__name__}: "
                    f"{visible(exc)[:200]}); it changed after it was checked: run again"
                ) from None
            out[table] = scan.drop(dropped)
        return out

    def read(
        self,
        units: pl.DataFrame,
        parts: Sequence[str],
        files: pl.DataFrame,
        tables: Sequence[str],
        keep: Sequence[str],
        dropped: Sequence[str],
    ) -> dict[str, pl.DataFrame | None]:
        """The tables of ``units`` (index rows: unit, part) from the files of ``parts``, in that order;
        None for a table no part has a file of. The files are those ``files`` (the index's) lists: one
        gone since it was checked is an error, not rows silently missing. Columns in ``dropped`` (host,
        source) are left out. Tables not in ``keep`` are read for their schema only (memory)."""
        listed = set(files.select("part", "table").iter_rows())
        of_part = by_part(units)
        out: dict[str, pl.DataFrame | None] = {}
        with self.snapshot.lock(exclusive=False):
            for table in tables:
                in_list = [part for part in parts if (part, table) in listed]
                if not in_list:
                    out[table] = None
                    continue
                try:
                    if table not in keep:
                        schema = _schema(self.paths(table, in_list[:1])[0])
                        out[table] = pl.DataFrame(schema=schema).drop(dropped)
                        continue
                    # A file read is a chunk of every column, whose buffers outweigh its rows: files are read
                    # 100 at a time and made contiguous (a million ids read at once held 400 MB for 125 MB).
                    # The filter is pushed into the reader: rows of units not asked are never materialised.
                    chunks = []
                    for i in range(0, len(in_list), _FILES_AT_ONCE):
                        scan = self.scan(table, of_part, in_list[i : i + _FILES_AT_ONCE]).drop(dropped)
                        chunks.append(scan.collect().rechunk())
                    out[table] = pl.concat(chunks)
                except (OSError, pl.exceptions.PolarsError) as exc:
                    # Files are checked before a pull reads them: this one changed since (another process?).
                    unreadable = [p for p in (self._path(table, part) for part in in_list) if not self._readable(p)]
                    raise SnapshotError(
                        f"{named(unreadable) or 'a file'} of the snapshot "
                        f"{self.snapshot.root} could not be read ({type(exc).__name__}: {visible(exc)[:200]}); it "
                        "changed after it was checked: run again, and a damaged file is fetched again"
                    ) from None
        return out

    def _readable(self, path: Path) -> bool:
        try:
            self.layout.rows(path)
            _schema(path)
        except (OSError, pl.exceptions.PolarsError):
            return False
        return True


def by_part(units: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Index rows by part: polars frames, not Python lists (a million units)."""
    return {str(key[0]): rows for key, rows in units.partition_by("part", as_dict=True).items()}


_ENTRY = re.compile(rf"{_PART.pattern}\.json")
_PART_FILE = re.compile(rf"{_PART.pattern}\.parquet")
