"""Client: hosts, credentials, and what a client shows of itself."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

import capframe
from capframe.sandbox import Sandbox

DOCUMENTED_HEADER = "Basic c3RvcmUxMjM6MmYyM2ZhMzU3OWYzZjc1MTc1NzkzNjQ5MTE1YzFiMjU="


def recording_client(**credentials: str) -> tuple[capframe.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v3/oauth/token/generate":
            return httpx.Response(200, json={"data": {"accessToken": "tok-1", "ttlSeconds": 300}, "errors": None})
        items = [
            {"entity": {"id": i, "profiles": []}, "errors": [], "success": True} for i in json.loads(request.content)
        ]
        return httpx.Response(200, json={"data": items, "warnings": [], "errors": []})

    return capframe.Client("eu", transport=httpx.MockTransport(handler), **credentials), seen  # type: ignore[arg-type]


def test_basic_auth_sends_the_md5_of_the_password_as_documented() -> None:
    client, seen = recording_client(username="store123", password="Pass123")
    capframe.fetch_customers([1], "INSTORE", client=client, progress=False)
    assert seen[0].headers["Authorization"] == DOCUMENTED_HEADER
    assert seen[0].url == "https://eu.api.capillarytech.com/v2/bulk/getCustomers?source=INSTORE"
    assert seen[0].content == b"[1]"
    assert seen[0].headers["Content-Type"] == "application/json"


def test_oauth_gets_a_token_and_sends_it_without_an_authorization_header() -> None:
    client, seen = recording_client(client_key="key", client_secret="secret")
    capframe.fetch_customers([1, 2], "INSTORE", client=client, batch_size=1)
    token, *calls = seen
    assert token.url.path == "/v3/oauth/token/generate"
    assert token.content == b'{"key":"key","secret":"secret"}'
    assert len(calls) == 2  # one token serves both batches
    assert all(c.headers["X-CAP-API-OAUTH-TOKEN"] == "tok-1" and "Authorization" not in c.headers for c in calls)


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("eu", "https://eu.api.capillarytech.com"),
        ("APAC", "https://apac.api.capillarytech.com"),
        ("in", "https://apac.api.capillarytech.com"),
        ("sea", "https://apac2.api.capillarytech.com"),
        ("us", "https://us.api.capillarytech.com"),
        ("cn", "https://api.capillarytech.cn.com"),
        ("eucrm.cc.capillarytech.com", "https://eucrm.cc.capillarytech.com"),
        ("https://eu.api.capillarytech.com/", "https://eu.api.capillarytech.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9", "http://localhost:9"),
    ],
)
def test_hosts_are_aliases_names_or_urls(host: str, base_url: str) -> None:
    assert capframe.Client(host, username="u", password="p").base_url == base_url


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("euu", "(?i)did you mean 'eu'"),
        ("eu.api.capilarytech.com", "(?i)did you mean 'eu.api.capillarytech.com'"),
        ("http://eu.api.capillarytech.com", "plain http"),
        ("", "empty"),
        ("ftp://eu.api.capillarytech.com", "https://"),
    ],
)
def test_bad_hosts_are_refused_before_any_request(host: str, message: str) -> None:
    with pytest.raises(capframe.InvalidArgumentError, match=message) as caught:
        capframe.Client(host, username="u", password="p")
    assert isinstance(caught.value, ValueError)


def test_a_client_never_shows_its_secrets() -> None:
    basic = capframe.Client("eu", username="store123", password="Pass123")
    oauth = capframe.Client("eu", client_key="key-1", client_secret="very-secret")
    shown = repr(basic) + str(basic) + repr(oauth) + str(oauth) + repr(basic._auth) + repr(oauth._auth)
    for secret in ("Pass123", "2f23fa3579f3f75175793649115c1b25", DOCUMENTED_HEADER.split()[1], "very-secret"):
        assert secret not in shown
    assert repr(basic) == "Client('https://eu.api.capillarytech.com', basic auth as till 'store123')"


def test_from_env_reads_the_capillary_variables() -> None:
    env = {"CAPILLARY_HOST": "us", "CAPILLARY_CLIENT_KEY": "k", "CAPILLARY_CLIENT_SECRET": "s"}
    client = capframe.Client.from_env(env)
    assert client.base_url == "https://us.api.capillarytech.com"
    assert repr(client) == "Client('https://us.api.capillarytech.com', OAuth client 'k')"


def test_with_nothing_configured_the_error_names_the_variables_and_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(capframe.ConfigurationError, match=r"CAPILLARY_HOST.*Client\.sandbox\(\)"):
        capframe.fetch_customers([1], "INSTORE")
    with pytest.raises(capframe.ConfigurationError, match="incomplete credentials"):
        capframe.Client.from_env({"CAPILLARY_HOST": "eu", "CAPILLARY_USERNAME": "till"})


def test_the_sandbox_client_uses_the_sandbox_credentials() -> None:
    client = capframe.Client.sandbox(50)
    assert client.base_url == Sandbox.BASE_URL
    assert repr(client) == f"Client('{Sandbox.BASE_URL}', sandbox)"
    assert capframe.fetch_customers([565338404], "INSTORE", client=client)["success"].to_list() == [True]


def test_the_public_surface_is_pinned() -> None:
    assert capframe.__all__ == sorted(capframe.__all__, key=str.lower) or capframe.__all__ == sorted(capframe.__all__)
    assert set(capframe.__all__) == {
        "AccessDeniedError", "ArgumentTypeError", "AuthenticationError", "CapframeError", "CapframeWarning",
        "ChildrenTables", "Client", "ConfigurationError", "CustomerLookupTables", "CustomerTables", "FetchError",
        "InvalidArgumentError",
        "ParentNotFoundError", "Provenance", "RequestRejectedError", "SchemaDriftWarning", "UnexpectedEntitiesWarning",
        "Snapshot", "SnapshotDamagedWarning", "SnapshotError", "SnapshotInfo",
        "__version__", "afetch_children", "afetch_children_tables", "afetch_customer_tables", "afetch_customers",
        "alookup_customer_ids", "fetch_children", "fetch_children_tables", "fetch_customer_tables", "fetch_customers",
        "lookup_customer_ids", "scan_children",
        "scan_customers", "schemas", "tidy_customers",
        "asink_customer_tables", "asink_customers", "sink_customer_tables", "sink_customers",
        "asink_children", "asink_children_tables", "sink_children", "sink_children_tables",
    }  # fmt: skip
    for name in capframe.__all__:
        assert hasattr(capframe, name), name
    for error in ("InvalidArgumentError", "ConfigurationError"):
        assert issubclass(getattr(capframe, error), (capframe.CapframeError, ValueError))
    assert issubclass(capframe.ArgumentTypeError, TypeError)


def test_import_capframe_leaves_pandera_for_later() -> None:
    """pandera imports pandas (seconds); capframe loads it on first validation or capframe.schemas."""
    code = "import sys, capframe; assert 'pandera' not in sys.modules; capframe.schemas.Customers; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr
