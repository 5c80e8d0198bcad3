"""The snapshot behind cache_dir: incremental, offline, shareable, self-healing, never double-counting."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandera.polars as pa
import polars as pl
import pytest

import capframe
from capframe import schemas
from capframe.sandbox import Sandbox

CUSTOMERS = 3_000
FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
ENV = ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY", "CAPILLARY_CLIENT_SECRET")


def sandbox(**options: Any) -> capframe.Client:
    return capframe.Client.sandbox(CUSTOMERS, **{**FAST, **options})


def sent(client: capframe.Client) -> int:
    assert client.sandbox_org is not None
    return len(client.sandbox_org.request_log)


IDS = Sandbox(CUSTOMERS).customer_ids(1_100)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def assert_same(got: capframe.CustomerTables, want: capframe.CustomerTables) -> None:
    for name, frame in want.tables().items():
        assert got.tables()[name].equals(frame), name


# --- incremental ----------------------------------------------------------------------------------


def test_one_added_id_costs_one_request_wherever_it_is(tmp_path: Path) -> None:
    client = sandbox()
    capframe.fetch_customers(IDS[1:1001], "INSTORE", client=client, cache_dir=tmp_path)
    assert sent(client) == 10
    capframe.fetch_customers([IDS[0], *IDS[1:1001]], "INSTORE", client=client, cache_dir=tmp_path)
    assert sent(client) == 11
    # Another order, a subset, another batch size: nothing to ask.
    for ids, size in ((IDS[:1001][::-1], 100), (IDS[500:700], 100), (IDS[:1001], 37)):
        capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=tmp_path, batch_size=size)
    assert sent(client) == 11
    # k new ids: ceil(k / batch_size) requests.
    capframe.fetch_customers(IDS, "INSTORE", client=client, cache_dir=tmp_path, batch_size=40)
    assert sent(client) == 11 + 3  # 99 new ids in requests of 40


def test_overlapping_pulls_and_two_sources_are_counted_once_each(tmp_path: Path) -> None:
    client = sandbox()
    capframe.fetch_customers(IDS[:1010], "INSTORE", client=client, cache_dir=tmp_path)
    capframe.fetch_customers(IDS[5:1005], "INSTORE", client=client, cache_dir=tmp_path, max_age=0)  # fetched again
    capframe.fetch_customers(IDS[:300], "ECOMMERCE", client=client, cache_dir=tmp_path)
    scanned = capframe.scan_customers(tmp_path).collect()
    assert scanned.height == 1010 + 300
    assert scanned.group_by("pull_source").len().sort("pull_source").rows() == [("ECOMMERCE", 300), ("INSTORE", 1010)]
    assert capframe.scan_customers(tmp_path, source="instore").collect()["customer_id"].is_unique().all()
    # A reader of the raw files (DuckDB, Spark) sees the same: a unit fetched again replaced the old one.
    raw = pl.read_parquet(tmp_path / "customers" / "customers" / "*.parquet")
    assert raw.height == 1310
    assert raw.select("pull_source", "customer_id").is_unique().all()
    identifiers = capframe.scan_customers(tmp_path, "identifiers", source="INSTORE").collect()
    assert (
        identifiers.height == capframe.fetch_customer_tables(IDS[:1010], "INSTORE", client=sandbox()).identifiers.height
    )


def test_max_age_zero_fetches_again_what_came_a_moment_ago(tmp_path: Path) -> None:
    """Fetch times are stored to the second; a unit fetched this very second is not "younger than 0 s"."""
    client = sandbox()
    capframe.fetch_customers(IDS[:5], "INSTORE", client=client, cache_dir=tmp_path)
    before = sent(client)
    capframe.fetch_customers(IDS[:5], "INSTORE", client=client, cache_dir=tmp_path, max_age=0)
    assert sent(client) == before + 1


def test_max_age_fetches_old_units_again_and_provenance_states_the_times(tmp_path: Path) -> None:
    client = sandbox()
    first = capframe.fetch_customer_tables(IDS[:50], "INSTORE", client=client, cache_dir=tmp_path)
    time.sleep(1.1)
    mixed = capframe.fetch_customer_tables(IDS[:100], "INSTORE", client=client, cache_dir=tmp_path)
    assert first.provenance is not None
    assert mixed.provenance is not None
    assert (mixed.provenance.read, mixed.provenance.fetched) == (50, 50)
    assert mixed.provenance.fetched_at == first.provenance.fetched_at < mixed.provenance.last_fetched_at  # type: ignore[operator]
    before = sent(client)
    fresh = capframe.fetch_customer_tables(IDS[:100], "INSTORE", client=client, cache_dir=tmp_path, max_age=0.5)
    assert sent(client) - before == 1
    assert fresh.provenance is not None
    assert fresh.provenance.fetched_at > first.provenance.fetched_at
    assert (
        capframe.fetch_customers(
            IDS[:100], "INSTORE", client=client, cache_dir=tmp_path, max_age=timedelta(days=1)
        ).height
        == 100
    )
    assert sent(client) - before == 1
    with pytest.raises(capframe.InvalidArgumentError, match="max_age"):
        capframe.fetch_customers(IDS[:1], "INSTORE", client=client, cache_dir=tmp_path, max_age=-1)


# --- offline and shareable ------------------------------------------------------------------------


@pytest.mark.usefixtures("no_credentials")
def test_a_complete_snapshot_needs_no_client_and_no_network_even_copied_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [*IDS[:120], *Sandbox(CUSTOMERS).unknown_ids(2)]
    first = capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), cache_dir=tmp_path / "snap")
    shutil.copytree(tmp_path / "snap", tmp_path / "copy")
    shutil.rmtree(tmp_path / "snap")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a complete snapshot must not open a connection")

    monkeypatch.setattr(httpx.AsyncClient, "send", no_network)
    again = capframe.fetch_customer_tables(ids[::-1], "INSTORE", cache_dir=tmp_path / "copy")
    assert_same(
        capframe.fetch_customer_tables(ids[::-1], "INSTORE", cache_dir=tmp_path / "copy"),
        again,
    )
    assert again.customers["customer_id"].to_list() == ids[::-1]
    assert again.provenance == first.provenance
    monkeypatch.setenv("CAPILLARY_HOST", Sandbox.BASE_URL)  # a host but no credentials: the same
    assert capframe.fetch_customers(ids, "INSTORE", cache_dir=tmp_path / "copy").equals(first.customers)

    with pytest.raises(
        capframe.ConfigurationError, match=r"1 of 123 customer ids are not in the snapshot.*CAPILLARY_USERNAME"
    ):
        capframe.fetch_customers([*ids, IDS[500]], "INSTORE", cache_dir=tmp_path / "copy")


@pytest.mark.usefixtures("no_credentials")
def test_several_hosts_and_none_chosen_is_an_error_listing_them(tmp_path: Path) -> None:
    org = Sandbox(CUSTOMERS)
    for host in ("http://127.0.0.1:1", "http://127.0.0.1:2"):
        client = capframe.Client(
            host, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, transport=org.transport(), **FAST
        )
        capframe.fetch_customers(IDS[:5], "INSTORE", client=client, cache_dir=tmp_path)
    with pytest.raises(capframe.ConfigurationError, match=r"several hosts \(http://127.0.0.1:1, http://127.0.0.1:2\)"):
        capframe.fetch_customers(IDS[:5], "INSTORE", cache_dir=tmp_path)


@pytest.mark.usefixtures("no_credentials")
def test_units_held_for_another_host_or_source_are_named_when_none_can_be_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only "set CAPILLARY_HOST" to an analyst whose CAPILLARY_HOST is set: what the snapshot holds instead."""
    capframe.fetch_customers(IDS[:5], "INSTORE", client=sandbox(), cache_dir=tmp_path)
    with pytest.raises(
        capframe.ConfigurationError,
        match=rf"5 of 5 customer ids are not in the snapshot .* for {Sandbox.BASE_URL} and source ECOMMERCE "
        rf"\(it holds {Sandbox.BASE_URL} INSTORE\)",
    ):
        capframe.fetch_customers(IDS[:5], "ECOMMERCE", cache_dir=tmp_path)
    monkeypatch.setenv("CAPILLARY_HOST", "http://127.0.0.1:9")
    with pytest.raises(capframe.ConfigurationError, match=r"for http://127.0.0.1:9 and source INSTORE \(it holds"):
        capframe.fetch_customers(IDS[:5], "INSTORE", cache_dir=tmp_path)


