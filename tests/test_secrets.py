"""Secrets and personal data: never in a repr, a log line, an exception, a cassette or a cache key.

The tests know every secret in play (the password, its MD5, the Basic header and its base64 part,
the OAuth client secret and every token the sandbox issued) and the personal data of the customers
fetched (names, emails, mobiles, identifier values), and scan every place they must not appear.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import ssl
import stat
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import vcr
import yaml

import capframe
import capframe.testing
from capframe._http import Session
from capframe.sandbox import Faults, Sandbox

FAST: dict[str, Any] = {"retry_backoff": 0.001, "max_retry_after": 0.01, "requests_per_minute": None}
PASSWORD = "Pass123-secret"
SECRET = "oauth-client-secret-xyz"


def basic_secrets(username: str, password: str) -> list[str]:
    digest = hashlib.md5(password.encode()).hexdigest()
    token = base64.b64encode(f"{username}:{digest}".encode()).decode()
    return [password, digest, token, f"Basic {token}"]


class Issued:
    """The sandbox behind a transport that remembers every token it hands out and every request id."""

    def __init__(self, org: Sandbox) -> None:
        self.org = org
        self.tokens: list[str] = []
        self.api_request_ids: list[str] = []  # of the API requests that got an answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self.org.handle(request)
        if not request.url.path.endswith("/token/generate"):
            self.api_request_ids.append(response.headers["X-Cap-Requestid"])
        if request.url.path.endswith("/token/generate") and response.status_code == 200:
            self.tokens.append(response.json()["data"]["accessToken"])
        return response

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def sandbox_client(issued: Issued, *, oauth: bool = False, **options: Any) -> capframe.Client:
    credentials = (
        {"client_key": Sandbox.CLIENT_KEY, "client_secret": Sandbox.CLIENT_SECRET}
        if oauth
        else {"username": Sandbox.USERNAME, "password": Sandbox.PASSWORD}
    )
    return capframe.Client(Sandbox.BASE_URL, transport=issued.transport(), **credentials, **{**FAST, **options})


def sandbox_secrets(issued: Issued) -> list[str]:
    """The sandbox's password itself ("sandbox") is also its host name: its MD5 and header stand for it."""
    return [*basic_secrets(Sandbox.USERNAME, Sandbox.PASSWORD)[1:], Sandbox.CLIENT_SECRET, *issued.tokens]


def personal_data(tables: capframe.CustomerTables | capframe.ChildrenTables) -> set[str]:
    """Every name, email, mobile and identifier value in the tables (long enough to be telling)."""
    main = tables.customers if isinstance(tables, capframe.CustomerTables) else tables.children
    values = {
        *main["first_name"].drop_nulls(),
        *main["last_name"].drop_nulls(),
        *main["email"].drop_nulls(),
        *main["mobile"].drop_nulls(),
        *tables.identifiers["value"].drop_nulls(),
        *tables.comm_channels["value"].drop_nulls(),
    }
    found = {v for v in values if len(v) >= 4}
    _WORDS.update(found)
    return found


def assert_absent(text: str, values: list[str] | set[str], where: str) -> None:
    """Secrets anywhere, even inside a longer word; personal data as a whole word (short names are common)."""
    for value in values:
        found = value in text if value not in _WORDS else re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text)
        assert not found, f"{value!r} appears in {where}"


_WORDS: set[str] = set()  # values matched as whole words: filled by personal_data()


def exception_text(exc: BaseException) -> str:
    """Everything an exception shows: str, repr, args, its chain and its formatted traceback."""
    parts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            parts.append(exception_text(linked))
    return "\n".join(parts)


# --- repr and str ---


def test_credentials_in_the_host_url_are_refused_or_hidden() -> None:
    try:
        client = capframe.Client(f"https://till:{PASSWORD}@eu.api.capillarytech.com", username="a", password="b")
    except capframe.CapframeError as exc:
        assert_absent(exception_text(exc), [PASSWORD], "the error")
        return
    assert_absent(repr(client) + client.base_url, [PASSWORD], "the client")


