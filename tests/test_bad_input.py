"""The bad input catalogue: each mistake gets a clear error, before any request, naming the bad value.

Every error is a ``CapframeError`` and also the built-in a Python user expects (``ValueError`` for a
bad value, ``TypeError`` for a wrong type). Where the mistake can be known before calling the API,
the sandbox's request log proves that nothing was sent.
"""

from __future__ import annotations

import io
import traceback
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import polars as pl
import pytest

import capframe
from capframe import _args, cli
from capframe._client import CLUSTERS
from capframe.errors import ArgumentTypeError, CapframeError, ConfigurationError, InvalidArgumentError
from capframe.sandbox import Sandbox, SandboxServer

FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}


@pytest.fixture
def client() -> capframe.Client:
    return capframe.Client.sandbox(500, seed=1, **FAST)


def sent(client: capframe.Client) -> int:
    assert client.sandbox_org is not None
    return len(client.sandbox_org.request_log)


def assert_refused(exc: BaseException, error: type[CapframeError], *names: str) -> None:
    assert isinstance(exc, error), f"{type(exc).__qualname__}: {exc}"
    assert isinstance(exc, CapframeError)
    assert isinstance(exc, TypeError if issubclass(error, ArgumentTypeError) else ValueError)
    for name in names:
        assert name in str(exc), f"{name!r} not in the message: {exc}"


# --- ids ---

BAD_IDS = [
    # (ids, error, what the message must name)
    pytest.param(["0565338404", "0"], InvalidArgumentError, ("ids[1]", "'0'", "positive"), id="the string 0"),
    pytest.param([565338404, "abc"], ArgumentTypeError, ("ids[1]", "a string"), id="a string, second"),
    pytest.param(["-5"], ArgumentTypeError, ("ids[0]", "strings of digits"), id="a string with a sign"),
    pytest.param([3, 2.5], ArgumentTypeError, ("ids[1]", "2.5"), id="a float"),
    pytest.param([-1.0], InvalidArgumentError, ("ids[0]", "-1.0", "positive"), id="a negative whole float"),
    pytest.param([float("inf")], ArgumentTypeError, ("ids[0]", "inf"), id="infinity"),
    pytest.param([2.0**53 + 2], InvalidArgumentError, ("ids[0]", "2**53", "Int64"), id="a float past 2**53"),
    pytest.param([float("nan")], ArgumentTypeError, ("NaN", "position 0"), id="nan"),
    pytest.param([-5], InvalidArgumentError, ("ids[0]", "-5", "positive"), id="negative"),
    pytest.param([7, 0], InvalidArgumentError, ("ids[1]", "is 0"), id="zero"),
    pytest.param([True], ArgumentTypeError, ("ids[0]", "True"), id="a boolean"),
    pytest.param([1, None], ArgumentTypeError, ("position 1", "None"), id="None"),
    pytest.param([2**63], InvalidArgumentError, (str(2**63),), id="beyond int64"),
    pytest.param([np.int64(-3)], InvalidArgumentError, ("-3",), id="a negative numpy int"),
    pytest.param(np.array([5, -3]), InvalidArgumentError, ("ids[1]", "-3"), id="numpy array, a negative"),
    pytest.param(np.array([1.0, 2.5]), ArgumentTypeError, ("ids[1]", "2.5", "float"), id="numpy float array"),
    pytest.param(np.array([True, False]), ArgumentTypeError, ("True",), id="numpy bool array"),
    pytest.param(pl.Series([4, None]), ArgumentTypeError, ("position 1", "null"), id="Series with a null"),
    pytest.param(pl.Series([None, "a"]), ArgumentTypeError, ("ids[1]", "a string"), id="Series of strings, a null"),
    pytest.param(pl.Series([4.0, 2**60]), InvalidArgumentError, ("ids[1]", "2**53"), id="float Series past 2**53"),
    pytest.param(pl.Series([4.0, 0.0]), InvalidArgumentError, ("ids[1]", "positive"), id="float Series, a zero"),
    # A float32 holds whole numbers exactly up to 2**24 only: 700000002 became 700000000, another customer.
    pytest.param(
        pl.Series([4, 700000002], dtype=pl.Float32), InvalidArgumentError, ("ids[1]", "2**24"), id="Float32 past 2**24"
    ),
    pytest.param(
        np.array([4, 700000002], dtype=np.float32), InvalidArgumentError, ("ids[1]", "2**24"), id="float32 array"
    ),
    pytest.param([4, np.float32(700000002)], InvalidArgumentError, ("ids[1]", "2**24"), id="a numpy float32"),
    pytest.param(pl.Series([4, -4]), InvalidArgumentError, ("ids[1]", "-4"), id="Series, a negative"),
    pytest.param(pl.Series(["1", "2.5"]), ArgumentTypeError, ("ids[1]", "a string"), id="Series of strings"),
    pytest.param(pl.Series(["1", None]), ArgumentTypeError, ("position 1", "null"), id="Series of strings, null"),
    pytest.param(pl.Series([1.5]), ArgumentTypeError, ("1.5",), id="Series of floats"),
    pytest.param(565338404, ArgumentTypeError, ("565338404", "list"), id="one id, not a list"),
    pytest.param("565338404", ArgumentTypeError, ("'565338404'", "list"), id="a string, not a list"),
    pytest.param(None, ArgumentTypeError, ("None",), id="None, not a list"),
    pytest.param(np.int64(5), ArgumentTypeError, ("list",), id="a numpy scalar"),
    pytest.param(pl.DataFrame({"customer_id": [5]}), ArgumentTypeError, ("DataFrame", "column"), id="a DataFrame"),
    pytest.param(pd.DataFrame({"customer_id": [5]}), ArgumentTypeError, ("DataFrame", "column"), id="a pandas frame"),
    pytest.param(pl.LazyFrame({"customer_id": [5]}), ArgumentTypeError, ("LazyFrame", "column"), id="a LazyFrame"),
]