# --- self-healing: the damaged-snapshot catalogue -------------------------------------------------


def _part_files(root: Path, table: str) -> list[Path]:
    return sorted((root / "customers" / table).glob("*.parquet"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _swap(a: Path, b: Path) -> None:
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)


def _unreadable(path: Path) -> None:
    path.unlink()
    path.mkdir()  # chmod 000 does not stop root: a folder where the file was cannot be read by anyone


DAMAGE: dict[str, Callable[[Path], Path]] = {
    "truncated": lambda root: (_truncate(p := _part_files(root, "identifiers")[1]), p)[1],
    "garbage": lambda root: (p := _part_files(root, "customers")[0], p.write_bytes(b"garbage" * 50))[0],
    "empty": lambda root: (p := _part_files(root, "cards")[1], p.write_bytes(b""))[0],
    "missing table file": lambda root: (p := _part_files(root, "profiles")[0], p.unlink())[0],
    "swapped files": lambda root: (_swap(*_part_files(root, "fields")[:2]), _part_files(root, "fields")[0])[1],
    "unreadable file": lambda root: (p := _part_files(root, "segments")[1], _unreadable(p))[0],
    "garbage index": lambda root: (p := root / "customers" / "index.parquet", p.write_bytes(b"\x00garbage"))[0],
    # The checksums lost: no file can be verified, not even a part damaged since (read, it crashed every run).
    "garbage checksums": lambda root: (
        _part_files(root, "profiles")[0].write_bytes(b"garbage"),
        p := root / "customers" / "files.parquet",
        p.write_bytes(b"garbage"),
    )[1],
    "missing checksums": lambda root: (p := root / "customers" / "files.parquet", p.unlink())[0],
}
LOST = {"swapped files": 40, "garbage index": 40, "garbage checksums": 40, "missing checksums": 40}  # else 20


@pytest.mark.parametrize("kind", [*DAMAGE, "not a directory", "read-only", "full disk", "two writers", "capframe 0.1"])
def test_a_damaged_or_unusable_snapshot_is_healed_or_refused_with_a_capframe_error(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = IDS[:60]
    clean = capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), batch_size=20)
    root = tmp_path / "snap"
    if kind == "two writers":
        _two_writers(root, tmp_path)
        return
    if kind == "not a directory":
        root.write_text("a file")
        client = sandbox()
        with pytest.raises(capframe.SnapshotError, match="is a file, not a folder"):
            capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=root)
        assert sent(client) == 0
        return
    if kind == "capframe 0.1":
        (root / "customers").mkdir(parents=True)
        (root / "capframe.json").write_text('{"pulls": {}}')
        (root / "customers" / "0123abcd.parquet").write_bytes(b"PAR1")
        with pytest.raises(capframe.SnapshotError, match=r"capframe 0\.1.*delete it"):
            capframe.fetch_customers(ids, "INSTORE", client=sandbox(), cache_dir=root)
        return
    for held in (ids[:20], ids[20:40]):  # two pulls: two parts (one pull's requests would be one part)
        capframe.fetch_customer_tables(held, "INSTORE", client=sandbox(), batch_size=20, cache_dir=root)
    if kind == "read-only":
        # root is not stopped by permissions: what capframe asks (os.access) is answered as for another user.
        monkeypatch.setattr("capframe._snapshot.os.access", lambda path, mode: not mode & os.W_OK)
        client = sandbox()
        assert_same(
            capframe.fetch_customer_tables(ids[:40], "INSTORE", client=client, cache_dir=root),
            clean_of(ids[:40]),
        )
        with pytest.raises(capframe.SnapshotError, match=r"20 of 60 customer ids are not in the snapshot .* read-only"):
            capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=root)
        assert sent(client) == 0
        return
    if kind == "full disk":

        def full(layout: object, target: Path, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("capframe._snapshot.Layout.write", full)
        with pytest.raises(capframe.SnapshotError, match="the disk is full") as caught:
            capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), batch_size=20, cache_dir=root)
        assert caught.value.partial is not None
        assert_same(caught.value.partial, clean)  # type: ignore[arg-type]
        return
    damaged = DAMAGE[kind](root)
    client = sandbox()
    with pytest.warns(capframe.SnapshotDamagedWarning, match=damaged.name) as record:
        # batch_size 10: a group of 5 requests and more, so the healed snapshot has two parts to damage again
        healed = capframe.fetch_customer_tables(ids, "INSTORE", client=client, batch_size=10, cache_dir=root)
    said = [str(w.message) for w in record]
    assert len(said) == len(set(said)), said  # each damage said once
    assert_same(healed, clean)
    requests = (20 + LOST.get(kind, 20)) // 10  # the 20 new ids, and what the damage lost
    assert sent(client) == requests
    raw = pl.read_parquet(root / "customers" / "customers" / "*.parquet")
    assert sorted(raw["customer_id"]) == sorted(ids)
    assert capframe.Snapshot(root).verify() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=root)
    assert sent(client) == requests
    assert_same(again, clean)
    # With no way to fetch again, the same damage is an error that names the file and what to do.
    damaged = DAMAGE[kind](root)
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        capframe.SnapshotError, match=rf"{damaged.name}.* no credentials to fetch .*again.*: set CAPILLARY_HOST"
    ) as refused:
        capframe.fetch_customer_tables(ids, "INSTORE", cache_dir=root)
    assert "fetched again" not in str(refused.value)  # what a pull with credentials does, not this one