def test_a_basic_auth_client_shows_no_secret() -> None:
    client = capframe.Client("eu", username="store123", password=PASSWORD)
    shown = [repr(client), str(client), repr(client._auth), str(client._auth), repr(vars(client)), f"{client!r}"]
    for text in shown:
        assert_absent(text, basic_secrets("store123", PASSWORD), "a repr")
    assert "store123" in repr(client)  # the till code is not a secret, and says which till


def test_an_oauth_client_shows_no_secret_nor_token_even_after_a_pull() -> None:
    issued = Issued(Sandbox(500, seed=1))
    client = sandbox_client(issued, oauth=True)
    capframe.fetch_customers(issued.org.customer_ids(5), "INSTORE", client=client)
    assert issued.tokens, "a token was issued"
    shown = [repr(client), str(client), repr(client._auth), str(client._auth), repr(vars(client))]
    for text in shown:
        assert_absent(text, [Sandbox.CLIENT_SECRET, *issued.tokens], "a repr")


def test_the_sandbox_client_shows_no_secret() -> None:
    client = capframe.Client.sandbox(100, oauth=True, **FAST)
    assert_absent(
        repr(client), [*basic_secrets(Sandbox.USERNAME, Sandbox.PASSWORD)[1:], Sandbox.CLIENT_SECRET], "a repr"
    )


# --- exceptions ---


def test_a_refused_password_is_an_error_without_any_credential() -> None:
    org = Sandbox(500, seed=1)
    client = capframe.Client(Sandbox.BASE_URL, username="till9", password=PASSWORD, transport=org.transport(), **FAST)
    with pytest.raises(capframe.AuthenticationError) as info:
        capframe.fetch_customers(org.customer_ids(3), "INSTORE", client=client)
    assert_absent(exception_text(info.value), basic_secrets("till9", PASSWORD), "the AuthenticationError")


def test_a_refused_oauth_secret_is_an_error_without_the_secret() -> None:
    org = Sandbox(500, seed=1)
    client = capframe.Client(
        Sandbox.BASE_URL, client_key=Sandbox.CLIENT_KEY, client_secret=SECRET, transport=org.transport(), **FAST
    )
    with pytest.raises(capframe.AuthenticationError) as info:
        capframe.fetch_customers(org.customer_ids(3), "INSTORE", client=client)
    assert_absent(exception_text(info.value), [SECRET], "the AuthenticationError")