@pytest.mark.parametrize(("ids", "error", "names"), BAD_IDS)
def test_bad_ids_are_refused_before_any_request(
    client: capframe.Client, ids: Any, error: type[CapframeError], names: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        capframe.fetch_customer_tables(ids, "INSTORE", client=client)
    assert_refused(info.value, error, *names)
    assert sent(client) == 0


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param(np.array([2**64 - 1], dtype=np.uint64), id="numpy uint64"),
        pytest.param(pl.Series([2**63], dtype=pl.UInt64), id="polars UInt64"),
    ],
)
def test_unsigned_ids_beyond_int64_are_refused_by_value(client: capframe.Client, ids: Any) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        capframe.fetch_customer_tables(ids, "INSTORE", client=client)
    assert_refused(info.value, InvalidArgumentError, str(int(ids[0])))
    assert sent(client) == 0


def test_a_numpy_object_array_of_ints_is_accepted(client: capframe.Client) -> None:
    ids = client.sandbox_org.customer_ids(3)  # type: ignore[union-attr]
    frame = capframe.fetch_customers(np.array(ids, dtype=object), "INSTORE", client=client)
    assert frame["customer_id"].to_list() == ids


# Ids as text, the way a CSV read as text (pandas dtype=str, polars infer_schema=False) gives them, and as
# an ids file holds them: the library and the command line accept and refuse the same ones.
IDS_AS_TEXT = [
    ("700000000", 700000000),
    ("  700000012  ", 700000012),
    ("0565338404", 565338404),
    ("565338404.0", 565338404),  # pandas' text of an integer column with a gap
    (str(2**63 - 1), 2**63 - 1),
    ("0", None),
    (str(2**63), None),
    ("-5", None),
    ("+5", None),
    ("5.5", None),
    ("1e5", None),
    ("565 338 404", None),
    ("nan", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), IDS_AS_TEXT)
