"""The fault catalogue: every way the API can fail, injected by the sandbox, one test each.

After every fault a pull must give the same tables as a fault-free pull of the same ids from the
same organisation (polars ``.equals``, row order included) when the retries succeed: every
requested id exactly once in ``customers``, nothing extra, nothing missing. Ids that still fail
say why (a row with ``success=False`` and a message), and the only exceptions that escape are
``CapframeError`` subclasses whose message says what to do.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl
import pytest

import capframe
from capframe import CapframeError, _answers, _engine, _wire
from capframe.sandbox import FAULT_KINDS, Faults, Sandbox

CUSTOMERS = 2_000
SEED = 7
BATCH = 20
FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
TOKEN_PATH = "/v3/oauth/token/generate"
BULK_PATH = "/v2/bulk/getCustomers"

# Faults answered with something other than the data: the request is sent again.
RETRIED = (
    "500", "502", "503", "504", "429", "429-date", "429-bare", "521",
    "reset", "timeout", "truncate", "malformed", "html",
)  # fmt: skip
# Faults where the body is still the data, bent: nothing to retry, the answer is read as it is.
READ_AS_IS = ("content-type", "duplicate", "extra")
assert set(FAULT_KINDS) == {*RETRIED, *READ_AS_IS, "drop", "token-expiry"}, "a new fault kind needs a test here"

_ORG = Sandbox(CUSTOMERS, seed=SEED)
# Customers that exist (some deleted on request: 8109), and two the org never had (8015).
_KNOWN = _ORG.customer_ids(150)
UNKNOWN = _ORG.unknown_ids(2)
IDS: list[int] = [*_KNOWN, *[i for i in _ORG.pii_deleted_ids() if i not in _KNOWN][:2], *UNKNOWN]
assert len(set(IDS)) == len(IDS)


def sandbox(faults: Faults | None = None, *, oauth: bool = False, **options: Any) -> capframe.Client:
    return capframe.Client.sandbox(CUSTOMERS, seed=SEED, faults=faults, oauth=oauth, **{**FAST, **options})


def org_of(client: capframe.Client) -> Sandbox:
    assert client.sandbox_org is not None
    return client.sandbox_org


@contextlib.contextmanager
def only_capframe_errors() -> Iterator[None]:
    """Whatever escapes must be a CapframeError (never httpx, json, polars or pandera)."""
    try:
        yield
    except CapframeError:
        raise
    except BaseException as exc:
        pytest.fail(f"{type(exc).__module__}.{type(exc).__qualname__} escaped (mro {type(exc).__mro__}): {exc}")


def pull(client: capframe.Client, ids: list[int] = IDS, **options: Any) -> capframe.CustomerTables:
    options = {"batch_size": BATCH, **options}
    with only_capframe_errors():
        return capframe.fetch_customer_tables(ids, "INSTORE", client=client, **options)


def pull_warnings(client: capframe.Client, ids: list[int] = IDS, **options: Any) -> tuple[Any, list[Any]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = pull(client, ids, **options)
    return tables, caught


@pytest.fixture(scope="module")
def reference() -> capframe.CustomerTables:
    """The same ids from the same organisation, with no fault at all."""
    return pull(sandbox())


def assert_same_tables(got: capframe.CustomerTables, want: capframe.CustomerTables) -> None:
    for name in want.MODELS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.schema == b.schema, name
        assert a.equals(b), f"table {name} differs from the fault-free pull ({a.height} vs {b.height} rows)"


def assert_every_id_once(tables: capframe.CustomerTables, ids: list[int] = IDS) -> None:
    assert tables.customers["customer_id"].to_list() == ids  # each once, in request order
    for name, frame in tables.tables().items():
        stray = set(frame["customer_id"].drop_nulls()) - set(ids)
        assert not stray, f"{name} holds ids nobody asked for: {sorted(stray)[:5]}"
    failed = tables.customers.filter(~pl.col("success"))
    assert failed["error_message"].null_count() == 0, "a failed id must say why"


def faults_seen(client: capframe.Client) -> list[str]:
    return [r.fault for r in org_of(client).request_log if r.fault]


def bulk_requests(client: capframe.Client) -> int:
    return sum(r.path == BULK_PATH for r in org_of(client).request_log)


BATCHES = -(-len(IDS) // BATCH)


def test_the_reference_pull_is_what_the_org_holds(reference: capframe.CustomerTables) -> None:
    assert_every_id_once(reference)
    failed = reference.customers.filter(~pl.col("success"))
    assert failed["error_code"].null_count() == 0
    assert 8109 in set(failed["error_code"])
    assert failed.filter(pl.col("error_code") == 8015)["customer_id"].to_list() == UNKNOWN


# --- one fault, on the first request ---


@pytest.mark.parametrize("kind", RETRIED)
def test_a_failed_request_is_retried_and_the_tables_are_unchanged(
    kind: str, reference: capframe.CustomerTables
) -> None:
    client = sandbox(Faults(script=[kind]))
    tables, caught = pull_warnings(client)
    assert faults_seen(client) == [kind]
    assert bulk_requests(client) == BATCHES + 1  # the one failed request, sent again
    assert_every_id_once(tables)
    assert_same_tables(tables, reference)
    assert not [w for w in caught if issubclass(w.category, capframe.CapframeWarning)]


@pytest.mark.parametrize("kind", RETRIED)
def test_three_failures_in_a_row_still_give_the_whole_tables(kind: str, reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=[kind] * 3), concurrency=1)
    tables = pull(client)
    assert faults_seen(client) == [kind] * 3
    assert bulk_requests(client) == BATCHES + 3
    assert_same_tables(tables, reference)


def bent_in_its_group(
    bend: Callable[[bytes], bytes], monkeypatch: pytest.MonkeyPatch
) -> tuple[capframe.Client, list[tuple[int, ...]], list[object]]:
    """A client whose first answer to the second batch is bent by ``bend``, in a form that passes the
    check at arrival; the requests sent, and what the read of each group said of each body."""
    org = Sandbox(CUSTOMERS, seed=SEED)
    asked: list[tuple[int, ...]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        response = org.handle(request)
        if request.url.path != BULK_PATH:
            return response
        ids = tuple(json.loads(request.content))
        asked.append(ids)
        if IDS[BATCH + 3] in ids and asked.count(ids) == 1:
            return httpx.Response(200, content=bend(response.content))
        return response

    outcomes: list[object] = []

    def read_group(unread: Any) -> _answers.GroupRead:
        read = _answers.read_group(unread)
        outcomes.extend(read.outcomes)
        return read

    monkeypatch.setattr(_engine, "read_group", read_group)
    client = capframe.Client(
        Sandbox.BASE_URL, username=Sandbox.USERNAME, password=Sandbox.PASSWORD,
        transport=httpx.MockTransport(handle), **FAST,
    )  # fmt: skip
    return client, asked, outcomes


def test_a_body_found_unreadable_with_its_group_asks_that_request_again_alone(
    reference: capframe.CustomerTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body that passes the check at arrival (a JSON object's first and last bytes) but is not JSON
    is found when its group's bodies are read together: that request, and only it, is asked again,
    and the tables lose nothing."""
    client, asked, outcomes = bent_in_its_group(lambda body: body[: len(body) // 2] + b"}", monkeypatch)
    tables = pull(client)
    # Found by the group's read, not at arrival: one unreadable body among the requests' bodies.
    assert len(outcomes) == BATCHES
    assert [type(o) for o in outcomes if not isinstance(o, list)] == [_wire.WireFormatError]
    assert len(asked) == BATCHES + 1
    assert [ids for ids in set(asked) if asked.count(ids) > 1] == [tuple(sorted(IDS[BATCH : 2 * BATCH]))]
    assert_every_id_once(tables)
    assert_same_tables(tables, reference)


def test_a_body_of_undocumented_types_in_a_group_fails_its_request_only(
    reference: capframe.CustomerTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id sent as a float, found when the group is read: its request fails at once (asking again
    gets the same), every other request's rows are as a fault-free pull has them."""
    client, asked, outcomes = bent_in_its_group(
        lambda body: re.sub(rb'("id":\d+)', rb"\1.5", body, count=1), monkeypatch
    )
    with pytest.raises(capframe.FetchError) as info, only_capframe_errors():
        pull(client)
    assert [type(o) for o in outcomes if not isinstance(o, list)] == [_wire.WireTypeError]
    assert len(asked) == BATCHES  # not asked again
    failed = tuple(sorted(IDS[BATCH : 2 * BATCH]))
    assert info.value.ids == failed
    partial = info.value.partial
    assert isinstance(partial, capframe.CustomerTables)
    keep = ~pl.col("customer_id").is_in(list(failed))
    assert partial.customers.filter(keep).equals(reference.customers.filter(keep))


def test_a_wrong_content_type_on_a_json_body_is_read_as_json(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["content-type"]))
    tables, caught = pull_warnings(client)
    assert faults_seen(client) == ["content-type"]
    assert bulk_requests(client) == BATCHES
    assert_same_tables(tables, reference)
    assert not caught


def test_an_entity_sent_twice_is_kept_once(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["duplicate"] * 3))
    tables, caught = pull_warnings(client)
    assert faults_seen(client) == ["duplicate"] * 3
    assert_every_id_once(tables)
    assert_same_tables(tables, reference)
    assert not caught


def test_an_entity_nobody_asked_for_is_left_out_with_a_warning(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["extra"] * 2))
    tables, caught = pull_warnings(client)
    assert faults_seen(client) == ["extra"] * 2
    assert bulk_requests(client) == BATCHES  # nothing to ask again
    unexpected = [w for w in caught if issubclass(w.category, capframe.UnexpectedEntitiesWarning)]
    assert len(unexpected) == 1, "one warning per pull, naming the ids"
    assert re.search(r"ids \[\d+", str(unexpected[0].message)), "the warning names the ids it left out"
    assert_every_id_once(tables)  # the extra id is in no table
    assert_same_tables(tables, reference)