def test_a_failed_pull_is_an_error_without_credentials_or_personal_data() -> None:
    issued = Issued(Sandbox(500, seed=1))
    ids = issued.org.customer_ids(30)
    handle = issued.handle

    def first_batch_fails(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getCustomers") and ids[0] in json.loads(request.content):
            return httpx.Response(503, json={"errors": [{"code": 503, "message": "unavailable"}]})
        return handle(request)

    issued.handle = first_batch_fails  # type: ignore[method-assign]
    client = sandbox_client(issued, oauth=True, max_retries=1)
    with pytest.raises(capframe.FetchError) as info:
        capframe.fetch_customer_tables(ids, "INSTORE", client=client, batch_size=10)
    partial = info.value.partial
    assert isinstance(partial, capframe.CustomerTables)
    secrets = sandbox_secrets(issued)
    pii = personal_data(partial)
    assert pii
    text = exception_text(info.value)
    assert_absent(text, secrets, "the FetchError")
    assert_absent(text, pii, "the FetchError")
    assert_absent(repr(partial), pii, "the repr of the tables")


@pytest.mark.parametrize("documented", ["integer", "boolean"])
def test_a_value_of_the_wrong_type_is_refused_without_repeating_it(documented: str) -> None:
    """A mobile number where an integer (userId) or a boolean (a channel's primary) is documented:
    the error says what is wrong, not the value."""
    mobile = "919876543210"
    channel = {"type": "mobile", "value": "x", "primary": mobile if documented == "boolean" else True}
    profile = {"userId": mobile if documented == "integer" else 7, "identifiers": [], "commChannels": [channel]}
    body = json.dumps({"data": [{"entity": {"id": 7, "profiles": [profile]}, "errors": [], "success": True}]})
    where = {
        "integer": r"profiles\[\]\.userId where Int64",
        "boolean": r"profiles\[\]\.commChannels\[\]\.primary where Boolean",
    }[documented]
    with pytest.raises(capframe.CapframeError, match=f"a JSON string at data.*{where} is documented") as info:
        capframe.tidy_customers([body.encode()])
    assert_absent(exception_text(info.value), [mobile], "the error")


@pytest.fixture(scope="module")
def family() -> tuple[str, str]:
    org = Sandbox(2000, seed=1)
    return next((t, v) for t, v in org.parents() if t == "mobile")


def test_an_unknown_parent_is_an_error_that_does_not_repeat_its_identifier() -> None:
    client = capframe.Client.sandbox(500, seed=1, **FAST)
    mobile = "919812345678"
    with pytest.raises(capframe.ParentNotFoundError) as info:
        capframe.fetch_children(("mobile", mobile), client=client)
    assert_absent(exception_text(info.value), [mobile], "the ParentNotFoundError")
    assert "parent #1" in str(info.value)
    assert "mobile" in str(info.value)


def test_unknown_parents_among_many_are_a_warning_that_does_not_repeat_them() -> None:
    client = capframe.Client.sandbox(500, seed=1, **FAST)
    known = client.sandbox_org.parents()[0]  # type: ignore[union-attr]
    unknown = [("mobile", "919812345678"), ("email", "someone.private@example.com")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = capframe.fetch_children_tables([known, *unknown], client=client)
    messages = " ".join(str(w.message) for w in caught)
    assert "2 of 3 parents were not found" in messages
    assert_absent(messages, [v for _, v in unknown], "the warning")
    assert tables.errors.height == 2  # the identifiers are data: in the errors table, not in messages


@pytest.mark.parametrize(
    ("endpoint", "status", "answer"),
    [
        ("lookup", 400, {"errors": [{"code": 1234, "message": "identifier {} is invalid"}]}),
        ("children", 200, {"errors": [{"code": 8015, "message": "no customer {} found"}], "success": False}),
    ],
)
def test_an_api_message_that_repeats_the_value_asked_is_repeated_without_it(
    endpoint: str, status: int, answer: dict[str, Any]
) -> None:
    """A server may put the identifier value it was asked for in its error message (in another case):
    the API's words reach the error, so the value is blanked from them."""
    org = Sandbox(500, seed=1)
    email = "Someone.Private@Example.com"

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/customers/lookup", "/customers/bulk")):
            error = answer["errors"][0]
            echoed = {**answer, "errors": [{**error, "message": error["message"].format(email.lower())}]}
            return httpx.Response(status, json=echoed)
        return org.handle(request)

    client = capframe.Client(
        Sandbox.BASE_URL, username="till", password="pw", transport=httpx.MockTransport(echo), **FAST
    )
    pull = {
        "lookup": lambda: capframe.lookup_customer_ids([email], "INSTORE", identifier="email", client=client),
        "children": lambda: capframe.fetch_children(("email", email), client=client),
    }[endpoint]
    with pytest.raises(capframe.CapframeError) as info:
        pull()
    text = exception_text(info.value)
    assert "***" in text  # the API's words are there, but for the value
    assert email.lower() not in text.lower()


def test_failing_children_pages_are_an_error_that_does_not_repeat_the_parent(family: tuple[str, str]) -> None:
    client = capframe.Client.sandbox(2000, seed=1, faults=Faults(script=["503"] * 4), max_retries=1, **FAST)
    with pytest.raises(capframe.FetchError) as info:
        capframe.fetch_children(family, client=client)
    assert_absent(exception_text(info.value), [family[1]], "the FetchError")


# --- logs ---


@pytest.fixture
def capframe_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("capframe")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("oauth", [False, True], ids=["basic", "oauth"])
def test_each_request_id_is_logged_at_debug_and_nothing_secret_or_personal(
    capframe_log: list[logging.LogRecord], oauth: bool
) -> None:
    issued = Issued(Sandbox(500, seed=1, faults=Faults(script=["503", "ok", "reset", "truncate"])))
    client = sandbox_client(issued, oauth=oauth)
    tables = capframe.fetch_customer_tables(issued.org.customer_ids(60), "INSTORE", client=client, batch_size=10)
    text = "\n".join(record.getMessage() for record in capframe_log)
    logged = re.findall(r"X-Cap-Requestid (\S+)", text)
    assert len(issued.api_request_ids) == 6 + 2  # six batches, two answered failures (a reset has no answer)
    assert sorted(logged) == sorted(issued.api_request_ids), "each answered request once, with its X-Cap-Requestid"
    # Every request at DEBUG; one INFO line at the end says what the pull did.
    assert [record.levelno for record in capframe_log if record.levelno != logging.DEBUG] == [logging.INFO]
    sent = 6 + 3 + oauth  # six batches, three retries, and the token request
    assert capframe_log[-1].getMessage().endswith(f"60 customer ids fetched, {sent} requests sent")
    assert "retry 1 of" in text  # failures are logged too
    assert_absent(text, sandbox_secrets(issued), "the capframe log")
    assert_absent(text, personal_data(tables), "the capframe log")


def test_children_logs_name_no_parent_identifier(
    capframe_log: list[logging.LogRecord], family: tuple[str, str]
) -> None:
    client = capframe.Client.sandbox(2000, seed=1, faults=Faults(script=["503"]), **FAST)
    tables = capframe.fetch_children_tables(family, client=client, page_size=2)
    text = "\n".join(record.getMessage() for record in capframe_log)
    assert "X-Cap-Requestid sbx-" in text
    assert_absent(text, [family[1], *personal_data(tables)], "the capframe log")


def test_no_log_record_of_a_children_pull_holds_the_parent_identifier(family: tuple[str, str]) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        capframe.fetch_children(family, client=capframe.Client.sandbox(2000, seed=1, **FAST))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert_absent("\n".join(r.getMessage() for r in records), [family[1]], "a log record")


def test_the_redaction_and_the_cassette_scrubbing_blank_what_each_endpoints_spec_names_personal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No list of personal query parameters apart from the endpoints: an endpoint registered with one
    has it blanked from httpx's log lines and scrubbed from cassettes, with nothing else to edit."""
    from vcr.request import Request

    from capframe._endpoints import SPECS, Spec, Words

    spec = Spec("loyalty", "GET", "/v2/loyalty", pl.String(), None, ("points",), ("host",), 1, dict, Words(*"wxyz"))
    monkeypatch.setitem(SPECS, "loyalty", dataclasses.replace(spec, personal={"cardValue": "cardType"}))
    url = "https://eu.api.capillarytech.com/v2/loyalty?cardType=mobile&cardValue=917700112233&source=INSTORE"
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("httpx")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records == [f'HTTP Request: GET {url.replace("917700112233", "***")} "HTTP/1.1 200 OK"']
    scrubbed = capframe.testing.scrub_request(Request("GET", url, b"", {}))
    assert "917700112233" not in scrubbed.uri
    assert "cardValue=910" in scrubbed.uri  # a placeholder mobile of the type cardType names


# --- the cache ---


def test_cache_names_hold_no_credential_and_do_not_depend_on_them(tmp_path: Path) -> None:
    trees = []
    units: list[pl.DataFrame] = []
    every_secret: list[str] = []
    for oauth in (False, True):
        issued = Issued(Sandbox(500, seed=1))
        client = sandbox_client(issued, oauth=oauth)
        folder = tmp_path / ("oauth" if oauth else "basic")
        capframe.fetch_customer_tables(
            issued.org.customer_ids(25), "INSTORE", client=client, batch_size=10, cache_dir=folder
        )
        trees.append(sorted(str(p.relative_to(folder)) for p in folder.rglob("*")))
        index = pl.read_parquet(folder / "customers" / "index.parquet")
        units.append(index.select("host", "source", "unit").sort("unit"))
        every_secret += sandbox_secrets(issued)
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for secret in sandbox_secrets(issued):
                    assert secret.encode() not in data, f"{secret!r} is in {path.name}"
    assert units[0].equals(units[1]), "the same pull with other credentials holds the same units"
    assert len(trees[0]) == len(trees[1])
    assert_absent("\n".join(trees[0] + trees[1]), every_secret, "the snapshot's file names")


def test_cache_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: what capframe must not rely on
    try:
        client = capframe.Client.sandbox(500, seed=1, **FAST)
        ids = client.sandbox_org.customer_ids(25)  # type: ignore[union-attr]
        root = tmp_path / "pull"
        capframe.fetch_customer_tables(ids, "INSTORE", client=client, batch_size=10, cache_dir=root)
    finally:
        os.umask(old)
    paths = [root, *root.rglob("*")]
    assert any(p.is_file() for p in paths)
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path.relative_to(tmp_path)} is {oct(mode)}"


# --- TLS ---


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(lambda: capframe.Client("eu", username="till", password="pw"), id="basic"),
        pytest.param(lambda: capframe.Client("us", client_key="key", client_secret="secret"), id="oauth"),
        pytest.param(
            lambda: capframe.Client.from_env(
                environ={"CAPILLARY_HOST": "apac2", "CAPILLARY_USERNAME": "t", "CAPILLARY_PASSWORD": "p"}
            ),
            id="from_env",
        ),
    ],
)
def test_tls_verification_stays_on(client: Any) -> None:
    async def check() -> None:
        async with Session.connect(client()) as session:
            transport = session.http._transport
            assert isinstance(transport, httpx.AsyncHTTPTransport)
            context = transport._pool._ssl_context
            assert context.verify_mode == ssl.CERT_REQUIRED
            assert context.check_hostname is True
            assert str(session.http.base_url).startswith("https://")

    asyncio.run(check())


