"""fetch_customers and its tables, against the embedded sandbox (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import polars as pl
import pytest

import capframe
from capframe import schemas
from capframe._auth import BasicAuth
from capframe.sandbox import Sandbox

DOCUMENTED_IDS = [564332013, 565338404, 566135941]


def sandbox(**options: object) -> capframe.Client:
    return capframe.Client.sandbox(
        2_000, requests_per_minute=None, retry_backoff=0.001, max_retry_after=0.01, **options
    )  # type: ignore[arg-type]


def test_the_documented_example_comes_back_as_documented() -> None:
    tables = capframe.fetch_customer_tables(DOCUMENTED_IDS, "INSTORE", client=sandbox())
    customers = tables.customers
    assert customers["customer_id"].to_list() == DOCUMENTED_IDS
    assert customers.select("success", "error_code").rows() == [(False, 8109), (True, None), (True, None)]
    assert customers["error_message"][0] == "Customer is deleted after PII delete request"
    assert customers.select("first_name", "last_name", "mobile", "external_id").rows()[1:] == [
        ("Muhammad", "Johns", "912726093529", "00008572"),
        ("John", "Pork", "918088369835", "696969"),
    ]
    assert customers["lifetime_purchases"].to_list() == [None, 0.0, 201000.0]
    assert customers["score"].to_list() == [None, None, 0]
    assert customers["associated_with"].to_list() == [None, "tj_capillary", "naman_doc"]
    assert str(customers["auto_update_time"].dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    assert tables.errors.select("customer_id", "origin", "code").rows() == [(564332013, "api", 8109)]
    assert tables.comm_channels.height == 3


def test_one_row_per_unique_id_in_first_occurrence_order() -> None:
    client = sandbox()
    ids = client.sandbox_org.customer_ids(250)  # type: ignore[union-attr]
    asked = [ids[5], *ids, ids[0], ids[5]]
    frame = capframe.fetch_customers(asked, "INSTORE", client=client, batch_size=40)
    assert frame["customer_id"].to_list() == list(dict.fromkeys(asked))
    # Duplicates are asked once: 250 ids in batches of 40 is 7 requests.
    assert len(client.sandbox_org.request_log) == 7  # type: ignore[union-attr]


def test_batches_are_sorted_and_sent_as_a_bare_json_array() -> None:
    bodies: list[list[int]] = []
    client = sandbox()
    org = client.sandbox_org
    assert org is not None
    original = org.handle

    def spy(request):  # type: ignore[no-untyped-def]
        bodies.append(json.loads(request.content))
        return original(request)

    org.handle = spy  # type: ignore[method-assign]
    ids = org.customer_ids(10)[::-1]
    capframe.fetch_customers(ids, "INSTORE", client=client, batch_size=4)
    assert bodies == [sorted(ids[0:4]), sorted(ids[4:8]), sorted(ids[8:10])]


def test_failed_ids_are_rows_with_the_apis_code_and_message() -> None:
    client = sandbox()
    org = client.sandbox_org
    assert org is not None
    deleted, unknown = org.pii_deleted_ids()[:2], org.unknown_ids(2)
    tables = capframe.fetch_customer_tables([*deleted, *unknown], "INSTORE", client=client)
    assert tables.customers["error_code"].to_list() == [8109, 8109, 8015, 8015]
    assert not tables.customers["success"].any()
    assert sorted(tables.failed_ids) == sorted([*deleted, *unknown])
    assert sorted(tables.errors["code"].to_list()) == [8015, 8015, 8109, 8109]


def test_every_table_is_keyed_by_customer_id_and_validated() -> None:
    client = sandbox()
    tables = capframe.fetch_customer_tables(client.sandbox_org.customer_ids(300), "ALL", client=client)  # type: ignore[union-attr]
    known = set(tables.customers["customer_id"])
    for name, frame in tables.tables().items():
        capframe.CustomerTables.MODELS[name].validate(frame)
        assert set(frame["customer_id"].drop_nulls()) <= known, name
    # The sandbox has customers with two profiles (INSTORE and WECHAT): source ALL returns both.
    assert tables.profiles.group_by("customer_id").len()["len"].max() == 2


def test_open_ended_maps_are_kept_whole_in_long_tables() -> None:
    client = sandbox()
    tables = capframe.fetch_customer_tables(client.sandbox_org.customer_ids(300), "INSTORE", client=client)  # type: ignore[union-attr]
    assert set(tables.fields["scope"]) == {"custom", "all", "extended"}
    assert {"city", "dob"} <= set(tables.fields.filter(scope="extended")["name"])
    assert tables.segments.height > 0
    assert tables.cards.height > 0
    # identifier types arrive as cardNumber and cardnumber: one spelling in `type`, the original in `raw_type`.
    cards = tables.identifiers.filter(pl.col("type") == "cardnumber")
    assert set(cards["raw_type"]) == {"cardNumber", "cardnumber"}


def test_an_empty_list_gives_the_full_schema_and_no_request() -> None:
    client = sandbox()
    tables = capframe.fetch_customer_tables([], "INSTORE", client=client)
    assert tables.customers.is_empty()
    assert tables.customers.schema == capframe.fetch_customers([], "INSTORE", client=client).schema
    assert list(tables.customers.columns)[:4] == ["customer_id", "success", "error_code", "error_message"]
    schemas.Customers.validate(tables.customers)
    assert client.sandbox_org.request_log == []  # type: ignore[union-attr]


def test_tidy_customers_reads_saved_response_bodies_the_same_way() -> None:
    client = sandbox()
    ids = client.sandbox_org.customer_ids(30)  # type: ignore[union-attr]
    fetched = capframe.fetch_customer_tables(ids, "INSTORE", client=client, batch_size=10)
    auth = {"Authorization": BasicAuth(Sandbox.USERNAME, Sandbox.PASSWORD)._header}
    url = f"{client.base_url}/v2/bulk/getCustomers?source=INSTORE"
    bodies = [
        client.sandbox_org.handle(httpx.Request("POST", url, json=sorted(ids[i : i + 10]), headers=auth)).content  # type: ignore[union-attr]
        for i in range(0, 30, 10)
    ]
    tidied = capframe.tidy_customers(bodies)
    for name in ("profiles", "identifiers", "comm_channels", "fields", "segments", "cards", "errors"):
        assert tidied.tables()[name].equals(getattr(fetched, name)), name
    assert tidied.customers.sort("customer_id").equals(fetched.customers.sort("customer_id"))


def test_a_customer_in_two_saved_pages_keeps_the_first_pages_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages read in separate reads (here one page per read) still give one answer per customer."""
    monkeypatch.setattr("capframe._customers._READ_BYTES", 1)

    def page(name: str, mobile: str) -> bytes:
        profile = {"firstName": name, "identifiers": [{"type": "mobile", "value": mobile}]}
        return json.dumps(
            {"data": [{"entity": {"id": 7, "profiles": [profile]}, "errors": [], "success": True}]}
        ).encode()

    other = b'{"data":[{"entity":{"id":8,"profiles":[]},"errors":[],"success":true}]}'
    tables = capframe.tidy_customers([page("First", "911"), other, page("Second", "922")])
    assert tables.customers.select("customer_id", "first_name").rows() == [(7, "First"), (8, None)]
    assert tables.identifiers.select("customer_id", "value").rows() == [(7, "911")]