def _written_by_another_version(root: Path, how: str) -> None:
    """Parts as another capframe version leaves them: its fingerprint, or (capframe 0.2) none but a wire_version."""
    path = root / "customers" / "index.parquet"
    index = pl.read_parquet(path)
    if how == "another fingerprint":
        index = index.with_columns(fingerprint=pl.lit("0123456789abcdef"))
    else:
        index = index.drop("fingerprint").with_columns(wire_version=pl.lit(2, pl.Int64))
    index.write_parquet(path)


@pytest.mark.parametrize("how", ["another fingerprint", "no fingerprint"])
def test_parts_written_by_another_version_are_fetched_again_online_and_refused_offline(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part records the fingerprint of the schemas that wrote it: one of another capframe version
    (a column added since, say) is never read into this version's tables, nor called damaged."""
    ids = IDS[:30]
    root = tmp_path / "snap"
    clean = capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), cache_dir=root)
    _written_by_another_version(root, how)
    assert capframe.Snapshot(root).verify() == []  # not damaged: another version's
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        capframe.SnapshotError,
        match=r"30 unit\(s\) of customers in the snapshot .* written by another capframe version .*: read it with the capframe "
        r"version that wrote it, or fetch them again: set CAPILLARY_HOST",
    ):
        capframe.fetch_customer_tables(ids, "INSTORE", cache_dir=root)
    with pytest.raises(capframe.SnapshotError, match="written by another capframe version"):
        capframe.scan_customers(root)
    client = sandbox()
    with pytest.warns(capframe.SnapshotDamagedWarning, match="written by another capframe version.* fetched again"):
        healed = capframe.fetch_customer_tables(ids[:20], "INSTORE", client=client, cache_dir=root)
    assert_same(healed, clean_of(ids[:20]))
    assert sent(client) == 1
    # The 10 others shared the refetched units' part: gone with it, fetched again when asked.
    assert capframe.Snapshot(root).info().units["customers"] == 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=root), clean)
    assert sent(client) == 2