def test_an_entity_left_out_of_an_answer_is_asked_again(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["drop"]), concurrency=1)
    tables = pull(client)
    log = org_of(client).request_log
    assert faults_seen(client) == ["drop"]
    assert [r.n_ids for r in log] == [BATCH] * (BATCHES - 1) + [len(IDS) % BATCH or BATCH, 1]  # asked again, alone
    assert_every_id_once(tables)
    assert tables.customers.equals(reference.customers)
    for name in reference.MODELS:  # the same rows in every table...
        got, want = getattr(tables, name), getattr(reference, name)
        assert got.sort(got.columns, nulls_last=True).equals(want.sort(want.columns, nulls_last=True)), name


def test_an_entity_asked_again_keeps_its_place_in_every_table(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["drop"]), concurrency=1)
    assert_same_tables(pull(client), reference)


def test_an_entity_left_out_twice_is_a_failed_row_that_says_so() -> None:
    ids = IDS[:BATCH]
    client = sandbox(Faults(script=["drop", "drop"]), concurrency=1)
    tables = pull(client, ids)
    assert [r.n_ids for r in org_of(client).request_log] == [BATCH, 1]
    assert_every_id_once(tables, ids)
    lost = max(ids)  # the sandbox drops the last entity; ids are sorted inside a batch
    assert lost in tables.failed_ids
    row = tables.customers.filter(pl.col("customer_id") == lost).row(0, named=True)
    assert row["success"] is False
    assert "not in the API's answer" in row["error_message"]
    assert tables.errors.filter(pl.col("customer_id") == lost)["origin"].to_list() == ["capframe"]