@pytest.mark.parametrize("second", [[9, 3], [9, 4]])  # a customer in two pages, or none
def test_saved_pages_ordered_read_by_read_give_the_tables_ordered_as_one(
    monkeypatch: pytest.MonkeyPatch, second: list[int]
) -> None:
    """Each read's tables are put in page order by the thread that tidied them, and stacked (rows tied
    to no customer moved last): the same tables as ordering the whole stack at once, the way before."""
    from capframe import _answers, _customers

    monkeypatch.setattr(_customers, "_READ_BYTES", 1)  # one page a read

    def page(ids: list[int], warning: str) -> bytes:
        def profile(i: int) -> dict[str, object]:
            identifier = {"type": "mobile", "value": f"9{i}"}
            extra = {"type": "email", "value": f"{i}@x"}
            return {"identifiers": [identifier], "identifiersAll": [identifier, extra], "fields": {"b": "1", "a": "2"}}

        errors = [{"code": 8015, "message": "an item's error"}]
        items = [{"entity": {"id": i, "profiles": [profile(i), profile(i + 100)]}, "errors": errors} for i in ids]
        return json.dumps({"data": items, "warnings": [warning], "errors": [{"code": 1, "message": warning}]}).encode()

    pages = [page([5, 3], "first"), page(second, "second"), page([1], "third")]
    tables = capframe.tidy_customers(pages).tables()
    chunks = [_customers.tidy_customer_answers([_customers.read_customers([body])]) for body in pages]
    stacked = _answers.combine(chunks, _customers.TABLES, "customers", [])
    expected = _answers.in_order(stacked, stacked["customers"]["customer_id"])
    assert tables["customers"]["customer_id"].to_list() == list(dict.fromkeys([5, 3, *second, 1]))
    assert tables["errors"]["customer_id"].to_list()[-6:] == [None] * 6
    for name in _customers.TABLES:
        assert tables[name].equals(expected[name]), name


