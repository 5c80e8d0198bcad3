"""sink_children / sink_children_tables: the children pull into a snapshot whose tables come back
lazily, read from the snapshot when collected; collected, the same tables as fetch_children_tables."""

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
FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
ORG = Sandbox(CUSTOMERS)
FAMILIES = [f for f in ORG.families() if f.entity_type == "parentCustomer" and f.parent_id]
BY_ID = next(f for f in FAMILIES if f.child_ids)
BIG = next(f for f in FAMILIES if len(f.child_ids) > 150)  # two pages of 100
CHILDLESS = next(f for f in FAMILIES if not f.child_ids)
# By customer id (looked up first), by identifier over two pages, one the API does not know, one
# with no children, and the first again: every way a parent row is made.
PARENTS: list[Any] = [
    BY_ID.parent_id,
    (BIG.identifier_type, BIG.identifier_value),
    ("email", "nobody@example.invalid"),
    (CHILDLESS.identifier_type, CHILDLESS.identifier_value),
    BY_ID.parent_id,
]
ENV = ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY", "CAPILLARY_CLIENT_SECRET")


def sandbox(faults: Faults | None = None, **options: Any) -> capframe.Client:
    return capframe.Client.sandbox(CUSTOMERS, faults=faults, **{**FAST, **options})


def collected(tables: dict[str, pl.LazyFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame.collect() for name, frame in tables.items()}


def assert_equal(got: dict[str, pl.DataFrame], want: capframe.ChildrenTables) -> None:
    assert list(got) == list(want.NAMES)
    for name, frame in want.tables().items():
        assert got[name].schema == frame.schema, name
        assert got[name].equals(frame), f"{name}: {got[name].height} rows against {frame.height}"


def quietly(call: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capframe.CapframeWarning)
        return call()


@pytest.fixture(scope="module")
def in_memory() -> capframe.ChildrenTables:
    return quietly(lambda: capframe.fetch_children_tables(PARENTS, client=sandbox()))


def test_the_lazy_tables_are_the_in_memory_tables_and_hold_only_the_parents_asked(
    tmp_path: Path, in_memory: capframe.ChildrenTables
) -> None:
    # The snapshot holds other walks too: the LazyFrames must not show them.
    others = [(f.identifier_type, f.identifier_value) for f in FAMILIES if f.child_ids][2:6]
    capframe.fetch_children_tables(others, client=sandbox(), cache_dir=tmp_path)
    tables = quietly(lambda: capframe.sink_children_tables(PARENTS, tmp_path, client=sandbox()))
    assert all(isinstance(frame, pl.LazyFrame) for frame in tables.values())
    got = collected(tables)
    assert_equal(got, in_memory)
    assert got["children"].height == len(BY_ID.child_ids) + len(BIG.child_ids)
    children = quietly(lambda: capframe.sink_children(PARENTS, tmp_path, client=sandbox()))
    assert children.collect().equals(in_memory.children)


def test_a_sink_reruns_offline_and_gives_the_warnings_of_the_fetch(
    tmp_path: Path, in_memory: capframe.ChildrenTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.warns(capframe.CapframeWarning, match=r"1 of 4 parents were not found"):
        first = capframe.sink_children_tables(PARENTS, tmp_path, client=sandbox())
    assert_equal(collected(first), in_memory)
    for name in ENV:
        monkeypatch.delenv(name, raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a complete snapshot must not open a connection")

    monkeypatch.setattr(httpx.AsyncClient, "send", no_network)
    with pytest.warns(capframe.CapframeWarning, match=r"1 of 4 parents were not found"):
        again = capframe.sink_children_tables(PARENTS, tmp_path)
    assert_equal(collected(again), in_memory)
    one = asyncio.run(capframe.asink_children((BIG.identifier_type, BIG.identifier_value), tmp_path))
    assert one.collect().equals(in_memory.children.filter(pl.col("parent_value") == BIG.identifier_value))


def test_a_failed_walk_is_a_parents_row_and_a_fetch_error_holding_the_lazy_tables(
    tmp_path: Path, in_memory: capframe.ChildrenTables
) -> None:
    # Every attempt of the first request (the customer-id parent's lookup goes first) fails.
    walks_only = PARENTS[1:4]
    client = sandbox(Faults(script=["503", "503"]), max_retries=1, max_concurrency=1)
    with pytest.raises(capframe.FetchError, match=r"1 of 3 parents could not be fetched") as caught:
        quietly(lambda: capframe.sink_children_tables(walks_only, tmp_path, client=client))
    partial = caught.value.partial
    assert isinstance(partial, dict)
    tables = collected(partial)
    assert tables["parents"]["parent_number"].to_list() == [1, 2, 3]
    assert tables["parents"]["found"].to_list() == [None, False, True]
    assert tables["children"].height == 0  # the failed walk was the only one with children
    assert tables["errors"].filter(pl.col("level") == "error").height == 2
    # The same pull again walks the failed parent only, and is the fetch's.
    client = sandbox()
    rerun = quietly(lambda: capframe.sink_children_tables(walks_only, tmp_path, client=client))
    assert_equal(collected(rerun), quietly(lambda: capframe.fetch_children_tables(walks_only, client=sandbox())))
    alone = sandbox()  # what walking that parent alone sends
    quietly(lambda: capframe.fetch_children_tables([PARENTS[1]], client=alone))
    assert client.sandbox_org is not None
    assert alone.sandbox_org is not None
    assert len(client.sandbox_org.request_log) == len(alone.sandbox_org.request_log)


def test_one_unknown_parent_is_parent_not_found_and_a_sink_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(capframe.ParentNotFoundError):
        capframe.sink_children(("email", "nobody@example.invalid"), tmp_path, client=sandbox())
    with pytest.raises(capframe.InvalidArgumentError, match="pass cache_dir"):
        capframe.sink_children(PARENTS[1], None, client=sandbox())  # type: ignore[arg-type]


def test_parents_none_of_which_is_found_are_parents_rows_and_empty_tables(tmp_path: Path) -> None:
    # Customer ids Get Customers Bulk does not know: no walk is asked at all.
    unknown: list[Any] = list(ORG.unknown_ids(2))
    want = quietly(lambda: capframe.fetch_children_tables(unknown, client=sandbox()))
    got = collected(quietly(lambda: capframe.sink_children_tables(unknown, tmp_path, client=sandbox())))
    assert_equal(got, want)
    assert got["parents"]["found"].to_list() == [False, False]
