"""The pull engine's machinery for speed and memory, fed synthetic answers in shuffled orders."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pytest

import capframe
from capframe import _engine
from capframe._answers import NO_UNKNOWN, Answer, Tidied
from capframe._endpoints import SPECS, Spec, Words
from capframe._engine import Reply, Unit, group_numbers
from capframe._http import RetriesExhausted, Session
from capframe._snapshot import Snapshot

CLIENT = capframe.Client("eu", username="till", password="secret")
# What the snapshot stores of the synthetic endpoint: each row's unit, and the request that answered it.
STORED = {"main": {"customer_id": pl.Int64(), "request": pl.String()}}
SPEC = Spec(
    "customers",  # the snapshot's folder: the test puts this spec in the registry in its place
    "GET",
    "/synthetic",
    pl.Int64(),
    "customer_id",
    ("main",),
    ("host", "pull_source"),
    10,
    lambda: STORED,
    Words("units", "fetched", "the request failed", "failed units as rows"),
    ask_again=True,
)


class Synthetic:
    """An endpoint whose answers arrive after random delays: each unit answers with its own row,
    and every request with a row tied to no unit (as a response's own warnings are)."""

    spec = SPEC

    def __init__(self, seed: int, *, left_out: frozenset[int] = frozenset(), failing: frozenset[int] = frozenset()):
        self.random = random.Random(seed)
        self.left_out = set(left_out)  # units left out of their first answer
        self.failing = failing  # units whose requests fail
        self.asked: list[tuple[Unit, ...]] = []

    async def ask(self, session: Session, units: tuple[Unit, ...]) -> Reply:
        self.asked.append(units)
        await asyncio.sleep(self.random.random() / 200)
        if self.failing & set(units):  # type: ignore[operator]
            raise RetriesExhausted("HTTP 503 after 1 attempts", 503)
        sent = [u for u in units if u not in self.left_out]
        self.left_out -= set(units)
        entities = pl.DataFrame({"customer_id": [*sent, None]}, schema={"customer_id": pl.Int64})
        entities = entities.with_columns(request=pl.lit(str(units)))
        return Reply([Answer(entities, pl.DataFrame(), NO_UNKNOWN)], sent)

    def tidy(self, answers: Sequence[Answer]) -> Tidied:
        return Tidied({"main": pl.concat([a.entities for a in answers])})

    def failed(self, units: Sequence[Unit], why: str) -> Tidied:
        return Tidied({"main": pl.DataFrame({"customer_id": units, "request": why}, schema=STORED["main"])})

    def columns(self) -> dict[str, str]:
        return {"host": CLIENT.base_url, "pull_source": "INSTORE"}


def run(
    endpoint: Synthetic, units: list[int], per_request: int = 1, snapshot: Snapshot | None = None
) -> _engine.Pulled:
    return asyncio.run(
        _engine.pull(
            endpoint,
            units,
            host=CLIENT.base_url,
            source="INSTORE",
            client=CLIENT,
            snapshot=snapshot,
            max_age=None,
            progress=False,
            keep=("main",),
            per_request=per_request,
        )
    )


def main_table(pulled: _engine.Pulled) -> pl.DataFrame:
    return pl.concat([p.tables["main"] for p in pulled.chunks if p.tables])


def test_groups_are_consecutive_requests_with_a_smaller_tail() -> None:
    assert group_numbers(3, 0) == [0, 0, 0]
    numbers = group_numbers(45, 7)
    assert numbers == sorted(numbers)
    assert numbers[:25] == [7] * 20 + [8] * 5  # heads of 20, the last 20 requests in groups of 5
    assert [numbers.count(g) for g in sorted(set(numbers))] == [20, 5, 5, 5, 5, 5]


@pytest.mark.parametrize("merge_every", [2, 200])
def test_the_same_answers_give_the_same_tables_whatever_order_they_arrive_in(
    monkeypatch: pytest.MonkeyPatch, merge_every: int
) -> None:
    """Rows tied to no unit keep request order too: they cannot be sorted by a unit later."""
    monkeypatch.setattr(_engine, "MERGE_EVERY", merge_every)
    units = list(range(1, 61))
    tables = [main_table(run(Synthetic(seed), units, per_request=2)) for seed in range(4)]
    assert tables[0]["customer_id"].drop_nulls().to_list() == units
    assert tables[0]["request"].unique(maintain_order=True).to_list() == [str((i, i + 1)) for i in units[::2]]
    for other in tables[1:]:
        assert other.equals(tables[0])


def test_units_left_out_are_asked_once_more_and_failures_recorded() -> None:
    endpoint = Synthetic(0, left_out=frozenset({3, 8}), failing=frozenset({11}))
    pulled = run(endpoint, list(range(1, 13)), per_request=4)
    assert endpoint.asked[-1] == (3, 8)  # the second round: only what the first answers left out
    assert [units for units, _ in pulled.failed] == [(9, 10, 11, 12)]
    assert pulled.unanswered == []
    rows = main_table(pulled).drop_nulls()
    answered = rows.filter(pl.col("request").str.starts_with("("))
    assert sorted(answered["customer_id"]) == [1, 2, 3, 4, 5, 6, 7, 8]
    # The engine makes the failed request's units rows too, with its reason in the spec's words.
    assert rows.filter(pl.col("customer_id") > 8).rows() == [
        (unit, "the request failed: HTTP 503 after 1 attempts") for unit in (9, 10, 11, 12)
    ]
    assert pulled.failures == dict.fromkeys((9, 10, 11, 12), "the request failed: HTTP 503 after 1 attempts")


def test_with_a_snapshot_parts_are_read_back_in_unit_order_whatever_order_they_were_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The snapshot checks stored files against what the endpoint writes: the synthetic one's table.
    monkeypatch.setitem(SPECS, "customers", SPEC)
    """A part holds a group of requests: read back, parts come in the order of their first unit asked,
    rows in the order they were stored (the endpoint sorts rows by unit: customers' in_order)."""
    units = [9, 2, 7, 4, 5, 1]
    first = [main_table(run(Synthetic(seed), units, snapshot=Snapshot(tmp_path / str(seed)))) for seed in range(3)]
    assert first[0].drop_nulls()["customer_id"].to_list() == units
    for other in first[1:]:
        assert other.drop("request").equals(first[0].drop("request"))
    again = [run(Synthetic(9), units[::-1], snapshot=Snapshot(tmp_path / str(seed))) for seed in range(3)]
    assert [(a.read, a.fetched) for a in again] == [(6, 0)] * 3
    # units 9, 2, 7, 4, 5 were one group (the last requests are grouped by 5), 1 the next
    assert main_table(again[0]).drop_nulls()["customer_id"].to_list() == [1, 9, 2, 7, 4, 5]
    for other in again[1:]:
        assert main_table(other).drop("request").equals(main_table(again[0]).drop("request"))


# --- units held as Series -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids",
    [
        [7, 3, 7, 2**62, 3],
        pl.Series([9, 1, 9], dtype=pl.UInt32),
        pl.Series([4.0, 2.0, 4.0]),
        [5, 5.0, "6", 6],
        ["12", "11", "12"],
    ],
    ids=["ints", "uint32-series", "float-series", "mixed", "text"],
)
def test_ids_as_a_series_are_the_ids_of_the_list(ids: object) -> None:
    from capframe import _args

    series = _args.customer_id_series(ids)
    assert series.dtype == pl.Int64
    assert series.to_list() == _args.customer_ids(ids)


@pytest.mark.parametrize("ids", [[1, None, 2], [1, True], [1, -4], [1, 2.5], [1, 2**64]])
def test_ids_as_a_series_are_refused_as_the_list_is(ids: list[object]) -> None:
    from capframe import _args

    with pytest.raises(capframe.CapframeError) as as_list:
        _args.customer_ids(ids)
    with pytest.raises(type(as_list.value)) as as_series:
        _args.customer_id_series(ids)
    assert str(as_series.value) == str(as_list.value)


def test_requests_are_made_from_the_series_when_asked_for() -> None:
    requests = _engine._Requests(pl.Series([5, 3, 9, 1, 7]), 2)
    assert len(requests) == 3
    assert list(requests) == [(3, 5), (1, 9), (7,)]  # each sorted: the same units, the same request
    assert requests[-1:] == [(7,)]
    with pytest.raises(IndexError):
        requests[3]
    assert list(_engine._Requests(pl.Series(["b", "a", "c"]), 5)) == [("a", "b", "c")]
