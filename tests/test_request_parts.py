"""The request layer's parts, each alone, in milliseconds: the classifier and the retry policy with
fabricated ``httpx.Response``s and exceptions, the body cap with in-memory streams, the auth flows."""

from __future__ import annotations

import asyncio
import gzip
import importlib.abc
import socket
import ssl
import sys
import types
import zlib
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

import capframe
from capframe import _body, _classify, _retry, _wire
from capframe._auth import BasicAuth, OAuth
from capframe._pacing import Pacer
from capframe.sandbox import Sandbox, SandboxServer

URL = "https://eu.api.capillarytech.com/v2/bulk/getCustomers?source=INSTORE"


def answer(status: int, body: bytes = b"", **headers: str) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers, request=httpx.Request("POST", URL))


# --- the classifier ---


@pytest.mark.parametrize("status", [200, 204])
def test_a_2xx_is_done_with_its_body(status: int) -> None:
    assert _classify.classify(answer(status, b"{}"), "a batch") == _classify.Done(b"{}")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 521, 599])
def test_a_429_or_5xx_is_asked_again(status: int) -> None:
    verdict = _classify.classify(answer(status, **{"Retry-After": "7"}), "a batch")
    assert verdict == _classify.Retry(f"HTTP {status}", status, 7.0, pause=status == 429)


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (401, capframe.AuthenticationError, "refused the credentials (HTTP 401: Nope (code 4))"),
        (403, capframe.AccessDeniedError, "access denied (HTTP 403: Nope (code 4))"),
        (400, capframe.RequestRejectedError, "rejected a batch (HTTP 400: Nope (code 4)); retrying will not help"),
        (404, capframe.RequestRejectedError, "HTTP 404: Nope (code 4)"),
    ],
)
def test_other_4xx_are_refused_with_the_apis_code_and_message(
    status: int, error: type[capframe.CapframeError], says: str
) -> None:
    verdict = _classify.classify(answer(status, b'{"errors":[{"code":4,"message":"Nope"}]}'), "a batch")
    assert isinstance(verdict, _classify.Refuse)
    assert isinstance(verdict.error, error)
    assert says in str(verdict.error)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_refused_naming_where_and_the_host_to_check(status: int) -> None:
    verdict = _classify.classify(answer(status, Location="https://login.example.com/x?token=1"), "a batch")
    assert isinstance(verdict, _classify.Refuse)
    message = str(verdict.error)
    assert f"HTTP {status}, a redirect to login.example.com, which capframe does not follow" in message
    assert "check the host (https://eu.api.capillarytech.com)" in message
    assert "token=1" not in message


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b'{"errors":[{"code":1060,"message":"Batch limit"}]}', 1060, "Batch limit"),
        (b'{"errors":[{"code":1e999,"message":"Big"}]}', None, "Big"),
        (b'{"errors":[{"code":' + b"9" * 30 + b',"message":"x"}]}', None, "x"),
        (b'{"errors":[{"code":true,"message":7}]}', None, ""),
        (b'{"errors":"no"}', None, ""),
        (b"[" * 100_000 + b"]" * 100_000, None, ""),
        (b"<html>nginx</html>", None, ""),
        (b'{"errors":[{"message":"a\\nb\\u0000' + b"c" * 500 + b'"}]}', None, "a?b?" + "c" * 193 + "..."),
        (b'{"errors":[{"message":"' + b" " * 70_000 + b'"}]}', None, ""),
    ],
)
def test_error_bodies_of_any_shape_give_a_sane_code_and_message(body: bytes, code: int | None, message: str) -> None:
    assert _classify.api_error(body) == (code, message)


def test_server_text_is_redacted() -> None:
    auth = BasicAuth("till", "pass-word-1")
    verdict = _classify.classify(answer(401, b'{"errors":[{"message":"PASS-WORD-1 is wrong"}]}'), "x", auth.redact)
    assert isinstance(verdict, _classify.Refuse)
    assert "*** is wrong" in str(verdict.error)