def test_a_fingerprint_is_derived_from_the_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a column to a stored table, or a check to its model, changes the fingerprint: no number
    to bump by hand."""
    facts = capframe._endpoints.SPECS["customers"]
    stored = facts.table_schemas()
    added = dataclasses.replace(
        facts, table_schemas=lambda: {**stored, "customers": {**stored["customers"], "x": pl.String()}}
    )
    assert added.fingerprint != facts.fingerprint
    assert dataclasses.replace(facts).fingerprint == facts.fingerprint

    assert len({f.fingerprint for f in capframe._endpoints.SPECS.values()}) == len(capframe._endpoints.SPECS)

    class Tighter(schemas.Segments):  # a check added: parts validated by the old rules are another version's
        segment: pl.String = pa.Field(isin=["Activity segment"])

    # The rules are read from the models' contracts, which tests/test_contract.py keeps what the models
    # say. Only a copy's fingerprint is taken under the patch: the registered specs cache theirs, and
    # a cached one of the patched rules made a later pull in this worker call its own parts foreign.
    with monkeypatch.context() as tighter:
        tighter.setitem(capframe._contract.CONTRACTS, "Segments", capframe._contract.of_model(Tighter))
        assert dataclasses.replace(facts).fingerprint != facts.fingerprint


def test_a_disk_that_fills_mid_part_leaves_no_file_a_glob_would_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part's table files written before the disk filled are removed, not left for a glob to count twice."""
    from capframe import _snapshot

    write, calls = _snapshot.Layout.write, iter(range(1000))

    def fills_up(layout: _snapshot.Layout, target: Path, data: bytes) -> None:
        if next(calls) >= 4:  # the first part's fourth file (the marker is the first write)
            raise OSError(errno.ENOSPC, "No space left on device")
        write(layout, target, data)

    monkeypatch.setattr("capframe._snapshot.Layout.write", fills_up)
    with pytest.raises(capframe.SnapshotError, match="the disk is full"):
        capframe.fetch_customers(IDS[:100], "INSTORE", client=sandbox(), batch_size=10, cache_dir=tmp_path)
    monkeypatch.setattr("capframe._snapshot.Layout.write", write)
    capframe.fetch_customers(IDS[:100], "INSTORE", client=sandbox(), batch_size=10, cache_dir=tmp_path)
    raw = pl.read_parquet(tmp_path / "customers" / "customers" / "*.parquet")
    assert sorted(raw["customer_id"]) == sorted(IDS[:100])


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_file_damaged_after_it_was_checked_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """Another process damaging or deleting a file between a pull's check and its read: which file, not
    only "a file"; a deleted one is not skipped (its rows would be lost without a word)."""
    capframe.fetch_customers(IDS[:20], "INSTORE", client=sandbox(), cache_dir=tmp_path)
    victim = _part_files(tmp_path, "identifiers")[0]
    held = capframe._snapshot.Store.held

    def held_then_damaged(*args: Any, **kwargs: Any) -> Any:
        found = held(*args, **kwargs)
        victim.write_bytes(b"garbage") if damage == "garbage" else victim.unlink()
        return found

    monkeypatch.setattr(capframe._snapshot.Store, "held", held_then_damaged)
    with pytest.raises(capframe.SnapshotError, match=rf"{victim}.* could not be read .*run again"):
        capframe.fetch_customer_tables(IDS[:20], "INSTORE", client=sandbox(), cache_dir=tmp_path)