def test_no_code_turns_tls_verification_off() -> None:
    package = Path(capframe.__file__).parent
    for path in package.rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False", source), path


# --- cassettes ---


def record(tmp_path: Path, name: str, pull: Any) -> str:
    recorder = vcr.VCR(cassette_library_dir=str(tmp_path), record_mode="once", **capframe.testing.vcr_config())
    with recorder.use_cassette(f"{name}.yaml"):
        pull()
    return (tmp_path / f"{name}.yaml").read_text()


@pytest.mark.parametrize("oauth", [False, True], ids=["basic", "oauth"])
def test_a_recorded_cassette_holds_no_credential_and_no_personal_data(tmp_path: Path, oauth: bool) -> None:
    issued = Issued(Sandbox(500, seed=1))
    client = sandbox_client(issued, oauth=oauth)
    ids = issued.org.customer_ids(12)
    tables = capframe.fetch_customer_tables(ids, "INSTORE", client=client)  # what the data really is
    cassette = record(tmp_path, "customers", lambda: capframe.fetch_customers(ids, "INSTORE", client=client))
    assert "getCustomers" in cassette
    assert_absent(cassette, sandbox_secrets(issued), "the cassette")
    assert_absent(cassette, personal_data(tables), "the cassette")


def test_a_recorded_children_cassette_holds_no_parent_identifier(tmp_path: Path, family: tuple[str, str]) -> None:
    client = capframe.Client.sandbox(2000, seed=1, **FAST)
    tables = capframe.fetch_children_tables(family, client=client)
    cassette = record(tmp_path, "children", lambda: capframe.fetch_children(family, client=client))
    assert "associationEntityIdentifierValue" in cassette
    assert_absent(cassette, [family[1], *personal_data(tables)], "the cassette")