def chained(error: BaseException) -> httpx.ConnectError:
    try:
        try:
            raise error
        except BaseException as exc:
            raise httpx.ConnectError("All connection attempts failed") from exc
    except httpx.ConnectError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (TimeoutError(), _classify.Retry("no complete answer within timeout=30 s")),
        (httpx.ReadError("reset"), _classify.Retry("ReadError (the connection failed)")),
        (_body.UndecodableBody("bad gzip"), _classify.Retry("an unreadable body: bad gzip")),
        (chained(OSError("network is unreachable")), _classify.Retry("ConnectError (the connection failed)")),
    ],
)
def test_failures_worth_retrying(exc: Exception, verdict: _classify.Retry) -> None:
    assert _classify.classify_failure(exc, "https://h", 30) == verdict


@pytest.mark.parametrize(
    ("cause", "says"),
    [
        (ConnectionRefusedError(111, "refused"), "nothing answers at https://h: the connection was refused"),
        (socket.gaierror(-2, "Name or service not known"), "the host name of https://h is unknown"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "the TLS connection to https://h failed"),
    ],
)
def test_configuration_mistakes_are_refused_at_once(cause: BaseException, says: str) -> None:
    verdict = _classify.classify_failure(chained(cause), "https://h", 30)
    assert isinstance(verdict, _classify.Refuse)
    assert isinstance(verdict.error, capframe.ConfigurationError)
    assert says in str(verdict.error)
    assert "check the host (CAPILLARY_HOST" in str(verdict.error)


def test_a_body_past_the_cap_is_refused_as_lasting() -> None:
    verdict = _classify.classify_failure(_body.BodyTooLarge(1000), "https://h", 30)
    assert isinstance(verdict, _classify.Refuse)
    assert isinstance(verdict.error, _retry.RetriesExhausted)
    assert verdict.error.lasting
    assert "max_body_bytes=1,000" in verdict.error.reason
    assert _retry.advice([verdict.error]) == _classify.TOO_LARGE


def test_an_exception_it_does_not_know_is_left_to_rise() -> None:
    assert _classify.classify_failure(KeyError("x"), "https://h", 30) is None


# --- the retry policy ---


def test_waits_grow_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = _retry.RetryPolicy(max_retries=100, backoff=0.5, max_retry_after=60)
    assert [policy.wait(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.wait(1, rng=lambda: 0.0) == 0.25  # jitter: half to all of the wait
    assert policy.wait(50, rng=lambda: 1.0) == _retry.MAX_BACKOFF
    assert policy.wait(100, rng=lambda: 1.0) == _retry.MAX_BACKOFF  # 2**99 does not overflow


def test_retries_run_out() -> None:
    policy = _retry.RetryPolicy(max_retries=2, backoff=0.5, max_retry_after=60)
    assert policy.wait(2) is not None
    assert policy.wait(3) is None
    assert _retry.RetryPolicy(0, 0.5, 60).wait(1) is None


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = _retry.RetryPolicy(max_retries=3, backoff=0.5, max_retry_after=10)
    assert policy.wait(1, after=3.0) == 3.0
    assert policy.wait(1, after=float("inf")) == 10


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("5", 5.0),
        ("-5", 0.0),
        ("1e999", float("inf")),
        ("nan", None),
        ("soon", None),
        ("Mon, 01 Jan 99999999999 00:00:00 GMT", None),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0),  # 100 s after the epoch, asked at 60
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("9" * 5000, float("inf")),
    ],
)
def test_retry_after_of_any_size_or_date(header: str | None, seconds: float | None) -> None:
    assert _retry.retry_after(header, now=lambda: 60.0) == seconds


# --- the body cap ---