def test_an_oauth_token_revoked_mid_run_is_renewed(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["ok", "ok", "token-expiry", "ok", "token-expiry"]), oauth=True)
    tables = pull(client)
    log = org_of(client).request_log
    assert faults_seen(client) == ["token-expiry"] * 2
    assert [r.status for r in log if r.fault] == [401, 401]
    assert sum(r.path == TOKEN_PATH for r in log) >= 3  # the first token and (at least) two renewals
    assert_same_tables(tables, reference)


def test_an_oauth_token_that_runs_out_mid_run_is_renewed(reference: capframe.CustomerTables) -> None:
    """A real expiry: a one-second token, and a pull that takes longer than that."""
    org = Sandbox(CUSTOMERS, seed=SEED, token_ttl=1, latency=0.15)
    client = capframe.Client(
        Sandbox.BASE_URL,
        client_key=Sandbox.CLIENT_KEY,
        client_secret=Sandbox.CLIENT_SECRET,
        transport=org.transport(),
        concurrency=1,
        **FAST,
    )
    tables = pull(client)
    assert sum(r.path == TOKEN_PATH for r in org.request_log) >= 2
    assert_same_tables(tables, reference)


def test_two_threads_sharing_an_oauth_client_outlive_short_tokens(reference: capframe.CustomerTables) -> None:
    """Pulls in two threads (two event loops) share one client, its token and its pace; tokens live
    one second, the pulls longer. Both get every table, with the credentials they had."""
    org = Sandbox(CUSTOMERS, seed=SEED, token_ttl=1, latency=0.1)
    client = capframe.Client(
        Sandbox.BASE_URL,
        client_key=Sandbox.CLIENT_KEY,
        client_secret=Sandbox.CLIENT_SECRET,
        transport=org.transport(),
        **{**FAST, "requests_per_minute": 3000},
    )
    results: list[capframe.CustomerTables | BaseException] = []

    def one_pull() -> None:
        try:
            results.append(pull(client))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=one_pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [type(r).__name__ for r in results] == ["CustomerTables"] * 2
    for tables in results:
        assert isinstance(tables, capframe.CustomerTables)
        assert_same_tables(tables, reference)
    assert sum(r.path == TOKEN_PATH for r in org.request_log) >= 2  # the pulls outlived a token


