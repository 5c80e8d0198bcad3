"""Customers by identifier: GET /v2/customers/lookup, then Get Customers Bulk, through the engine.

Values come from the sandbox's organisation: found in INSTORE, in another source only (8065),
unknown (8015), asked twice, and several of one customer. Every value asked is a row of the map.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from vcr.request import Request

import capframe
from capframe.cli import main
from capframe.sandbox import Faults, Sandbox
from capframe.testing import scrub_request

CUSTOMERS = 3_000
SEED = 3
FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
LOOKUP = "/v2/customers/lookup"
BULK = "/v2/bulk/getCustomers"
_ORG = Sandbox(CUSTOMERS, seed=SEED)
_IDENTIFIERS = _ORG.identifiers()
SOURCES = {customer_id: source for customer_id, source, _, _ in _IDENTIFIERS}


def sandbox(**options: Any) -> capframe.Client:
    return capframe.Client.sandbox(CUSTOMERS, seed=SEED, **{**FAST, **options})


def of_type(kind: str, source: str | None = None) -> list[tuple[int, str]]:
    """(customer id, value) of each identifier of that type (in that source only)."""
    return [
        (customer_id, value)
        for customer_id, from_source, t, value in _IDENTIFIERS
        if t.lower() == kind.lower() and (source is None or from_source == source)
    ]


def values_of(kind: str, n: int) -> tuple[list[str], dict[str, int | None]]:
    """``n`` values of one type: found, in another source, unknown, and some asked twice; value -> expected id."""
    instore = of_type(kind, "INSTORE")
    elsewhere = [(c, v) for c, v in of_type(kind) if c not in {i for i, _ in instore}]
    unknown = {"mobile": "910000000%03d", "email": "nobody.%d@example.invalid", "externalId": "x%07d"}
    unknown_values = [unknown.get(kind, "SBXnone%05d") % i for i in range(n // 20)]
    chosen = [*(v for _, v in elsewhere[: n // 20]), *unknown_values]
    chosen += [v for _, v in instore[: n - len(chosen) - n // 10]]
    chosen += chosen[: n - len(chosen)]  # asked twice
    deleted = set(_ORG.pii_deleted_ids())
    expected: dict[str, int | None] = dict.fromkeys(unknown_values)
    expected |= {v: None for _, v in elsewhere}
    expected |= {v: (None if c in deleted else c) for c, v in instore}
    assert len(chosen) == n
    return chosen, expected


def check_map(tables: capframe.CustomerLookupTables, asked: list[tuple[str, str]], expected: dict[str, Any]) -> None:
    lookups = tables.lookups
    assert lookups["value_number"].to_list() == list(range(1, len(asked) + 1)), "every value asked is a row"
    assert list(zip(lookups["identifier_type"], lookups["identifier_value"], strict=True)) == asked
    for value, customer_id, found, code in lookups.select(
        "identifier_value", "customer_id", "found", "error_code"
    ).iter_rows():
        assert customer_id == expected[value]
        assert found is (customer_id is not None)
        assert (code is None) is found
        assert code in (None, 8015, 8065)
    ids = lookups["customer_id"].drop_nulls().unique(maintain_order=True).to_list()
    assert tables.customers["customer_id"].to_list() == ids, "one row per customer, in the order first found"
    assert tables.customers["success"].all()


@pytest.mark.parametrize("kind", ["mobile", "email", "externalId", "cardnumber"])
def test_a_list_of_values_of_one_type_gives_the_tables_and_every_value_in_the_map(kind: str) -> None:
    n = 1_000 if kind == "mobile" else 200
    chosen, expected = values_of(kind, n)
    client = sandbox()
    tables = capframe.fetch_customer_tables(chosen, "INSTORE", identifier=kind, client=client)
    assert isinstance(tables, capframe.CustomerLookupTables)
    check_map(tables, [(capframe._args.IDENTIFIER_TYPES[kind.lower()], v) for v in chosen], expected)
    lookups = tables.lookups
    assert {8015, 8065} <= set(lookups["error_code"].drop_nulls())
    log = client.sandbox_org.request_log  # type: ignore[union-attr]
    assert sum(r.path == LOOKUP for r in log) == len(set(chosen)), "a value asked twice: one request"
    assert sum(r.n_ids for r in log if r.path == BULK) == tables.customers.height
    assert set(tables.identifiers["customer_id"]) <= set(tables.customers["customer_id"])


def test_mixed_pairs_and_two_values_of_one_customer() -> None:
    mobiles = dict(of_type("mobile", "INSTORE"))
    emails = dict(of_type("email", "INSTORE"))
    deleted = set(_ORG.pii_deleted_ids())  # once: the sandbox works the list out at each call
    both = [c for c in mobiles if c in emails and c not in deleted][:50]
    pairs = [("mobile", mobiles[c]) for c in both] + [("EMAIL", emails[c]) for c in both] + [("mobile", "910000000001")]
    tables = capframe.fetch_customer_tables(pairs, "INSTORE", client=sandbox())
    expected = {mobiles[c]: c for c in both} | {emails[c]: c for c in both} | {"910000000001": None}
    check_map(tables, [(t.lower() if t == "EMAIL" else t, v) for t, v in pairs], expected)
    assert tables.customers.height == 50, "two values of one customer: one row in customers, two in the map"


def test_values_keep_their_text_and_lose_surrounding_whitespace() -> None:
    client = sandbox()
    frame = capframe.lookup_customer_ids(["  +0042 ", "00042", 42], "INSTORE", identifier="externalId", client=client)
    assert frame["identifier_value"].to_list() == ["+0042", "00042", "42"]
    assert frame["error_code"].to_list() == [8015, 8015, 8015]


@pytest.mark.parametrize(
    ("given", "identifier", "error", "words"),
    [
        (["915550000001", " "], "mobile", capframe.InvalidArgumentError, "value #2 (mobile) is empty"),
        (["915550000001", None], "mobile", capframe.InvalidArgumentError, "value #2 (mobile) is missing"),
        ([("mobile", "915550000001"), "x"], None, capframe.ArgumentTypeError, "value #2 must be an"),
        # past httpx's URL limit it was httpx's InvalidURL, not a capframe error
        (["915550000001", "9" * 70_000], "mobile", capframe.InvalidArgumentError, "value #2 (mobile) is 70,000 char"),
        (["915550000001", "9" * 513], "mobile", capframe.InvalidArgumentError, "is 513 characters long, more than"),
        (
            ["915550000001"],
            "phone",
            capframe.InvalidArgumentError,
            "identifier names an unknown identifier type 'phone'",
        ),
        ([], "mobile", capframe.InvalidArgumentError, "empty"),
    ],
)
def test_a_bad_value_is_named_by_its_position(given: Any, identifier: Any, error: type, words: str) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
        capframe.lookup_customer_ids(given, "INSTORE", identifier=identifier, client=sandbox())
    assert "915550000001" not in str(caught.value)


def test_the_documented_errors_are_rows() -> None:
    mobile = of_type("mobile", "INSTORE")[0][1]
    client = sandbox()
    no_account = capframe.lookup_customer_ids([mobile], "WECHAT", identifier="mobile", client=client)
    assert no_account.select("found", "error_code").row(0) == (False, 8045)
    invalid = capframe.lookup_customer_ids([("fbId", mobile)], "INSTORE", client=client)
    assert invalid.select("found", "error_code").row(0) == (False, 8015)


@pytest.mark.parametrize("status", [200, 400])
def test_the_apis_reason_is_kept_as_server_text_is_short_printable_and_without_the_value(status: int) -> None:
    """The reason of a refused value goes into the map, the snapshot and the CLI's terminal: a server's
    5 kB of text with escape sequences and the value itself is cut short, made printable and blanked
    of the value, as the children's reasons are."""
    org = Sandbox(200, seed=1)
    email = "someone.private@example.com"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == LOOKUP:
            message = f"\x1b[2J\x07no customer with {request.url.params['identifierValue']} " + "A" * 5_000
            return httpx.Response(status, json={"entity": None, "errors": [{"code": 8015, "message": message}]})
        return org.handle(request)

    client = capframe.Client(
        Sandbox.BASE_URL, username="till", password="pw", transport=httpx.MockTransport(answer), **FAST
    )
    reason = capframe.lookup_customer_ids([email], "INSTORE", identifier="email", client=client)["error_message"][0]
    assert reason.startswith("?[2J?no customer with *** AAA")
    assert len(reason) <= 200