def test_ids_as_text_are_accepted_or_refused_alike_by_the_library_and_the_command_line(
    tmp_path: Path, text: str, expected: int | None
) -> None:
    ids_file = tmp_path / "ids.csv"
    ids_file.write_text(f"customer_id\n{text}\n")
    if expected is None:
        with pytest.raises(CapframeError):
            _args.customer_ids([text])
        with pytest.raises(CapframeError):
            _args.customer_ids(pl.Series([text]))
        with pytest.raises(CapframeError):
            cli._read_ids(str(ids_file), io.StringIO())
    else:
        assert _args.customer_ids([text]) == [expected]
        assert _args.customer_ids(pd.Series([text], dtype=str)) == [expected]
        assert _args.customer_ids(pl.Series([text])) == [expected]
        assert cli._read_ids(str(ids_file), io.StringIO()) == [expected]


def test_a_csv_read_as_text_is_fetched_as_its_ids(client: capframe.Client, tmp_path: Path) -> None:
    ids = client.sandbox_org.customer_ids(3)  # type: ignore[union-attr]
    (tmp_path / "ids.csv").write_text("customer_id\n" + "\n".join(f" {i} " for i in ids) + "\n")
    for column in (
        pl.read_csv(tmp_path / "ids.csv", infer_schema=False)["customer_id"],
        pl.read_csv(tmp_path / "ids.csv", schema={"customer_id": pl.Categorical})["customer_id"],
        pd.read_csv(tmp_path / "ids.csv", dtype="category")["customer_id"],
        pd.read_csv(tmp_path / "ids.csv", dtype=str)["customer_id"],
        pd.read_csv(tmp_path / "ids.csv", dtype=str)["customer_id"].to_list(),
    ):
        assert capframe.fetch_customers(column, "INSTORE", client=client)["customer_id"].to_list() == ids


def test_text_in_place_of_an_id_is_not_repeated(client: capframe.Client) -> None:
    # A string that is not digits may be a name, an email address or a mobile number typed with a +.
    for ids in (["jane.doe@example.com"], "jane.doe@example.com", pl.Series(["jane.doe@example.com"])):
        with pytest.raises(ArgumentTypeError) as info:
            capframe.fetch_customer_tables(ids, "INSTORE", client=client)
        assert "jane" not in str(info.value)
    assert sent(client) == 0


MISSING_IDS = [
    # (ids with 565338404 first and missing values at positions 1 and 3, how they are written)
    pytest.param([565338404, None, 7, None], ("None",), id="list, None"),
    pytest.param([565338404, float("nan"), 7, np.nan], ("NaN",), id="list, NaN"),
    pytest.param(pd.Series([565338404, None, 7, None]), ("NaN",), id="pandas float column"),
    pytest.param(pd.Series([565338404, None, 7, None], dtype="Int64"), ("<NA>",), id="pandas Int64 column"),
    pytest.param(pd.Series([565338404, None, 7, pd.NA], dtype=object), ("<NA>", "None"), id="pandas object column"),
    pytest.param(pl.Series([565338404, None, 7, None]), ("null",), id="polars Int64 Series"),
    pytest.param(pl.Series([565338404.0, None, 7.0, float("nan")]), ("NaN", "null"), id="polars Float64 Series"),
    pytest.param(np.array([565338404.0, np.nan, 7.0, np.nan]), ("NaN",), id="numpy float array"),
]


@pytest.mark.parametrize(("ids", "kinds"), MISSING_IDS)
def test_missing_ids_are_counted_located_and_the_way_to_drop_them_named(
    client: capframe.Client, ids: Any, kinds: tuple[str, ...]
) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        capframe.fetch_customer_tables(ids, "INSTORE", client=client)
    message = str(info.value)
    assert_refused(info.value, ArgumentTypeError, "2 missing value", "among 4", "positions 1, 3", *kinds)
    assert all(hint in message for hint in (".dropna()", ".drop_nulls()")), message
    assert "565338404" not in message  # the values around them are not the problem
    assert sent(client) == 0


def test_many_missing_ids_show_the_first_positions_and_how_many_more() -> None:
    ids = pd.Series([float(i) if i % 3 else None for i in range(1, 31)])  # 10 missing
    with pytest.raises(ArgumentTypeError) as info:
        _args.customer_ids(ids)
    assert_refused(info.value, ArgumentTypeError, "10 missing", "among 30", "positions 2, 5, 8, 11, 14 and 5 more")