@pytest.mark.parametrize(
    ("sizes", "cpus", "reads"),
    [
        ([100] * 10, 2, 1),  # 1,000 bytes: under two reads' least (_MIN_READ_BYTES patched to 600)
        ([100] * 14, 2, 2),  # 1,400: one read a thread, as even as the pages allow
        ([100] * 14, 8, 2),  # as many threads as there are 600 bytes for, not one a CPU
        ([100] * 70, 2, 8),  # 7,000 bytes in reads of at most 1,000 (patched): 7, then a multiple of 2
        ([100] * 70, 3, 9),
        ([1300, 100, 100, 100, 100], 2, 2),  # one big page: a read of its own
    ],
)
def test_saved_pages_are_read_in_even_reads_a_multiple_of_the_threads(
    monkeypatch: pytest.MonkeyPatch, sizes: list[int], cpus: int, reads: int
) -> None:
    """Each read is one polars call on one thread: reads of 8, 8, 8, 8, 8, 8 and 3 MB kept one of two
    threads busy a third longer than the other."""
    from capframe import _customers

    monkeypatch.setattr(_customers, "_READ_BYTES", 1_000)
    monkeypatch.setattr(_customers, "_MIN_READ_BYTES", 600)
    monkeypatch.setattr(_customers.os, "cpu_count", lambda: cpus)
    pages = [bytes([65 + n % 26]) * size for n, size in enumerate(sizes)]
    split = _customers._reads(pages)
    assert [page for read in split for page in read] == pages  # each page once, in order
    assert len(split) == reads
    if len(set(sizes)) == 1:
        per_read = [sum(map(len, read)) for read in split]
        assert max(per_read) - min(per_read) <= sizes[0]


@pytest.mark.parametrize("count", [3, 25])  # 25 chunks: a group of 20 at the head and groups of 5 at the tail
def test_the_same_answers_give_the_same_tables_whatever_order_they_arrive_in(count: int) -> None:
    """Rows tied to no customer (a response's own warnings) keep the order of the answers' groups, and
    JSON kept as text its own answer's types (5 stays 5 though another answer sends 2.5): neither may
    depend on which answer arrived first."""

    def status(customer_id: int) -> dict[str, object]:
        return {f"key{customer_id}": "set", "level": customer_id + 0.5 if customer_id == count - 2 else customer_id}

    def body(customer_id: int) -> bytes:
        card = {"cardNumber": f"c{customer_id}", "statusInfo": status(customer_id)}
        entity = {"id": customer_id, "profiles": [], "cardDetails": [card]}
        item = {"entity": entity, "errors": [], "success": True}
        return json.dumps({"data": [item], "warnings": [f"answer {customer_id}"]}).encode()

    def client(delays: dict[int, float]) -> capframe.Client:
        async def handle(request: httpx.Request) -> httpx.Response:
            (customer_id,) = json.loads(request.content)
            await asyncio.sleep(delays[customer_id])
            return httpx.Response(200, content=body(customer_id), headers={"Content-Type": "application/json"})

        return capframe.Client(
            "eu",
            username="till",
            password="secret",
            batch_size=1,
            requests_per_minute=None,
            transport=httpx.MockTransport(handle),
        )

    ids = list(range(1, count + 1))
    step = 0.3 / count
    first_arrives_first = capframe.fetch_customer_tables(ids, "INSTORE", client=client({i: i * step for i in ids}))
    last_arrives_first = capframe.fetch_customer_tables(
        ids, "INSTORE", client=client({i: (count - i) * step for i in ids})
    )
    as_sent = [json.dumps(status(i), separators=(",", ":"), sort_keys=True) for i in ids]
    assert first_arrives_first.cards["status_info"].to_list() == as_sent
    for name, table in first_arrives_first.tables().items():
        assert table.equals(getattr(last_arrives_first, name)), name