def clean_of(ids: list[int]) -> capframe.CustomerTables:
    return capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), batch_size=20)


_WRITER = textwrap.dedent(
    """
    import sys, capframe
    source, start, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = capframe.Client.sandbox(3000, requests_per_minute=None, latency=0.01)
    ids = client.sandbox_org.customer_ids(400)[start:start + 300]
    tables = capframe.fetch_customer_tables(ids, source, client=client, batch_size=10, cache_dir=root, progress=False)
    print(tables.provenance.fetched_at.isoformat(), tables.provenance.last_fetched_at.isoformat())
    """
)


def _two_writers(root: Path, tmp_path: Path) -> None:
    """Two processes, two sources and overlapping ids, one folder: nothing lost, and a rerun states
    what each run stated."""
    runs = [("INSTORE", 0), ("ALL", 50), ("INSTORE", 100)]
    env = {**os.environ, "PYTHONPATH": str(Path(capframe.__file__).parent.parent)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, s, str(n), str(root)], stdout=subprocess.PIPE, text=True, env=env
        )
        for s, n in runs[:2]
    ]
    stated = [w.communicate(timeout=120)[0].split() for w in writers]
    assert all(w.returncode == 0 for w in writers)
    org = Sandbox(3000)
    for (source, start), times in zip(runs[:2], stated, strict=True):
        client = capframe.Client(
            Sandbox.BASE_URL, username="u", password="p", transport=httpx.MockTransport(_refuse), max_retries=0
        )
        ids = org.customer_ids(400)[start : start + 300]
        tables = capframe.fetch_customer_tables(ids, source, client=client, cache_dir=root)
        assert tables.provenance is not None
        assert [tables.provenance.fetched_at.isoformat(), tables.provenance.last_fetched_at.isoformat()] == times  # type: ignore[union-attr]
    assert capframe.Snapshot(root).verify() == []
    assert capframe.Snapshot(root).info().units == {"customers": 600}


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError("a rerun of a complete snapshot sends no request")


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    capframe.fetch_customers(IDS[:10], "INSTORE", client=sandbox(), cache_dir=tmp_path)
    stale, fresh = tmp_path / "customers" / "customers" / ".old.tmp", tmp_path / ".new.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    capframe.fetch_customers(IDS[:20], "INSTORE", client=sandbox(), cache_dir=tmp_path)
    assert not stale.exists()
    assert fresh.exists()  # perhaps another run's file being written