WHOLE_FLOATS = [
    pytest.param(lambda ids: [float(i) for i in ids], id="list of floats"),
    pytest.param(lambda ids: pd.Series([*ids, None]).dropna(), id="pandas float column after dropna"),
    pytest.param(lambda ids: pl.Series([*ids, None], dtype=pl.Float64).drop_nulls(), id="polars Float64 Series"),
    pytest.param(lambda ids: np.array(ids, dtype=np.float64), id="numpy float array"),
    pytest.param(lambda ids: [np.float32(i) if i < 2**24 else np.float64(i) for i in ids], id="numpy float scalars"),
]


@pytest.mark.parametrize("make", WHOLE_FLOATS)
def test_whole_floats_are_ids_as_the_cli_reads_them(client: capframe.Client, make: Any) -> None:
    ids = valid_ids(client)
    frame = capframe.fetch_customers(make([*ids, ids[0]]), "INSTORE", client=client)
    assert frame["customer_id"].to_list() == ids
    assert frame["customer_id"].dtype == pl.Int64


def valid_ids(client: capframe.Client) -> list[int]:
    assert client.sandbox_org is not None
    return client.sandbox_org.customer_ids(5)


GOOD_CONTAINERS = [
    pytest.param(lambda ids: [np.int64(i) for i in ids], id="numpy int64 scalars"),
    pytest.param(lambda ids: [np.uint64(i) if n % 2 else np.int32(i) for n, i in enumerate(ids)], id="mixed numpy"),
    pytest.param(lambda ids: np.array(ids, dtype=np.int64), id="numpy int64 array"),
    pytest.param(lambda ids: np.array(ids, dtype=np.uint32), id="numpy uint32 array"),
    pytest.param(lambda ids: pl.Series("id", ids), id="polars Series"),
    pytest.param(lambda ids: pl.Series("id", ids, dtype=pl.UInt64), id="polars UInt64 Series"),
    pytest.param(lambda ids: pl.DataFrame({"id": ids})["id"], id="a DataFrame column"),
    pytest.param(lambda ids: list(pl.Series(ids)), id="polars values"),
    pytest.param(lambda ids: (i for i in ids), id="a generator"),
    pytest.param(lambda ids: tuple(ids), id="a tuple"),
]


@pytest.mark.parametrize("make", GOOD_CONTAINERS)
def test_integer_ids_in_any_container_work(client: capframe.Client, make: Any) -> None:
    ids = valid_ids(client)
    frame = capframe.fetch_customers(make([*ids, ids[0]]), "INSTORE", client=client)
    assert frame["customer_id"].to_list() == ids
    assert frame["customer_id"].dtype == pl.Int64


def test_a_million_ids_are_checked_and_deduplicated() -> None:
    ids = _args.customer_ids(range(1, 1_000_001))
    assert len(ids) == 1_000_000
    assert len(set(ids)) == 1_000_000
    assert ids[:3] == [1, 2, 3]
    assert ids[-1] == 1_000_000
    array = np.concatenate([np.arange(1, 1_000_001, dtype=np.int64), np.arange(1, 1_001, dtype=np.int64)])
    assert len(_args.customer_ids(array)) == 1_000_000
    assert len(_args.customer_ids(pl.Series(array))) == 1_000_000


def test_a_bad_id_at_the_end_of_a_million_is_found_before_any_request(client: capframe.Client) -> None:
    ids: list[Any] = [*range(1, 1_000_000), "1000000x"]
    with pytest.raises(ArgumentTypeError) as info:
        capframe.fetch_customer_tables(ids, "INSTORE", client=client)
    assert_refused(info.value, ArgumentTypeError, "ids[999999]", "a string")
    with pytest.raises(InvalidArgumentError) as info:
        capframe.fetch_customer_tables(np.arange(-1, 999_999), "INSTORE", client=client)
    assert_refused(info.value, InvalidArgumentError, "ids[0]", "-1")
    assert sent(client) == 0