@pytest.mark.parametrize("status", [200, 400])
def test_the_value_is_blanked_from_the_apis_reason_as_a_word_not_inside_a_number(status: int) -> None:
    org = Sandbox(200, seed=1)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == LOOKUP:
            message = f"no customer {request.url.params['identifierValue']} (nearest: customer 7000001)"
            return httpx.Response(status, json={"entity": None, "errors": [{"code": 8015, "message": message}]})
        return org.handle(request)

    client = capframe.Client(
        Sandbox.BASE_URL, username="till", password="pw", transport=httpx.MockTransport(answer), **FAST
    )
    map_ = capframe.lookup_customer_ids(["700000"], "INSTORE", identifier="externalId", client=client)
    assert map_["error_message"][0] == "no customer *** (nearest: customer 7000001)"


def test_a_rerun_from_the_snapshot_sends_nothing_and_needs_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen, _ = values_of("mobile", 300)
    first = capframe.fetch_customer_tables(chosen, "INSTORE", identifier="mobile", client=sandbox(), cache_dir=tmp_path)
    for name in ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    again = capframe.fetch_customer_tables(chosen, "INSTORE", identifier="mobile", cache_dir=tmp_path)
    assert again.provenance is not None
    assert again.provenance.sent == 0
    for name, frame in first.tables().items():
        assert frame.equals(again.tables()[name]), name
        one, two = io.BytesIO(), io.BytesIO()
        frame.write_parquet(one)
        again.tables()[name].write_parquet(two)
        assert one.getvalue() == two.getvalue(), f"{name} is byte-identical on rerun"
    assert capframe.Snapshot(tmp_path).info().units["lookups"] == len(set(chosen))
    # One mobile more: one lookup and one bulk request.
    added = next(
        v for c, v in of_type("mobile", "INSTORE") if v not in chosen and c not in first.customers["customer_id"]
    )
    client = sandbox()
    capframe.fetch_customer_tables([*chosen, added], "INSTORE", identifier="mobile", client=client, cache_dir=tmp_path)
    paths = [r.path for r in client.sandbox_org.request_log if r.path != "/v3/oauth/token/generate"]  # type: ignore[union-attr]
    assert paths == [LOOKUP, BULK]