class Chunks(httpx.AsyncByteStream):
    """A body arriving in pieces, as from a socket (httpx reads a body given whole at once)."""

    def __init__(self, body: bytes, pieces: int) -> None:
        size = -(-len(body) // pieces)
        self.chunks = [body[start : start + size] for start in range(0, len(body), size)]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def capped_read(body: bytes, limit: int, encoding: str | None = None, pieces: int = 1) -> bytes:
    headers = {"Content-Encoding": encoding} if encoding else {}
    response = httpx.Response(200, headers=headers, stream=Chunks(body, pieces))
    await _body.guard(limit)(response)
    return await response.aread()


@pytest.mark.parametrize("encoding", [None, "identity", "UTF-8", "gzip", "x-gzip", "deflate", "raw-deflate"])
def test_bodies_are_decoded_as_their_encoding_says(encoding: str | None) -> None:
    body = b'{"data":[]}' * 1000
    wire = {
        "gzip": gzip.compress(body),
        "x-gzip": gzip.compress(body),
        "deflate": zlib.compress(body),
        "raw-deflate": zlib.compress(body)[2:-4],
    }.get(encoding or "", body)
    name = "deflate" if encoding == "raw-deflate" else encoding
    assert asyncio.run(capped_read(wire, 1 << 20, name, pieces=7)) == body


def test_a_bomb_is_stopped_at_the_cap_though_it_arrives_in_one_piece() -> None:
    bomb = gzip.compress(b" " * (256 << 20))  # 256 MiB unpacked, 250 KB here
    with pytest.raises(_body.BodyTooLarge):
        asyncio.run(capped_read(bomb, 1 << 20, "gzip"))


@pytest.mark.parametrize(
    ("encoding", "says"),
    [
        ("gzip", "not the gzip data"),
        ("deflate", "not the deflate data"),
        ("br", "did not ask for"),
        ("gzip, br", "not ask"),
    ],
)
def test_a_body_that_is_not_what_its_encoding_says_is_undecodable(encoding: str, says: str) -> None:
    with pytest.raises(_body.UndecodableBody, match=says):
        asyncio.run(capped_read(b'{"data":[]}', 1 << 20, encoding))


def test_the_cap_holds_for_plain_bodies_too() -> None:
    assert asyncio.run(capped_read(b"x" * 1000, 1000, pieces=3)) == b"x" * 1000
    with pytest.raises(_body.BodyTooLarge):
        asyncio.run(capped_read(b"x" * 1001, 1000, pieces=3))


# --- JSON from the wire ---


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 128 + b"]" * 128, False),
        (b"[" * 129 + b"]" * 129, True),
        (b"[" * 129, True),  # cut short
        (b'{"a":"' + b"[" * 500 + b'"}', False),  # brackets inside a string do not count
        (b'{"a":"\\"' + b"{" * 500 + b'"}', False),
        (b'{"a":' * 200 + b"1" + b"}" * 200, True),
        (b'{"x":[],"y":' * 200 + b"1" + b"}" * 200, True),  # siblings do not hide the depth
    ],
)
def test_depth_beyond_what_capframe_reads_is_found(body: bytes, deep: bool) -> None:
    assert _wire.too_deep(body) is deep


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (rb'"\ud800"', "\\ud800"),
        (rb'"\udc00x"', "\\udc00x"),
        (rb'"\ud83d\ude00"', "\U0001f600"),  # a pair is a character
        (rb'"\\ud800"', "\\ud800"),  # an escaped backslash: text already
    ],
)
def test_lone_surrogates_are_kept_as_text(body: bytes, text: str) -> None:
    assert _wire.loads(body) == text


# --- the auth flows ---


def test_basic_auth_redacts_its_password_its_md5_and_its_header() -> None:
    auth = BasicAuth("store123", "Pass123")
    header = "c3RvcmUxMjM6MmYyM2ZhMzU3OWYzZjc1MTc1NzkzNjQ5MTE1YzFiMjU="
    text = f"Pass123 2F23FA3579F3F75175793649115C1B25 Basic {header}"
    assert auth.redact(text) == "*** *** Basic ***"


async def run_flow(auth: OAuth, answers: list[httpx.Response]) -> list[tuple[str, str | None]]:
    """Drives the flow as httpx does, answering each request it yields with the next answer:
    (path, token header) of each request as it was sent."""
    sent: list[tuple[str, str | None]] = []
    flow = auth.async_auth_flow(httpx.Request("POST", URL))
    request = await flow.__anext__()
    for response in answers:
        sent.append((request.url.path, request.headers.get("X-CAP-API-OAUTH-TOKEN")))
        response.request = request
        try:
            request = await flow.asend(response)
        except StopAsyncIteration:
            return sent
    raise AssertionError("the flow asked for more than was answered")


def token(value: str, ttl: str = "3600") -> httpx.Response:
    return httpx.Response(200, text=f'{{"data":{{"accessToken":"{value}","ttlSeconds":{ttl}}}}}')