def test_a_source_in_any_case_is_sent_as_the_apis_upper_case_name(tmp_path: Path) -> None:
    """The API's sources are upper-case names; "instore" or " Instore " is normalised, not refused."""
    org = Sandbox(500, seed=1)
    queries: list[str] = []

    async def recorded(request: httpx.Request) -> httpx.Response:
        queries.append(request.url.params.get("source", ""))
        return await org.ahandle(request)

    client = capframe.Client(Sandbox.BASE_URL, username=Sandbox.USERNAME, password=Sandbox.PASSWORD,
                             transport=httpx.MockTransport(recorded))  # fmt: skip
    tables = capframe.fetch_customer_tables(org.customer_ids(2), " Instore ", client=client, progress=False)
    assert tables.provenance.source == "INSTORE"
    assert queries == ["INSTORE"]
    # The command line too: what it keeps in a snapshot is INSTORE's, read again with no request.
    (tmp_path / "ids.txt").write_text(f"{org.customer_ids(1)[0]}\n")
    argv = ["--ids", str(tmp_path / "ids.txt"), "--sandbox", "--source", "instore", "--cache-dir", str(tmp_path / "s")]
    assert cli.main(["customers", *argv, "--no-progress", "-o", str(tmp_path / "out.parquet")]) == 0
    again = capframe.fetch_customer_tables(org.customer_ids(1), "INSTORE", client=client, cache_dir=tmp_path / "s")
    assert (again.provenance.source, len(queries)) == ("INSTORE", 1)


def test_a_million_good_ids_with_a_bad_source_send_nothing(client: capframe.Client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        capframe.fetch_customer_tables(range(1, 1_000_001), "INSTOR", client=client)
    assert_refused(info.value, InvalidArgumentError, "'INSTOR'")
    assert sent(client) == 0


def test_no_ids_is_an_empty_result_and_no_request(client: capframe.Client) -> None:
    tables = capframe.fetch_customer_tables([], "INSTORE", client=client)
    assert tables.customers.is_empty()
    assert sent(client) == 0


# --- sources and options ---


@pytest.mark.parametrize(
    ("source", "error", "names"),
    [
        ("INSTOR", InvalidArgumentError, ("'INSTOR'", "INSTORE", "WECHAT")),
        ("", InvalidArgumentError, ("''",)),
        ("STORE", InvalidArgumentError, ("'STORE'",)),
        (None, ArgumentTypeError, ("NoneType",)),
        (1, ArgumentTypeError, ("int",)),
    ],
)
def test_unknown_sources_are_refused_before_any_request(
    client: capframe.Client, source: Any, error: type[CapframeError], names: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        capframe.fetch_customer_tables(valid_ids(client), source, client=client)
    assert_refused(info.value, error, *names)
    assert sent(client) == 0


def test_a_source_in_another_case_is_accepted(client: capframe.Client) -> None:
    frame = capframe.fetch_customers(valid_ids(client), " instore ", client=client)
    assert frame.height == 5


@pytest.mark.parametrize(
    ("batch_size", "error"),
    [
        (0, InvalidArgumentError),
        (-1, InvalidArgumentError),
        (1001, InvalidArgumentError),
        (2.5, ArgumentTypeError),
        (True, ArgumentTypeError),
        ("10", ArgumentTypeError),
    ],
)
def test_bad_batch_sizes_are_refused_before_any_request(
    client: capframe.Client, batch_size: Any, error: type[CapframeError]
) -> None:
    with pytest.raises(CapframeError) as info:
        capframe.fetch_customer_tables(valid_ids(client), "INSTORE", client=client, batch_size=batch_size)
    assert sent(client) == 0
    assert_refused(info.value, error, "batch_size", repr(batch_size))


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("batch_size", 0, InvalidArgumentError),
        ("concurrency", 0, InvalidArgumentError),
        ("concurrency", 1.5, ArgumentTypeError),
        ("requests_per_minute", -10, InvalidArgumentError),
        ("timeout", 0, InvalidArgumentError),
        ("timeout", "30", ArgumentTypeError),
        ("max_retries", -1, InvalidArgumentError),
        # One rule per kind of mistake: a float where an int is wanted is a type error, for every option.
        ("max_retries", 2.0, ArgumentTypeError),
        ("batch_size", 2000, InvalidArgumentError),  # the per-call argument's limit, 1 to 1000, holds here too
        ("batch_size", 1001, InvalidArgumentError),
        ("timeout", float("inf"), InvalidArgumentError),
        ("timeout", float("nan"), InvalidArgumentError),
        ("retry_backoff", -0.5, InvalidArgumentError),
        ("max_body_bytes", 0, InvalidArgumentError),
        ("max_body_bytes", 1e6, ArgumentTypeError),
        ("requests_per_minute", 60.0, ArgumentTypeError),
    ],
)
def test_bad_client_options_name_the_option_and_value(option: str, value: Any, error: type[CapframeError]) -> None:
    with pytest.raises(error) as info:
        capframe.Client("eu", username="till", password="pw", **{option: value})
    assert_refused(info.value, error, option, repr(value))