@pytest.mark.parametrize("kind", ["503", "429", "timeout", "truncate"])
def test_faults_lose_nothing(kind: str) -> None:
    chosen, expected = values_of("mobile", 100)
    faults = Faults(script=[kind] * 3 + ["ok"] * 20 + [kind] * 2, rates={kind: 0.1}, seed=1)
    tables = capframe.fetch_customer_tables(
        chosen, "INSTORE", identifier="mobile", client=sandbox(faults=faults, max_retries=8), progress=False
    )
    check_map(tables, [("mobile", v) for v in chosen], expected)
    reference = capframe.fetch_customer_tables(chosen, "INSTORE", identifier="mobile", client=sandbox())
    for name, frame in reference.tables().items():
        assert frame.equals(tables.tables()[name]), name


def test_a_failed_lookup_is_a_row_and_a_fetch_error_naming_values_by_number(tmp_path: Path) -> None:
    chosen, _ = values_of("mobile", 20)
    client = sandbox(faults=Faults(rates={"503": 1.0}), max_retries=0)
    words = rf"{len(set(chosen))} of {len(set(chosen))} identifier values could not be looked up \(first: value #1 \(mobile\)"
    with pytest.raises(capframe.FetchError, match=words) as caught:
        capframe.fetch_customer_tables(chosen, "INSTORE", identifier="mobile", client=client)
    partial = caught.value.partial
    assert isinstance(partial, capframe.CustomerLookupTables)
    assert partial.lookups.height == 20
    assert partial.lookups["found"].is_null().all()