# --- several kinds at once ---


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_kind_of_fault_at_once_at_a_high_rate(reference: capframe.CustomerTables, seed: int) -> None:
    """Half the requests fail, in all the ways at once, and the tables are those of a fault-free pull.

    An id left out of an answer is asked once more; should the same id be left out again (a 'drop'
    drawn for its second request too, rare), it is a failed row that says so: that is allowed, and
    only that, and every other row must be as in the reference."""
    kinds = [k for k in FAULT_KINDS if k != "token-expiry"]  # the renewal is tested above, on its own
    faults = Faults(rates=dict.fromkeys(kinds, 0.5 / len(kinds)), seed=seed)
    client = sandbox(faults, max_retries=12)
    tables, caught = pull_warnings(client, batch_size=5)
    seen = set(faults_seen(client))
    assert len(seen) >= len(kinds) - 5, f"too few kinds were injected to prove much: {sorted(seen)}"
    assert_every_id_once(tables)
    lost_twice = tables.customers.filter(pl.col("error_message").str.contains("asked twice", literal=True))
    if lost_twice.height:
        assert faults_seen(client).count("drop") >= 2 * lost_twice.height
    keep = ~pl.col("customer_id").is_in(lost_twice["customer_id"].to_list())
    for name in reference.MODELS:
        assert getattr(tables, name).filter(keep).equals(getattr(reference, name).filter(keep)), name
    if "extra" in seen:
        assert any(issubclass(w.category, capframe.UnexpectedEntitiesWarning) for w in caught)


@pytest.mark.parametrize("oauth", [False, True], ids=["basic", "oauth"])
def test_every_kind_of_fault_at_once_with_concurrent_batches(reference: capframe.CustomerTables, oauth: bool) -> None:
    """Eight batches in flight, their retries interleaved. 'drop' is left out: with interleaving, which
    request a second drop hits is down to timing (see test_an_entity_left_out_twice_...)."""
    kinds = [k for k in FAULT_KINDS if k not in ("token-expiry", "drop")]
    client = sandbox(Faults(rates=dict.fromkeys(kinds, 0.4 / len(kinds)), seed=5), oauth=oauth, max_retries=12)
    tables, _ = pull_warnings(client, batch_size=4)
    assert len(set(faults_seen(client))) >= 8
    assert_every_id_once(tables)
    assert_same_tables(tables, reference)