@pytest.mark.parametrize("kind", ["garbage", "missing table file", "garbage index", "garbage checksums"])
def test_scanning_a_damaged_snapshot_is_a_snapshot_error_naming_the_file(kind: str, tmp_path: Path) -> None:
    """Not polars' ComputeError or FileNotFoundError when the LazyFrame is collected, nor "holds no table"."""
    for held in (IDS[:20], IDS[20:40]):
        capframe.fetch_customers(held, "INSTORE", client=sandbox(), cache_dir=tmp_path)
    damaged = DAMAGE[kind](tmp_path)
    table = damaged.parent.name  # customers/index.parquet: the customers table
    with pytest.raises(capframe.SnapshotError, match=rf"{damaged.name}.*damaged or missing.*cache_dir"):
        capframe.scan_customers(tmp_path, table).collect()
    with pytest.warns(capframe.SnapshotDamagedWarning):
        capframe.fetch_customers(IDS[:40], "INSTORE", client=sandbox(), cache_dir=tmp_path)  # heals it
    want = capframe.fetch_customer_tables(IDS[:40], "INSTORE", client=sandbox()).tables()[table]
    assert capframe.scan_customers(tmp_path, table).collect().height == want.height


# --- inspect and manage ---------------------------------------------------------------------------


def test_info_verify_and_prune(tmp_path: Path) -> None:
    client = sandbox()
    capframe.fetch_customers(IDS[:30], "INSTORE", client=client, cache_dir=tmp_path, batch_size=10)
    capframe.fetch_children(("mobile", "917799889933"), client=client, cache_dir=tmp_path)
    snapshot = capframe.Snapshot(tmp_path)
    info = snapshot.info()
    assert info.hosts == (client.base_url,)
    assert info.sources == ("INSTORE",)
    assert info.units == {"customers": 30, "children": 1}
    assert info.first_fetched_at is not None
    assert info.bytes > 0
    assert info.damaged == ()
    assert "30 units" in str(info)
    victim = next((tmp_path / "customers" / "identifiers").glob("*.parquet"))
    victim.write_bytes(b"broken")
    assert snapshot.verify() == [str(victim.relative_to(tmp_path))]
    assert snapshot.prune(timedelta(days=1)) == 0
    assert snapshot.prune(0) == 31
    assert snapshot.info().units == {"customers": 0, "children": 0}
    assert not list((tmp_path / "customers" / "customers").glob("*.parquet"))