def test_oauth_renews_a_token_once_on_a_401() -> None:
    auth = OAuth("k", "s", base_url="https://eu.api.capillarytech.com", pacer=Pacer(None))
    sent = asyncio.run(run_flow(auth, [token("t1"), httpx.Response(401), token("t2"), httpx.Response(401)]))
    token_request = ("/v3/oauth/token/generate", None)
    assert sent == [token_request, ("/v2/bulk/getCustomers", "t1"), token_request, ("/v2/bulk/getCustomers", "t2")]


def test_oauth_refuses_a_token_it_cannot_send_without_repeating_it() -> None:
    auth = OAuth("k", "s", base_url="https://eu.api.capillarytech.com", pacer=Pacer(None))
    with pytest.raises(capframe.AuthenticationError) as info:
        asyncio.run(run_flow(auth, [token("tok\u00e9n-secret")]))
    assert "secret" not in str(info.value)
    assert info.value.__context__ is None
    assert auth.redact("tok\u00e9n-secret") == "***"


@pytest.mark.parametrize("ttl", ["0", "-5", "1e999", "NaN", "9" * 401, '"60"', "true", "null", "[]"])
def test_oauth_keeps_a_token_a_sane_time_whatever_ttl_it_is_given(ttl: str) -> None:
    auth = OAuth("k", "s", base_url="https://eu.api.capillarytech.com", pacer=Pacer(None))
    asyncio.run(run_flow(auth, [token("t1", ttl), httpx.Response(200)]))
    sent = asyncio.run(run_flow(auth, [httpx.Response(200)]))  # the same token serves the next request
    assert sent == [("/v2/bulk/getCustomers", "t1")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_oauth_renews_a_short_lived_token_before_it_runs_out() -> None:
    """An API client's token lifetime is its admin's choice: a 5 s token was kept 54 s (lifetimes were
    raised to at least 60 s), so every request after 5 s met a 401, and two pulls sharing the client
    each renewed, their tokens dying together: a retry could carry the other pull's dead token."""
    clock = Clock()
    auth = OAuth("k", "s", base_url="https://eu.api.capillarytech.com", pacer=Pacer(None), clock=clock)
    asyncio.run(run_flow(auth, [token("t1", "5"), httpx.Response(200)]))
    clock.now = 4.4
    assert asyncio.run(run_flow(auth, [httpx.Response(200)])) == [("/v2/bulk/getCustomers", "t1")]
    clock.now = 4.6  # within a tenth of its lifetime of running out: renewed first
    sent = asyncio.run(run_flow(auth, [token("t2", "5"), httpx.Response(200)]))
    assert sent == [("/v3/oauth/token/generate", None), ("/v2/bulk/getCustomers", "t2")]


# --- the path of a request on a real connection ---


class _Searches(importlib.abc.MetaPathFinder):
    """Records every module an import statement searches for (one not in sys.modules)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None) -> None:
        self.names.append(name)


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_a_warm_pull_searches_for_no_module(sandbox_server: SandboxServer) -> None:
    """httpcore imports sniffio in every lock it sets up (several a request): when sniffio is not
    installed, each of those searches the whole sys.path on the event loop's thread (0.13 s of a
    30-request pull). A pull after the first imports nothing."""
    client = capframe.Client(sandbox_server.url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD)
    ids = sandbox_server.sandbox.customer_ids(300)
    capframe.fetch_customers(ids[:100], "INSTORE", client=client, batch_size=50, progress=False)
    searches = _Searches()
    sys.meta_path.insert(0, searches)
    try:
        capframe.fetch_customers(ids, "INSTORE", client=client, batch_size=50, progress=False)
    finally:
        sys.meta_path.remove(searches)
    assert searches.names == []


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_pulls_share_one_tls_context_per_ca_setting(
    sandbox_server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each session made its own TLS context: loading the CA bundle took 40 ms of every pull."""
    client = capframe.Client(sandbox_server.url, username=Sandbox.USERNAME, password=Sandbox.PASSWORD)
    ids = sandbox_server.sandbox.customer_ids(20)
    capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
    made: list[object] = []
    create = ssl.create_default_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(kwargs)
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
    assert made == []
    # Another CA bundle named in the environment is another context, as httpx reads it.
    monkeypatch.setenv("SSL_CERT_FILE", ssl.get_default_verify_paths().openssl_cafile)
    capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
    assert made == [{"cafile": ssl.get_default_verify_paths().openssl_cafile}]