def test_tidy_customers_refuses_what_is_not_a_response() -> None:
    with pytest.raises(capframe.InvalidArgumentError, match="not a Get Customers Bulk response"):
        capframe.tidy_customers([b"<html>bad gateway</html>"])


def test_the_sync_api_works_inside_a_running_event_loop() -> None:
    client = sandbox()
    ids = client.sandbox_org.customer_ids(5)  # type: ignore[union-attr]

    async def notebook_cell() -> pl.DataFrame:
        return capframe.fetch_customers(ids, "INSTORE", client=client)

    assert asyncio.run(notebook_cell())["customer_id"].to_list() == ids


def test_the_async_twins_return_the_same_tables() -> None:
    client = sandbox()
    ids = client.sandbox_org.customer_ids(50)  # type: ignore[union-attr]
    sync = capframe.fetch_customer_tables(ids, "INSTORE", client=client)
    frame = asyncio.run(capframe.afetch_customers(ids, "INSTORE", client=client))
    assert frame.equals(sync.customers)


def test_a_cache_dir_makes_a_rerun_fetch_nothing(tmp_path: Path) -> None:
    client = sandbox()
    ids = client.sandbox_org.customer_ids(120)  # type: ignore[union-attr]
    first = capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path, batch_size=50)
    requests = len(client.sandbox_org.request_log)  # type: ignore[union-attr]
    again = capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path, batch_size=50)
    assert len(client.sandbox_org.request_log) == requests == 3  # type: ignore[union-attr]
    for name, frame in first.tables().items():
        assert frame.equals(again.tables()[name]), name
    assert again.provenance == first.provenance
    assert again.provenance is not None
    assert (again.provenance.read, again.provenance.fetched) == (120, 0)
    scanned = capframe.scan_customers(tmp_path).collect()
    assert scanned.select("host", "pull_source").unique().rows() == [(client.base_url, "INSTORE")]
    assert scanned.drop("host", "pull_source").sort("customer_id").equals(first.customers.sort("customer_id"))


def test_a_cache_dir_resumes_where_a_run_stopped(tmp_path: Path) -> None:
    client = sandbox()
    ids = client.sandbox_org.customer_ids(200)  # type: ignore[union-attr]
    clean = capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), batch_size=50)
    capframe.fetch_customers(ids[:100], "INSTORE", client=client, cache_dir=tmp_path, batch_size=50)
    before = len(client.sandbox_org.request_log)  # type: ignore[union-attr]
    resumed = capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path, batch_size=50)
    assert len(client.sandbox_org.request_log) - before == 2  # type: ignore[union-attr]
    for name, frame in clean.tables().items():
        assert frame.equals(resumed.tables()[name]), name