# --- children -------------------------------------------------------------------------------------


def test_children_walks_are_kept_whatever_the_page_size(tmp_path: Path) -> None:
    client = sandbox()
    org = client.sandbox_org
    assert org is not None
    parents = [(f.identifier_type, f.identifier_value) for f in org.families() if f.entity_type == "parentCustomer"][:5]
    first = capframe.fetch_children_tables(parents, client=client, cache_dir=tmp_path, page_size=7)
    before = sent(client)
    again = capframe.fetch_children_tables(parents[::-1][:3], client=client, cache_dir=tmp_path, page_size=50)
    assert sent(client) == before
    assert again.provenance is not None
    assert (again.provenance.read, again.provenance.fetched) == (3, 0)
    keys = ["parent_type", "parent_value", "customer_id"]
    assert again.children.sort(keys).equals(
        first.children.filter(
            pl.struct(keys[:2]).is_in([dict(zip(keys[:2], p, strict=True)) for p in parents[::-1][:3]])
        ).sort(keys)
    )
    scanned = capframe.scan_children(tmp_path).collect()
    assert scanned.height == first.children.height
    assert set(scanned["association"]) == {"parentCustomer"}


def test_a_children_pull_killed_with_sigkill_resumes_from_its_snapshot(tmp_path: Path) -> None:
    """A real SIGKILL mid-walks: the rerun walks only the parents not on disk, and returns what a clean run does."""
    snap = tmp_path / "snap"
    org = Sandbox(CUSTOMERS)
    # Families of up to four pages (the sandbox's family of 1,234 children alone was four fifths of the
    # requests of the three pulls here), walked slowly enough to be killed part way.
    parents = [
        (f.identifier_type, f.identifier_value)
        for f in org.families()
        if f.entity_type == "parentCustomer" and len(f.child_ids) <= 20
    ]
    script = textwrap.dedent(
        f"""
        import capframe
        client = capframe.Client.sandbox({CUSTOMERS}, latency=0.1, requests_per_minute=None, concurrency=2)
        capframe.fetch_children_tables({parents!r}, client=client, page_size=5, cache_dir={str(snap)!r}, progress=False)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(capframe.__file__).parent.parent)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    journal = snap / "children" / "journal"
    try:
        deadline = time.monotonic() + 60
        while len(list(journal.glob("*.json")) if journal.is_dir() else []) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    done = len(list(journal.glob("*.json")))
    assert 5 <= done < len(parents)  # killed part way

    client = sandbox()
    resumed = capframe.fetch_children_tables(parents, client=client, page_size=5, cache_dir=snap)
    assert resumed.provenance is not None
    assert (resumed.provenance.read, resumed.provenance.fetched) == (done, len(parents) - done)
    clean = capframe.fetch_children_tables(parents, client=sandbox(), page_size=5)
    for name, frame in clean.tables().items():
        assert frame.equals(resumed.tables()[name]), name
    before = sent(client)
    capframe.fetch_children_tables(parents, client=client, page_size=50, cache_dir=snap)
    assert sent(client) == before


@pytest.mark.usefixtures("no_credentials")
def test_a_cache_dir_whose_name_looks_like_a_glob_is_read_as_named(tmp_path: Path) -> None:
    """polars reads a path with ``[`` as a glob unless told not to: "data[2024]" matched nothing."""
    root = tmp_path / "data[2024]"
    first = capframe.fetch_customer_tables(IDS[:20], "INSTORE", client=sandbox(), cache_dir=root)
    assert_same(capframe.fetch_customer_tables(IDS[:20], "INSTORE", cache_dir=root), first)
    assert capframe.scan_customers(root, "identifiers").collect().height == first.identifiers.height
    assert capframe.Snapshot(root).verify() == []