# --- when the retries run out ---


def failing_batch(org: Sandbox, member: int) -> httpx.MockTransport:
    """The sandbox, except that the batch holding ``member`` is always answered 503."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == BULK_PATH and member in json.loads(request.content):
            body = {"errors": [{"status": False, "code": 503, "message": "Service temporarily unavailable"}]}
            return httpx.Response(503, json=body)
        return org.handle(request)

    return httpx.MockTransport(handle)


def test_retries_exhausted_raise_fetch_error_with_the_rest_in_partial(reference: capframe.CustomerTables) -> None:
    org = Sandbox(CUSTOMERS, seed=SEED)
    client = capframe.Client(
        Sandbox.BASE_URL, username=Sandbox.USERNAME, password=Sandbox.PASSWORD,
        transport=failing_batch(org, IDS[BATCH + 3]), max_retries=1, **FAST,
    )  # fmt: skip
    with pytest.raises(capframe.FetchError) as info, only_capframe_errors():
        pull(client)
    exc = info.value
    message = str(exc)
    assert "503" in message
    assert f"{BATCH} of {len(IDS)} customer ids could not be fetched" in message
    assert "try again later" in message
    assert ".partial" in message
    assert exc.status == 503
    assert exc.ids == tuple(sorted(IDS[BATCH : 2 * BATCH]))  # the second batch, and only it
    failed = set(exc.ids)

    partial = exc.partial
    assert isinstance(partial, capframe.CustomerTables)
    assert_every_id_once(partial)
    rows = partial.customers.filter(pl.col("customer_id").is_in(list(failed)))
    assert rows["success"].to_list() == [False] * BATCH
    assert all("503" in m for m in rows["error_message"])
    assert set(partial.failed_ids) == failed | set(reference.failed_ids)
    # Every other batch is in .partial exactly as a fault-free pull has it.
    for name in reference.MODELS:
        got, want = getattr(partial, name), getattr(reference, name)
        keep = ~pl.col("customer_id").is_in(list(failed))
        if name == "customers":
            assert got.filter(keep).equals(want.filter(keep))
        elif name == "errors":
            assert got.filter(pl.col("origin") == "api").equals(want.filter(keep))
            assert got.filter(pl.col("origin") == "capframe")["customer_id"].to_list() == sorted(failed)
        else:
            assert got.equals(want.filter(keep)), name


@pytest.mark.parametrize("kind", RETRIED)
def test_every_retried_fault_says_what_failed_when_retries_run_out(kind: str) -> None:
    ids = IDS[:BATCH]
    client = sandbox(Faults(script=[kind, kind]), max_retries=1)
    with pytest.raises(capframe.FetchError) as info, only_capframe_errors():
        pull(client, ids)
    message = str(info.value)
    status = int(kind[:3]) if kind[:3].isdigit() else None
    assert info.value.status == status if status is not None else info.value.status in (None, 200)
    if status is not None:
        assert f"HTTP {status}" in message
    else:
        assert {"reset": "connection", "timeout": "connection"}.get(kind, "unreadable body") in message
    assert f"{BATCH} of {BATCH} customer ids" in message
    assert info.value.partial is not None
    assert info.value.partial.failed_ids == ids


# --- Retry-After ---


def test_retry_after_in_seconds_is_honoured_up_to_the_cap() -> None:
    client = sandbox(Faults(script=["429"]), max_retry_after=0.3, concurrency=1)
    pull(client, IDS[:BATCH])
    first, second = org_of(client).request_log
    assert first.status == 429
    assert second.status == 200
    assert second.time - first.time >= 0.29  # Retry-After: 1, capped at 0.3


def with_first_answer(org: Sandbox, first: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """The sandbox, except that its first API request is answered by ``first``."""
    sent: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == BULK_PATH:
            sent.append(time.monotonic())
            if len(sent) == 1:
                return first(request)
        return org.handle(request)

    transport = httpx.MockTransport(handle)
    transport.sent = sent  # type: ignore[attr-defined]
    return transport


def test_retry_after_as_an_http_date_is_honoured_up_to_the_cap() -> None:
    org = Sandbox(CUSTOMERS, seed=SEED)
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    transport = with_first_answer(org, lambda r: httpx.Response(429, headers={"Retry-After": when}, request=r))
    client = capframe.Client(
        Sandbox.BASE_URL, username=Sandbox.USERNAME, password=Sandbox.PASSWORD, transport=transport,
        **{**FAST, "max_retry_after": 0.3},
    )  # fmt: skip
    tables = pull(client, IDS[:BATCH])
    sent = transport.sent  # type: ignore[attr-defined]
    assert len(sent) == 2
    assert sent[1] - sent[0] >= 0.29
    assert tables.customers.height == BATCH


def test_a_429_without_retry_after_backs_off_and_completes(reference: capframe.CustomerTables) -> None:
    client = sandbox(Faults(script=["429-bare"] * 4), concurrency=1)
    tables = pull(client)
    assert [r.status for r in org_of(client).request_log[:5]] == [429, 429, 429, 429, 200]
    assert_same_tables(tables, reference)


def test_the_sandbox_rate_limit_is_waited_out() -> None:
    client = sandbox(sandbox_requests_per_minute=3, max_retry_after=0.01, max_retries=40)
    org = org_of(client)
    now = [0.0]
    org._clock = lambda: now[0]  # the sandbox's clock: a minute passes every ten requests
    original = org.handle

    def handle(request: httpx.Request) -> httpx.Response:
        now[0] += 6.0
        return original(request)

    org.handle = handle  # type: ignore[method-assign]
    tables = pull(client, IDS[:60], batch_size=10)
    assert 429 in {r.status for r in org.request_log}
    assert_every_id_once(tables, IDS[:60])
    assert tables.errors.filter(pl.col("origin") == "capframe").is_empty()


# --- answers that retrying cannot fix ---


def test_wrong_till_password_is_an_authentication_error_naming_the_till_code_and_password() -> None:
    org = Sandbox(CUSTOMERS, seed=SEED)
    client = capframe.Client(
        Sandbox.BASE_URL, username=Sandbox.USERNAME, password="not-the-password", transport=org.transport(), **FAST
    )
    with pytest.raises(capframe.AuthenticationError) as info, only_capframe_errors():
        pull(client, IDS[:BATCH])
    message = str(info.value)
    assert "401" in message
    assert "till code" in message
    assert "password" in message
    assert info.value.status == 401
    assert [r.status for r in org.request_log] == [401], "a refused password is not retried"


def test_wrong_oauth_secret_is_an_authentication_error_naming_the_key_and_secret() -> None:
    org = Sandbox(CUSTOMERS, seed=SEED)
    client = capframe.Client(
        Sandbox.BASE_URL, client_key=Sandbox.CLIENT_KEY, client_secret="wrong", transport=org.transport(), **FAST
    )
    with pytest.raises(capframe.AuthenticationError) as info, only_capframe_errors():
        pull(client, IDS[:BATCH])
    assert "client_key and client_secret given to capframe.Client" in str(info.value)
    assert [r.path for r in org.request_log] == [TOKEN_PATH]


def test_a_401_that_a_new_token_does_not_cure_is_an_authentication_error() -> None:
    org = Sandbox(CUSTOMERS, seed=SEED)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == BULK_PATH:
            return httpx.Response(401, json={"errors": [{"status": False, "code": 401, "message": "Unauthorized"}]})
        return org.handle(request)

    client = capframe.Client(
        Sandbox.BASE_URL, client_key=Sandbox.CLIENT_KEY, client_secret=Sandbox.CLIENT_SECRET,
        transport=httpx.MockTransport(handle), **FAST,
    )  # fmt: skip
    with pytest.raises(capframe.AuthenticationError) as info, only_capframe_errors():
        pull(client, IDS[:BATCH])
    assert "till code" in str(info.value)
    assert "client key and secret" in str(info.value)
    assert [r.path for r in org.request_log] == [TOKEN_PATH, TOKEN_PATH]  # renewed once, then given up


def test_403_is_access_denied_naming_the_access_group() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = {"errors": [{"status": False, "code": 403, "message": "Access denied"}]}
        return httpx.Response(403, json=body)

    client = capframe.Client("eu", username="till1", password="pw", transport=httpx.MockTransport(handle), **FAST)
    with pytest.raises(capframe.AccessDeniedError) as info, only_capframe_errors():
        capframe.fetch_customers([1, 2, 3], "INSTORE", client=client)
    message = str(info.value)
    assert "403" in message
    assert "Default access group" in message
    assert "v2" in message
    assert info.value.status == 403
    assert info.value.code == 403
    assert len(calls) == 1, "403 is not retried"


def test_another_4xx_is_rejected_with_the_apis_code_and_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = {"data": [], "warnings": [], "errors": [{"status": False, "code": 1060, "message": "Batch limit"}]}
        return httpx.Response(400, json=body)

    client = capframe.Client("eu", username="till1", password="pw", transport=httpx.MockTransport(handle), **FAST)
    with pytest.raises(capframe.RequestRejectedError) as info, only_capframe_errors():
        capframe.fetch_customers([1, 2, 3], "INSTORE", client=client)
    assert "HTTP 400" in str(info.value)
    assert "1060" in str(info.value)
    assert info.value.code == 1060
    assert len(calls) == 1


def test_a_transient_failure_of_the_token_endpoint_is_retried(reference: capframe.CustomerTables) -> None:
    org = Sandbox(CUSTOMERS, seed=SEED)
    token_calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            token_calls.append(1)
            if len(token_calls) == 1:
                return httpx.Response(503, text="<html>503 Service Unavailable</html>")
        return org.handle(request)

    client = capframe.Client(
        Sandbox.BASE_URL, client_key=Sandbox.CLIENT_KEY, client_secret=Sandbox.CLIENT_SECRET,
        transport=httpx.MockTransport(handle), **FAST,
    )  # fmt: skip
    assert_same_tables(pull(client), reference)


# --- fetch_children under the same faults ---

_FAMILY = max(
    (f for f in _ORG.families() if f.entity_type == "parentCustomer" and len(f.child_ids) < 100),
    key=lambda f: len(f.child_ids),
)
PARENT = (_FAMILY.identifier_type, _FAMILY.identifier_value)
PAGE = 3


def children(client: capframe.Client) -> capframe.ChildrenTables:
    with only_capframe_errors():
        return capframe.fetch_children_tables(PARENT, client=client, page_size=PAGE)


@pytest.fixture(scope="module")
def family() -> capframe.ChildrenTables:
    tables = children(sandbox())
    assert sorted(tables.children["customer_id"]) == sorted(_FAMILY.child_ids)
    assert len(_FAMILY.child_ids) > 2 * PAGE
    return tables


@pytest.mark.parametrize(
    "kind",
    [k for k in FAULT_KINDS],
)
def test_fetch_children_under_each_fault(kind: str, family: capframe.ChildrenTables) -> None:
    client = sandbox(Faults(script=[kind]), oauth=kind == "token-expiry")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", capframe.UnexpectedEntitiesWarning)
        tables = children(client)
    assert faults_seen(client) == [kind]
    for name in family.MODELS:
        assert getattr(tables, name).equals(getattr(family, name)), name


def test_fetch_children_retries_exhausted_is_a_fetch_error() -> None:
    client = sandbox(Faults(script=["503", "503"]), max_retries=1)
    with pytest.raises(capframe.FetchError) as info, only_capframe_errors():
        children(client)
    assert "HTTP 503" in str(info.value)
    assert info.value.status == 503
    assert info.value.partial is not None


def test_fetch_children_of_a_customer_id_whose_lookup_fails_raises_a_capframe_error() -> None:
    client = sandbox(Faults(script=["503", "503"]), max_retries=1)
    with pytest.raises(capframe.FetchError), only_capframe_errors():
        capframe.fetch_children(_FAMILY.parent_id or _ORG.customer_ids(1)[0], client=client)
