"""sink_customers / sink_customer_tables: a pull into a snapshot whose tables come back lazily, read
from the snapshot when collected; collected, the same tables as the in-memory fetch."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

import capframe
from capframe.sandbox import Faults, Sandbox

CUSTOMERS = 2_000
SEED = 3
FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
ORG = Sandbox(CUSTOMERS, seed=SEED)
# Known ids in an order of their own, and two the organisation does not know (rows with success=False).
IDS = [*ORG.customer_ids(450)[::-1], *ORG.unknown_ids(2)]
ENV = ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY", "CAPILLARY_CLIENT_SECRET")


def sandbox(faults: Faults | None = None, **options: Any) -> capframe.Client:
    return capframe.Client.sandbox(CUSTOMERS, seed=SEED, faults=faults, **{**FAST, **options})


def collected(tables: dict[str, pl.LazyFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame.collect() for name, frame in tables.items()}


def assert_equal(got: dict[str, pl.DataFrame], want: capframe.CustomerTables) -> None:
    assert list(got) == list(want.NAMES)
    for name, frame in want.tables().items():
        assert got[name].schema == frame.schema, name
        assert got[name].equals(frame), f"{name}: {got[name].height} rows against {frame.height}"


@pytest.fixture(scope="module")
def in_memory() -> capframe.CustomerTables:
    return capframe.fetch_customer_tables(IDS, "INSTORE", client=sandbox(), batch_size=40)


def test_the_lazy_tables_are_the_in_memory_tables_and_hold_only_the_ids_asked(
    tmp_path: Path, in_memory: capframe.CustomerTables
) -> None:
    # The snapshot holds more than this pull asks: its LazyFrames must not show the others.
    capframe.fetch_customers(ORG.customer_ids(900), "INSTORE", client=sandbox(), cache_dir=tmp_path)
    tables = capframe.sink_customer_tables(IDS, "INSTORE", tmp_path, client=sandbox(), batch_size=40)
    assert all(isinstance(frame, pl.LazyFrame) for frame in tables.values())
    assert_equal(collected(tables), in_memory)
    customers = capframe.sink_customers(IDS, "INSTORE", tmp_path, client=sandbox())
    assert customers.collect().equals(in_memory.customers)


def test_a_sink_into_a_new_folder_reruns_offline(
    tmp_path: Path, in_memory: capframe.CustomerTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sandbox()
    tables = capframe.sink_customer_tables(IDS, "INSTORE", tmp_path, client=client, batch_size=40)
    assert_equal(collected(tables), in_memory)
    for name in ENV:
        monkeypatch.delenv(name, raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a complete snapshot must not open a connection")

    monkeypatch.setattr(httpx.AsyncClient, "send", no_network)
    assert_equal(collected(capframe.sink_customer_tables(IDS, "INSTORE", tmp_path)), in_memory)
    assert_equal(capframe.fetch_customer_tables(IDS, "INSTORE", cache_dir=tmp_path).tables(), in_memory)
    again = asyncio.run(capframe.asink_customers(IDS[:10], "INSTORE", tmp_path))
    assert again.collect().equals(in_memory.customers.head(10))


def test_a_failed_request_is_rows_and_a_fetch_error_holding_the_lazy_tables(
    tmp_path: Path, in_memory: capframe.CustomerTables
) -> None:
    # Every attempt of the first request fails: its ids are failed rows; the rest is what the snapshot stored.
    client = sandbox(Faults(script=["503", "503"]), max_retries=1, max_concurrency=1)
    with pytest.raises(capframe.FetchError, match=r"40 of 452 customer ids could not be fetched") as caught:
        capframe.sink_customer_tables(IDS, "INSTORE", tmp_path, client=client, batch_size=40)
    partial = caught.value.partial
    assert isinstance(partial, dict)
    tables = collected(partial)
    failed = list(caught.value.ids)
    assert len(failed) == 40
    customers = tables["customers"]
    assert customers["customer_id"].to_list() == IDS  # every id once, in order
    lost = customers.filter(pl.col("customer_id").is_in(failed))
    assert not lost["success"].any()
    assert lost["error_message"].str.starts_with("the request failed").all()
    others = ~pl.col("customer_id").is_in(failed)
    for name, frame in in_memory.tables().items():
        assert tables[name].filter(others).equals(frame.filter(others)), name
    # The same pull again fetches the failed request only, and is whole.
    rerun = capframe.sink_customer_tables(IDS, "INSTORE", tmp_path, client=sandbox(), batch_size=40)
    assert_equal(collected(rerun), in_memory)


def test_warnings_are_those_of_the_in_memory_fetch(tmp_path: Path) -> None:
    def caught(fetch: Any) -> list[tuple[type[Warning], str]]:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            fetch()
        return [(w.category, str(w.message)) for w in seen]

    ids = IDS[:100]
    in_memory = caught(
        lambda: capframe.fetch_customers(ids, "INSTORE", client=sandbox(Faults(script=["extra"])), batch_size=50)
    )
    lazily = caught(
        lambda: capframe.sink_customers(
            ids, "INSTORE", tmp_path, client=sandbox(Faults(script=["extra"])), batch_size=50
        ).collect()
    )
    assert [category for category, _ in in_memory] == [capframe.UnexpectedEntitiesWarning]
    assert lazily == in_memory


def test_a_sink_needs_a_folder_and_customer_ids() -> None:
    with pytest.raises(capframe.InvalidArgumentError, match="pass cache_dir"):
        capframe.sink_customers(IDS, "INSTORE", None, client=sandbox())  # type: ignore[arg-type]
    with pytest.raises(capframe.InvalidArgumentError, match="lookup_customer_ids"):
        capframe.sink_customers([("mobile", "912726093529")], "INSTORE", "unused", client=sandbox())


def test_no_ids_are_empty_lazy_tables_of_the_full_schema(tmp_path: Path) -> None:
    tables = capframe.sink_customer_tables([], "INSTORE", tmp_path, client=sandbox())
    assert_equal(collected(tables), capframe.CustomerTables.empty())


def test_lazy_tables_whose_files_a_later_pull_replaced_are_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    """A pull with max_age fetching every id of a part again removes that part's files, and so does a
    prune: collecting an older sink's LazyFrames then is a SnapshotError saying what to do, not polars'
    FileNotFoundError."""
    ids = IDS[:80]
    tables = capframe.sink_customer_tables(ids, "INSTORE", tmp_path, client=sandbox(), batch_size=40)
    kept = tables["customers"].filter(pl.col("success")).select("customer_id").head(3)
    capframe.fetch_customers(ids, "INSTORE", client=sandbox(), cache_dir=tmp_path, max_age=0, batch_size=40)
    for frame in (tables["customers"], tables["identifiers"], kept):
        with pytest.raises(capframe.SnapshotError, match="a later pull into the same folder") as info:
            frame.collect()
        assert "Collect a sink's LazyFrames" in str(info.value)
    assert capframe.sink_customers(ids, "INSTORE", tmp_path, client=sandbox()).collect().height == len(ids)
    tables = capframe.sink_customer_tables(ids, "INSTORE", tmp_path, client=sandbox())
    capframe.Snapshot(tmp_path).prune(older_than=0)
    with pytest.raises(capframe.SnapshotError, match="or a prune removed it"):
        tables["customers"].collect()


def test_handing_freed_memory_back_is_skipped_where_malloc_trim_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a fetch into a snapshot, glibc's free pages go back to the system; elsewhere (musl,
    macOS, Windows) nothing is called and nothing fails."""
    import ctypes

    from capframe import _engine

    trimmed: list[int] = []

    class Glibc:
        def malloc_trim(self, pad: int) -> None:
            trimmed.append(pad)

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Glibc())
    monkeypatch.setattr(_engine.sys, "platform", "linux")
    _engine._give_back_freed_memory()
    assert trimmed == [0]
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # a libc without it
    _engine._give_back_freed_memory()
    monkeypatch.setattr(_engine.sys, "platform", "darwin")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Glibc())
    _engine._give_back_freed_memory()
    assert trimmed == [0]