UNMISTAKABLE = ["+00PIIMOBILE1", "pii.unmistakable@example.invalid", "PIIEXTERNAL0042"]


def test_no_value_reaches_logs_exceptions_warnings_reprs_cassettes_or_progress(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    known = [v for _, v in of_type("mobile", "INSTORE")[:3]]
    pairs = [("mobile", UNMISTAKABLE[0]), ("email", UNMISTAKABLE[1]), ("externalId", UNMISTAKABLE[2])]
    pairs += [("mobile", v) for v in known]
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = capframe.fetch_customer_tables(pairs, "INSTORE", client=sandbox(), progress=True)
        seen += [repr(tables), str(tables.provenance), tables._repr_html_()]
        client = sandbox(faults=Faults(rates={"503": 1.0}), max_retries=1)
        with pytest.raises(capframe.FetchError) as failed:
            capframe.fetch_customer_tables(pairs, "INSTORE", client=client, progress=True)
        seen += [str(failed.value), repr(failed.value), repr(failed.value.partial)]
        with pytest.raises(capframe.InvalidArgumentError) as bad:
            capframe.lookup_customer_ids([*(v for _, v in pairs), ""], "INSTORE", identifier="mobile", client=sandbox())
        seen.append(str(bad.value))
    seen += [str(w.message) for w in caught]
    seen += [record.getMessage() for record in caplog.records]
    output = capsys.readouterr()
    seen += [output.out, output.err]
    assert "lookup" in output.err, "the progress bar was shown"
    for value in [v for _, v in pairs]:
        request = Request(
            "GET",
            f"https://eu.api.capillarytech.com{LOOKUP}?source=INSTORE&identifierName=mobile&identifierValue={value}",
            b"",
            {},
        )
        seen.append(scrub_request(request).uri)
    text = "\n".join(seen)
    assert any("identifierValue" in record.getMessage() for record in caplog.records), "httpx logged the URLs"
    for value in [v for _, v in pairs]:
        assert value not in text
        assert value.replace("+", "%2B").replace("@", "%40") not in text


def test_the_cli_reads_a_column_of_mobiles_with_identifier(tmp_path: Path) -> None:
    from capframe.cli import main

    mobiles = tmp_path / "campaign.csv"
    mobiles.write_text("name,mobile\nA,912726093529\nB, 910000000000 \nC,912726093529\n")
    out = tmp_path / "lookups.csv"
    code = main(["customers", "--sandbox", "--ids", str(mobiles), "--column", "mobile", "--identifier", "mobile",
                 "--table", "lookups", "-o", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    lookups = pl.read_csv(out, schema_overrides={"identifier_value": pl.String})
    assert lookups.select("value_number", "identifier_value", "customer_id", "error_code").rows() == [
        (1, "912726093529", 565338404, None),
        (2, "910000000000", None, 8015),
        (3, "912726093529", 565338404, None),
    ]


def test_fetch_customers_by_identifier_warns_of_values_without_a_customer() -> None:
    """fetch_customers returns rows of customers only: a value with none is said, never silently left out."""
    client = capframe.Client.sandbox()
    known = next(value for _, _, kind, value in client.sandbox_org.identifiers(5) if kind == "mobile")  # type: ignore[union-attr]
    with pytest.warns(capframe.CapframeWarning, match=r"1 of 2 identifier values have no customer.*failed_lookups"):
        customers = capframe.fetch_customers(["0000000", known], "INSTORE", identifier="mobile", client=client)
    assert customers.height == 1


def test_a_pair_written_the_wrong_way_round_does_not_repeat_the_value() -> None:
    """A value in the type's place is personal data: the error names the position, never the value."""
    client = capframe.Client.sandbox()
    for call in (
        lambda: capframe.lookup_customer_ids([("917799889933", "mobile")], "INSTORE", client=client),
        lambda: capframe.fetch_children(("917799889933", "mobile"), client=client),
    ):
        with pytest.raises(capframe.InvalidArgumentError, match=r"#1 names an unknown identifier type") as raised:
            call()
        assert "917799889933" not in str(raised.value)


def test_this_run_counts_lookups_and_customers_apart(tmp_path: Path) -> None:
    """The repr and the CLI summary of a pull by identifier say how many identifier values and how
    many customer ids the run read and fetched: never the two added up as "units"."""
    found = [v for _, v in of_type("mobile", "INSTORE")[:4]]
    chosen = [*found[:3], "910000000001"]  # three found, one unknown: 4 lookups, 3 customers
    first = capframe.fetch_customer_tables(chosen, "INSTORE", identifier="mobile", client=sandbox(), cache_dir=tmp_path)
    assert repr(first).endswith("this run: 4 identifier values and 3 customer ids fetched, 5 requests sent)")
    grown = capframe.fetch_customer_tables(
        [*chosen, found[3]], "INSTORE", identifier="mobile", client=sandbox(), cache_dir=tmp_path
    )
    assert repr(grown).endswith(
        "this run: 4 identifier values and 3 customer ids from snapshot, "
        "1 identifier value and 1 customer id fetched, 2 requests sent)"
    )
    assert grown.provenance is not None
    assert (grown.provenance.read, grown.provenance.fetched) == (7, 2)
    ids = tmp_path / "mobiles.txt"
    ids.write_text("\n".join(chosen))
    out = io.StringIO()
    code = main(
        ["customers", "--sandbox", "--ids", str(ids), "--identifier", "mobile", "--cache-dir", str(tmp_path)], out
    )
    assert code == 0
    assert (
        "This run: 4 identifier values and 3 customer ids from snapshot, 0 fetched, 0 requests sent" in out.getvalue()
    )


def test_an_account_id_looks_values_up_in_a_multi_account_source(tmp_path: Path) -> None:
    """WECHAT has several accounts: without account_id every value is an 8045 row; with the account
    the values are found; another account's answer is its own unit of the snapshot (8011 here)."""
    wechat = [(c, v) for c, v in of_type("mobile", "WECHAT") if c not in set(_ORG.pii_deleted_ids())][:3]
    values = [v for _, v in wechat]
    client = sandbox()
    without = capframe.lookup_customer_ids(values, "WECHAT", identifier="mobile", client=client)
    assert without["error_code"].to_list() == [8045] * 3
    found = capframe.lookup_customer_ids(
        values, "WECHAT", identifier="mobile", account_id=" wx-1 ", client=client, cache_dir=tmp_path
    )
    assert found.select("customer_id", "found").rows() == [(c, True) for c, _ in wechat]  # accountId was sent
    other = capframe.lookup_customer_ids(
        values, "WECHAT", identifier="mobile", account_id="wx-2", client=client, cache_dir=tmp_path
    )
    assert other["error_code"].to_list() == [8011] * 3  # asked, not the other account's answer from the snapshot
    assert capframe.Snapshot(tmp_path).info().units["lookups"] == 6
    tables = capframe.fetch_customer_tables(
        values, "WECHAT", identifier="mobile", account_id="wx-1", client=sandbox(), cache_dir=tmp_path
    )
    assert tables.customers["customer_id"].to_list() == [c for c, _ in wechat]
    with pytest.raises(capframe.InvalidArgumentError, match="account_id goes with identifiers"):
        capframe.fetch_customers([565338404], "WECHAT", account_id="wx-1", client=client)
    with pytest.raises(capframe.InvalidArgumentError, match="account_id is empty"):
        capframe.lookup_customer_ids(values, "WECHAT", identifier="mobile", account_id=" ", client=client)
    with pytest.raises(capframe.InvalidArgumentError, match="account_id is 70,000 characters long"):
        capframe.lookup_customer_ids(values, "WECHAT", identifier="mobile", account_id="a" * 70_000, client=client)