def test_batches_cached_by_another_wire_version_are_fetched_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables a batch is cached as change with capframe's reader: a cache of another version is
    not mixed into a new pull."""
    client = sandbox()
    ids = client.sandbox_org.customer_ids(100)  # type: ignore[union-attr]
    capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=tmp_path, batch_size=50)
    monkeypatch.setattr("capframe._wire.WIRE_VERSION", capframe._wire.WIRE_VERSION + 1)
    facts = capframe._endpoints.SPECS["customers"]
    monkeypatch.setitem(capframe._endpoints.SPECS, "customers", dataclasses.replace(facts))  # fingerprint anew
    before = len(client.sandbox_org.request_log)  # type: ignore[union-attr]
    with pytest.warns(capframe.SnapshotDamagedWarning, match="written by another capframe version"):
        capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=tmp_path, batch_size=50)
    assert len(client.sandbox_org.request_log) - before == 2  # type: ignore[union-attr]


def test_provenance_states_where_the_data_came_from() -> None:
    client = sandbox()
    ids = [565338404, 566135941, 564332013, *client.sandbox_org.unknown_ids(1)]  # type: ignore[union-attr]
    provenance = capframe.fetch_customer_tables(ids, "instore", client=client).provenance
    assert provenance is not None
    assert (provenance.host, provenance.source, provenance.asked, provenance.failed) == (
        client.base_url,
        "INSTORE",
        4,
        2,
    )
    assert provenance.capframe_version == capframe.__version__


def test_one_cache_dir_keeps_the_fetch_times_of_each_source(tmp_path: Path) -> None:
    """What a report states as 'fetched at' is when its own units were fetched: another source's
    units, fetched later into the same folder, change nothing."""
    client = sandbox()
    ids = [565338404, 566135941]
    capframe.fetch_customers(ids, "INSTORE", client=client, cache_dir=tmp_path)
    index = tmp_path / "customers" / "index.parquet"
    long_ago = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    pl.read_parquet(index).with_columns(fetched_at=pl.lit(long_ago)).write_parquet(index)  # as if filled long ago
    files = {p: p.read_bytes() for p in (tmp_path / "customers").rglob("*.parquet")}
    wechat = capframe.fetch_customer_tables(ids, "WECHAT", client=client, cache_dir=tmp_path).provenance
    instore = capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path).provenance
    assert instore is not None
    assert wechat is not None
    assert instore.fetched_at == instore.last_fetched_at == long_ago
    assert wechat.fetched_at.year > 2020
    assert wechat.source == "WECHAT"
    assert instore.capframe_version == capframe.__version__
    assert all(path.read_bytes() == data for path, data in files.items() if path.parent.name != "customers")


def test_a_pull_killed_with_sigkill_resumes_from_its_cache_dir(tmp_path: Path) -> None:
    """A real SIGKILL mid-pull: the rerun asks only for the ids not on disk, and returns what a clean run does."""
    cache = tmp_path / "cache"
    journal = cache / "customers" / "journal"
    script = (
        "import sys, capframe\n"
        "client = capframe.Client.sandbox(2_000, latency=0.05, requests_per_minute=None, concurrency=2)\n"
        f"capframe.fetch_customers(client.sandbox_org.customer_ids(2_000), 'INSTORE', client=client, batch_size=20, cache_dir={str(cache)!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while len(list(journal.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    on_disk = sum(len(json.loads(entry.read_bytes())["units"]) for entry in journal.glob("*.json"))
    assert 0 < on_disk < 2_000  # killed part way: some parts on disk, not all

    client = sandbox()
    ids = client.sandbox_org.customer_ids(2_000)  # type: ignore[union-attr]
    resumed = capframe.fetch_customer_tables(ids, "INSTORE", client=client, batch_size=20, cache_dir=cache)
    assert len(client.sandbox_org.request_log) == (2_000 - on_disk) // 20  # type: ignore[union-attr]
    clean = capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox(), batch_size=20)
    for name, frame in clean.tables().items():
        assert frame.equals(resumed.tables()[name]), name


@pytest.mark.parametrize(
    "sent",
    [
        [[{"code": 1, "message": "m"}], ["check the store"], [7]],
        [[[7, None]], [{"code": 2}], ["text"]],
    ],
)
def test_request_level_warnings_of_any_json_type_are_kept_as_sent_across_batches(sent: list[list[object]]) -> None:
    """Undocumented, so one answer may warn with an object and the next with text: neither is garbled
    by the other (stacked as read, polars would write the object as "{1}")."""

    def handle(request: httpx.Request) -> httpx.Response:
        (customer_id,) = json.loads(request.content)
        item = {"entity": {"id": customer_id, "profiles": []}, "errors": [], "success": True}
        return httpx.Response(200, json={"data": [item], "warnings": sent[customer_id - 1], "errors": []})

    client = capframe.Client(
        "eu", username="till", password="secret", batch_size=1, transport=httpx.MockTransport(handle)
    )
    tables = capframe.fetch_customer_tables([1, 2, 3], "INSTORE", client=client)
    warned = tables.errors.filter(pl.col("level") == "warning")
    texts = [w if isinstance(w, str) else json.dumps(w, separators=(",", ":")) for ws in sent for w in ws]
    assert sorted(warned["message"].to_list()) == sorted(texts)