@pytest.mark.parametrize(
    ("option", "value"), [("retry_backoff", "fast"), ("max_retry_after", None), ("transport", "http://proxy")]
)
def test_bad_retry_timings_are_capframe_errors(option: str, value: Any) -> None:
    with pytest.raises(CapframeError) as info:
        capframe.Client("eu", username="till", password="pw", **{option: value})
    assert option in str(info.value)


@pytest.mark.parametrize(
    "fetch",
    [
        "customers",
        "children",
    ],
)
def test_a_client_that_is_not_a_client_is_refused(fetch: str) -> None:
    def call() -> object:
        if fetch == "customers":
            return capframe.fetch_customers([1, 2], "INSTORE", client="eu")  # type: ignore[arg-type]
        return capframe.fetch_children(("mobile", "917799889933"), client="eu")  # type: ignore[arg-type]

    with pytest.raises(ArgumentTypeError) as info:
        call()
    assert "Client" in str(info.value)


# --- hosts ---


@pytest.mark.parametrize(
    ("host", "names"),
    [
        ("euu", ("'euu'", "Did you mean 'eu'")),
        ("apac3", ("'apac3'", "Did you mean 'apac'")),
        ("eu.api.capilarytech.com", ("'eu.api.capilarytech.com'", "'eu.api.capillarytech.com'")),
        ("https://us.api.capilarytech.com", ("'us.api.capilarytech.com'", "'us.api.capillarytech.com'")),
        ("http://eu.api.capillarytech.com", ("plain http", "https://")),
        ("http://127.0.0.1.example.com", ("plain http",)),
        ("ftp://eu.api.capillarytech.com", ("https://",)),
        ("", ("empty",)),
    ],
)
def test_bad_hosts_are_refused_with_a_hint(host: str, names: tuple[str, ...]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        capframe.Client(host, username="till", password="pw")
    assert_refused(info.value, InvalidArgumentError, *names)


def test_a_host_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(ArgumentTypeError) as info:
        capframe.Client(443, username="till", password="pw")  # type: ignore[arg-type]
    assert_refused(info.value, ArgumentTypeError, "host", "int")


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("EU", CLUSTERS["eu"]),
        ("eu.api.capillarytech.com", CLUSTERS["eu"]),
        ("https://eu.intouch.capillarytech.com", "https://eu.intouch.capillarytech.com"),
    ],
)
def test_loopback_http_and_real_hosts_are_allowed(host: str, base_url: str) -> None:
    assert capframe.Client(host, username="till", password="pw").base_url == base_url


@pytest.mark.parametrize(
    "host", ["sea.api.capillarytech.com", "ushc.api.capillarytech.com", "cdn-api.capillarytech.cn.com"]
)
def test_documented_cluster_hosts_are_not_taken_for_typos(host: str) -> None:
    assert capframe.Client(host, username="till", password="pw").base_url == f"https://{host}"


# --- credentials ---


def test_nothing_configured_names_the_variables_and_the_sandbox() -> None:
    with pytest.raises(ConfigurationError) as info:
        capframe.Client.from_env(environ={})
    assert_refused(info.value, ConfigurationError, "CAPILLARY_HOST", "Client.sandbox()")