@pytest.mark.parametrize("oauth", [False, True], ids=["basic", "oauth"])
def test_recording_a_cassette_logs_no_credential_and_no_personal_data(
    tmp_path: Path, oauth: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """vcrpy's INFO line "Appending request ... and response ..." showed the answer as it came, before
    the scrubbers: the OAuth access token, the customers' names and mobiles."""
    issued = Issued(Sandbox(500, seed=1))
    ids = issued.org.customer_ids(12)
    tables = capframe.fetch_customer_tables(ids, "INSTORE", client=sandbox_client(issued))  # what the data really is
    client = sandbox_client(issued, oauth=oauth)  # a token requested while recording
    with caplog.at_level(logging.DEBUG):
        record(tmp_path, "customers", lambda: capframe.fetch_customers(ids, "INSTORE", client=client))
    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    assert "vcr.cassette: Appending request" in logged  # the lines are there, redacted
    assert_absent(logged, sandbox_secrets(issued), "the log")
    assert_absent(logged, personal_data(tables), "the log")


def test_recording_a_children_cassette_logs_no_parent_identifier(
    tmp_path: Path, family: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = capframe.Client.sandbox(2000, seed=1, **FAST)
    tables = capframe.fetch_children_tables(family, client=client)
    with caplog.at_level(logging.DEBUG):
        record(tmp_path, "children", lambda: capframe.fetch_children(family, client=client))
    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    assert "vcr.cassette: Appending request" in logged
    assert_absent(logged, [family[1], *personal_data(tables)], "the log")


def test_a_recorded_answer_that_repeats_the_value_asked_holds_it_no_more(tmp_path: Path) -> None:
    """The lookup's answer (or a parent's) may name the value asked in its message: the query's
    personal values are scrubbed from the answers' text as well, where they are words of their own."""
    org = Sandbox(500, seed=1)
    email = "someone.private@example.com"

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/customers/lookup"):
            message = f"no customer with {request.url.params['identifierValue']}"
            return httpx.Response(200, json={"entity": None, "errors": [{"code": 8015, "message": message}]})
        return org.handle(request)

    client = capframe.Client(
        Sandbox.BASE_URL,
        username=Sandbox.USERNAME,
        password=Sandbox.PASSWORD,
        transport=httpx.MockTransport(echo),
        **FAST,
    )
    ids = org.customer_ids(5)
    prefix = str(ids[0])[:6]  # a value asked that is part of the customer ids answered later

    def pull() -> None:
        capframe.lookup_customer_ids([("email", email), ("externalId", prefix)], "INSTORE", client=client)
        capframe.fetch_customers(ids, "INSTORE", client=client)

    cassette = record(tmp_path, "lookup", pull)
    assert "no customer with" in cassette
    assert email not in cassette
    bodies = [i["response"]["body"]["string"] for i in yaml.safe_load(cassette)["interactions"]]
    assert all(json.loads(body) for body in bodies)  # a value inside a number is left: the answers stay JSON
    assert str(ids[0]) in cassette


def test_scrubbing_a_recorded_response_twice_changes_nothing() -> None:
    org = Sandbox(500, seed=1)
    body = org.handle(
        httpx.Request(
            "POST",
            f"{Sandbox.BASE_URL}/v2/bulk/getCustomers?source=INSTORE",
            headers={"Authorization": "Basic " + basic_secrets(Sandbox.USERNAME, Sandbox.PASSWORD)[2]},
            content=str(org.customer_ids(8)).replace(" ", "").encode(),
        )
    ).content
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["application/json"], "set-cookie": ["session=abc"]},
        "body": {"string": body},
    }
    once = capframe.testing.scrub_response(response)
    assert once["body"]["string"] != body
    assert "set-cookie" not in once["headers"]
    assert capframe.testing.scrub_response(once) == once
    half = {**response, "body": {"string": body[: len(body) // 2]}}  # a body cut short is scrubbed as far as it goes
    once = capframe.testing.scrub_response(half)
    assert capframe.testing.scrub_response(once) == once
    tables = capframe.tidy_customers([body])
    assert_absent(once["body"]["string"].decode(), personal_data(tables), "a half body")


def test_the_values_asked_are_not_in_the_reprs_that_carry_them() -> None:
    """A lookup's value and a parent's identifier travel through the engine in small objects; a
    traceback with locals, a debugger or a log line with %r shows their repr. Both showed the value."""
    from capframe._children import _parent
    from capframe._lookup import values_of

    value = values_of(["917799889933"], "mobile")[0]
    parent = _parent(("email", "someone@example.com"), 0)
    assert (value.text, parent.value) == ("917799889933", "someone@example.com")
    assert "917799889933" not in repr(value)
    assert "mobile" in repr(value)
    assert "someone@example.com" not in repr(parent)
    assert "email" in repr(parent)