def test_a_host_without_credentials_names_both_pairs() -> None:
    with pytest.raises(ConfigurationError) as info:
        capframe.Client.from_env(environ={"CAPILLARY_HOST": "eu"})
    assert_refused(info.value, ConfigurationError, "CAPILLARY_USERNAME", "CAPILLARY_CLIENT_KEY", "Client.sandbox()")


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "till"},
        {"password": "pw"},
        {"username": "till", "password": ""},
        {"client_key": "key"},
        {"client_secret": "secret"},
    ],
)
def test_half_a_credential_pair_is_refused(credentials: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        capframe.Client("eu", **credentials)
    assert_refused(info.value, ConfigurationError, "incomplete credentials", "username and password")


def test_half_a_pair_from_the_environment_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        capframe.Client.from_env(environ={"CAPILLARY_HOST": "eu", "CAPILLARY_USERNAME": "till"})
    assert_refused(info.value, ConfigurationError, "both variables")


def test_a_credential_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(ArgumentTypeError) as info:
        capframe.Client("eu", username="till", password=1234)  # type: ignore[arg-type]
    assert_refused(info.value, ArgumentTypeError, "password")
    assert "1234" not in str(info.value)  # not even a wrong password is shown


def test_fetch_without_a_client_and_without_configuration_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as info:
        capframe.fetch_customers([1, 2], "INSTORE")
    assert_refused(info.value, ConfigurationError, "CAPILLARY_HOST", "Client.sandbox()")


# --- fetch_children parents ---


@pytest.mark.parametrize(
    ("parent", "error", "names"),
    [
        (("phone", "917799889933"), InvalidArgumentError, ("'phone'", "mobile")),
        (("mobile", ""), InvalidArgumentError, ("empty", "mobile")),
        (("email", "   "), InvalidArgumentError, ("empty", "email")),
        (("mobile", None), InvalidArgumentError, ("parent #1 (mobile identifier) is missing",)),
        (("mobile", 917799889933.0), ArgumentTypeError, ("must be text, not float",)),
        # past httpx's URL limit it was httpx's InvalidURL; any longer than an identifier is refused
        (("mobile", "9" * 70_000), InvalidArgumentError, ("parent #1 (mobile identifier) is 70,000 characters",)),
        (("email", "x" * 513), InvalidArgumentError, ("513 characters", "512 at most")),
        ((None, "917799889933"), InvalidArgumentError, ("None",)),
        (0, InvalidArgumentError, ("is 0", "positive")),
        (-7, InvalidArgumentError, ("-7",)),
        (True, ArgumentTypeError, ("bool",)),
        ("917799889933", ArgumentTypeError, ("pair", "str")),
        (("mobile", "917799889933", "x"), ArgumentTypeError, ("pair",)),
        ([], InvalidArgumentError, ("empty list",)),
        ([("mobile", "917799889933"), ("fax", "1")], InvalidArgumentError, ("parent #2", "'fax'")),
    ],
)
def test_bad_parents_are_refused_before_any_request(
    client: capframe.Client, parent: Any, error: type[CapframeError], names: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        capframe.fetch_children(parent, client=client)
    assert_refused(info.value, error, *names)
    assert sent(client) == 0


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("association", "parent", InvalidArgumentError),
        ("association", None, ArgumentTypeError),
        ("sort_order", "UP", InvalidArgumentError),
        ("page_size", 0, InvalidArgumentError),
        ("page_size", 1.5, ArgumentTypeError),
        ("source", "INSTOR", InvalidArgumentError),
    ],
)
def test_bad_children_options_are_refused_before_any_request(
    client: capframe.Client, option: str, value: Any, error: type[CapframeError]
) -> None:
    with pytest.raises(CapframeError) as info:
        capframe.fetch_children(("mobile", "917799889933"), client=client, **{option: value})
    assert sent(client) == 0
    assert_refused(info.value, error, option if option != "source" else "'INSTOR'")


# --- saved bodies ---


@pytest.mark.parametrize(
    ("pages", "error", "names"),
    [
        (["not bytes"], ArgumentTypeError, ("bytes", "str")),
        ([b"<html>502 Bad Gateway</html>"], InvalidArgumentError, ("not a Get Customers Bulk response",)),
        ([b'{"data": [{"entity": {"id": 5}'], InvalidArgumentError, ("not a Get Customers Bulk response",)),
        ([b'{"errors": []}'], InvalidArgumentError, ('"data"',)),
    ],
)
def test_tidy_customers_refuses_what_is_not_a_response(
    pages: list[Any], error: type[CapframeError], names: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        capframe.tidy_customers(pages)
    assert_refused(info.value, error, *names)


def test_an_error_of_a_sync_call_is_not_chained_to_an_unrelated_runtime_error(client: capframe.Client) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        capframe.fetch_customers(["565338404x"], "INSTORE", client=client)
    assert info.value.__context__ is None
    assert "RuntimeError" not in "".join(traceback.format_exception(info.value))


def test_no_credentials_with_a_snapshot_is_a_whole_sentence_naming_the_host_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It ended "... or pass client=", mid-sentence, and without the snapshot's host when some ids were held."""
    held, other = 565338404, 566135941
    capframe.fetch_customers([held], "INSTORE", client=capframe.Client.sandbox(), cache_dir=tmp_path, progress=False)
    for name in ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY",
                 "CAPILLARY_CLIENT_SECRET"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as some:
        capframe.fetch_customers([held, other], "INSTORE", cache_dir=tmp_path)
    monkeypatch.setenv("CAPILLARY_HOST", "eu")
    with pytest.raises(ConfigurationError) as none:
        capframe.fetch_customers([held], "INSTORE", cache_dir=tmp_path)
    assert f"for {Sandbox.BASE_URL} and source INSTORE: to fetch them" in str(some.value)
    assert f"(it holds {Sandbox.BASE_URL} INSTORE): to fetch them" in str(none.value)
    for error in (some.value, none.value):
        assert str(error).endswith("or pass client=capframe.Client(host, username=..., password=...)."), error
    # The command line says the same in its own terms.
    (tmp_path / "ids.txt").write_text(f"{held}\n")
    assert cli.main(["customers", "--ids", str(tmp_path / "ids.txt"), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"(it holds {Sandbox.BASE_URL} INSTORE): to fetch them, set CAPILLARY_HOST" in err
    assert "client=" not in err
    assert "--sandbox" in err


def test_https_to_a_local_plain_http_server_suggests_http(sandbox_server: SandboxServer) -> None:
    """Client("127.0.0.1:8765") means https://: against `capframe sandbox` the TLS error says to write http://."""
    address = sandbox_server.url.removeprefix("http://")
    client = capframe.Client(address, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, max_retries=0)
    with pytest.raises(ConfigurationError) as info:
        capframe.fetch_customers([565338404], "INSTORE", client=client, progress=False)
    assert f"use http://{address} " in str(info.value)


def test_an_oauth_refusal_names_the_credentials_as_the_user_gave_them(
    sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = capframe.Client(sandbox_server.url, client_key=Sandbox.CLIENT_KEY, client_secret="wrong", max_retries=0)
    with pytest.raises(capframe.AuthenticationError) as as_arguments:
        capframe.fetch_customers([565338404], "INSTORE", client=given, progress=False)
    assert "client_key and client_secret given to capframe.Client" in str(as_arguments.value)
    assert "CAPILLARY_" not in str(as_arguments.value)
    monkeypatch.setenv("CAPILLARY_HOST", sandbox_server.url)
    monkeypatch.setenv("CAPILLARY_CLIENT_KEY", Sandbox.CLIENT_KEY)
    monkeypatch.setenv("CAPILLARY_CLIENT_SECRET", "wrong")
    with pytest.raises(capframe.AuthenticationError) as from_env:
        capframe.fetch_customers([565338404], "INSTORE", client=capframe.Client.from_env(max_retries=0))
    assert "check CAPILLARY_CLIENT_KEY and CAPILLARY_CLIENT_SECRET" in str(from_env.value)
