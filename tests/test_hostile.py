"""The hostile server catalogue: what a broken or malicious server can send, and what capframe does.

Each case is a small raw-socket server on 127.0.0.1 (port 0) that ends when its test does. One
parametrised test per family: hangs and memory, raw exceptions, leaks, fail-fast. Every case must
end within its stated time, raise only ``CapframeError``s (or succeed), and leave no credential of
the client in the exception (str, repr, args, its whole chain) or in any log line. The cases that
would fill memory run in a subprocess with an address-space limit (RLIMIT_AS), so this suite is
never at risk, and report their peak memory, which is held under a stated bound.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr

import capframe
import capframe.testing
from capframe import CapframeError

USERNAME, PASSWORD = "till7", "hostile-pass-123"
DIGEST = hashlib.md5(PASSWORD.encode()).hexdigest()
BASIC = base64.b64encode(f"{USERNAME}:{DIGEST}".encode()).decode()
KEY, SECRET = "key-7", "hostile-client-secret-9"
TOKEN = "tok-hostile-4711"
SECRETS = [PASSWORD, DIGEST, BASIC, SECRET, TOKEN]
FAST: dict[str, Any] = {"retry_backoff": 0.01, "max_retry_after": 0.05, "requests_per_minute": None}
BULK = "/v2/bulk/getCustomers"
TOKEN_PATH = "/v3/oauth/token/generate"

# --- a loopback server that sends whatever a case says -------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


Answer = Iterable["bytes | float"]  # bytes to send, or seconds to wait


class Server:
    """A raw-socket HTTP/1.1 server on 127.0.0.1: each request is answered by ``answer(request)``,
    then the connection is closed. It stops, and its answers stop, when the ``with`` block ends."""

    def __init__(self, answer: Callable[[Request], Answer]) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                request = self._read(conn)
                if request is None:
                    return
                self.requests.append(request)
                for piece in self.answer(request):
                    if self.stopped.is_set():
                        return
                    if isinstance(piece, float):
                        time.sleep(piece)
                    else:
                        conn.sendall(piece)
            except OSError:  # the client went away: what capframe does with an answer it stopped reading
                return

    @staticmethod
    def _read(conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
            if not data[:1].isalpha():  # a TLS handshake, say: answered as an HTTP server answers it
                conn.sendall(response(400, b"not HTTP"))
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
        while len(body) < int(headers.get("content-length", 0)):
            body += conn.recv(65536)
        method, path, _ = line.split(" ", 2)
        return Request(method, path, headers, body, time.monotonic())


def response(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}
    head.update(headers or {})
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items() if v is not None)
    return f"HTTP/1.1 {status} X\r\n{lines}\r\n".encode() + body


def page(ids: Iterable[int], profile: dict[str, Any] | None = None, **entity: Any) -> bytes:
    items = [
        {"entity": {"id": i, "profiles": [{"userId": i, **(profile or {})}], **entity}, "errors": [], "success": True}
        for i in ids
    ]
    return json.dumps({"data": items, "warnings": [], "errors": []}).encode()


def asked(request: Request) -> list[int]:
    return json.loads(request.body) if request.path.startswith(BULK) else []


def token_answer(data: Any) -> bytes:
    return response(200, json.dumps({"data": data, "errors": None}).encode())


def api(token: Callable[[Request], Answer] | None = None, data: Callable[[Request], Answer] | None = None) -> Any:
    """A server answering token requests with ``token`` and data requests with ``data`` (each by default: fine)."""

    def answer(request: Request) -> Answer:
        if request.path.startswith(TOKEN_PATH):
            return (token or (lambda r: [token_answer({"accessToken": TOKEN, "ttlSeconds": 3600})]))(request)
        return (data or (lambda r: [response(200, page(asked(r)))]))(request)

    return answer


# --- what every case must hold to ---------------------------------------------------------------


def exception_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            parts.append(exception_text(linked))
    return "\n".join(parts)


@dataclass
class Case:
    """One hostile behaviour: the server's answers, the client's options, and what must happen."""

    name: str
    answer: Callable[[Request], Answer]
    error: type[CapframeError] | None  # None: the pull succeeds
    says: str = ""  # a regex the error's message must match
    within: float = 5.0  # seconds the pull may last, at most
    oauth: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Server, Any], None] | None = None  # more checks on the server's log and the result
    ids: tuple[int, ...] = (1, 2, 3)

    def __str__(self) -> str:
        return self.name


def client(url: str, case: Case) -> capframe.Client:
    credentials = (
        {"client_key": KEY, "client_secret": SECRET} if case.oauth else {"username": USERNAME, "password": PASSWORD}
    )
    return capframe.Client(url, **credentials, **{**FAST, "max_retries": 2, **case.options})


def run(case: Case, caplog: pytest.LogCaptureFixture, url: str | None = None) -> tuple[Server, Any]:
    caplog.set_level(logging.DEBUG)
    with Server(case.answer) as server:
        start = time.monotonic()
        outcome: Any
        try:
            outcome = capframe.fetch_customer_tables(list(case.ids), "INSTORE", client=client(url or server.url, case))
        except CapframeError as exc:
            outcome = exc
        except BaseException as exc:
            pytest.fail(f"{type(exc).__module__}.{type(exc).__qualname__} escaped: {exc}")
        elapsed = time.monotonic() - start
    assert elapsed < case.within, f"{case}: {elapsed:.1f} s, more than {case.within} s"
    if case.error is None:
        assert not isinstance(outcome, BaseException), f"{case}: {outcome}"
    else:
        assert isinstance(outcome, case.error), f"{case}: {type(outcome).__name__}: {outcome}"
        assert re.search(case.says, str(outcome)), f"{case}: {outcome}"
        shown = exception_text(outcome)
        for secret in SECRETS:
            assert secret not in shown, f"{case}: {secret!r} in the exception"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in SECRETS:
        assert secret not in logged, f"{case}: {secret!r} in a log line"
    if case.check is not None:
        case.check(server, outcome)
    return server, outcome


@pytest.fixture(scope="module", autouse=True)
def validation_loaded() -> None:
    """Loads pandera (seconds, once) before any case is timed: the times are the requests' own."""
    capframe.tidy_customers([page([1])])


# --- family 1: hangs and memory -----------------------------------------------------------------


def drip_body(request: Request) -> Answer:
    body = page(asked(request))
    yield response(200, body)[: -len(body)]
    for byte in body:
        yield 0.1
        yield bytes([byte])


def drip_headers(request: Request) -> Answer:
    for byte in response(200, page(asked(request))):
        yield 0.1
        yield bytes([byte])


def endless_chunked(request: Request) -> Answer:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b" " * 65536
    yield b"%x\r\n" % len(b"{") + b"{\r\n"
    while True:
        yield b"%x\r\n" % len(chunk) + chunk + b"\r\n"


def huge_length(request: Request) -> Answer:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8000000000\r\n\r\n{"
    chunk = b" " * 65536
    while True:
        yield chunk


def gzip_bomb(request: Request) -> Answer:
    """2 GiB of JSON whitespace, gzipped (2 MB on the wire), made as it is read."""
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n"
    deflate = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    yield deflate.compress(b"{")
    block = b" " * (1 << 20)
    for _ in range(2048):
        yield deflate.compress(block)
    yield deflate.flush()


def token_drip(request: Request) -> Answer:
    body = json.dumps({"data": {"accessToken": TOKEN, "ttlSeconds": 3600}}).encode()
    yield response(200, body)[: -len(body)]
    for byte in body:
        yield 0.2
        yield bytes([byte])


HANGS = [
    Case("a body dripped a byte every 0.1 s", drip_body, capframe.FetchError, r"within timeout=1 s", within=6,
         options={"timeout": 1, "max_retries": 0}),
    Case("headers dripped a byte every 0.1 s", drip_headers, capframe.FetchError, r"within timeout=1 s", within=6,
         options={"timeout": 1, "max_retries": 0}),
    Case("a token answer dripped", api(token=token_drip), capframe.FetchError, r"within timeout=1 s", within=6,
         oauth=True, options={"timeout": 1, "max_retries": 0}),
]  # fmt: skip
# Run in a subprocess with a memory limit: (case, answer, bound on peak memory growth in MB).
FLOODS = [
    ("an endless chunked body", endless_chunked),
    ("Content-Length: 8000000000", huge_length),
    ("a gzip bomb: 2 MB on the wire, 2 GiB unpacked", gzip_bomb),
]
FLOOD_MB = 400  # the default max_body_bytes (64 MiB) read, joined and parsed, with room to spare
FLOOD_SCRIPT = """
import json, resource, sys, time
import capframe
limit = 3 << 30  # address space beyond what is already mapped: a runaway read dies here, not the machine
with open("/proc/self/status") as status:
    mapped = next(int(line.split()[1]) << 10 for line in status if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (mapped + limit, mapped + limit))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
client = capframe.Client(sys.argv[1], username="till7", password="hostile-pass-123", max_retries=1,
                         retry_backoff=0.01, requests_per_minute=None)
start = time.monotonic()
try:
    capframe.fetch_customer_tables([1, 2, 3], "INSTORE", client=client)
    outcome = ("ok", "")
except BaseException as exc:
    outcome = (type(exc).__name__, str(exc)[:2000])
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"error": outcome[0], "message": outcome[1], "seconds": time.monotonic() - start, "grew_mb": peak}))
"""


@pytest.mark.parametrize("case", HANGS, ids=str)
def test_hangs_end_within_the_timeout(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    run(case, caplog)


@pytest.mark.parametrize(("name", "answer"), FLOODS, ids=[name for name, _ in FLOODS])
def test_floods_are_cut_at_the_body_cap_with_bounded_memory(name: str, answer: Callable[[Request], Answer]) -> None:
    with Server(answer) as server:
        done = subprocess.run(
            [sys.executable, "-c", FLOOD_SCRIPT, server.url],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["error"] == "FetchError", outcome
    assert "larger than max_body_bytes=67,108,864 bytes" in outcome["message"], outcome
    assert "Raise the client's max_body_bytes" in outcome["message"]
    assert len(server.requests) == 1, "an answer past the cap is not asked for again"
    assert outcome["seconds"] < 20, outcome
    assert outcome["grew_mb"] < FLOOD_MB, outcome


# --- family 2: no raw exception from deep inside --------------------------------------------------


def plain_body_said_gzip(request: Request) -> Answer:
    yield response(200, page(asked(request)), {"Content-Encoding": "gzip"})


def brotli_not_asked(request: Request) -> Answer:
    yield response(200, page(asked(request)), {"Content-Encoding": "br"})


def first_then_fine(first: bytes) -> Callable[[Request], Answer]:
    sent: list[int] = []

    def answer(request: Request) -> Answer:
        sent.append(1)
        yield first if len(sent) == 1 else response(200, page(asked(request)))

    return answer


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def data_with(body: Callable[[list[int]], bytes], status: int = 200) -> Callable[[Request], Answer]:
    return lambda r: [response(status, body(asked(r)))]


def requests_to(path: str) -> Callable[[Server], int]:
    return lambda server: sum(r.path.startswith(path) for r in server.requests)


def asked_times(n: int) -> Callable[[Server, Any], None]:
    def check(server: Server, outcome: Any) -> None:
        assert requests_to(BULK)(server) == n, [r.path for r in server.requests]

    return check


def one_token_for_every_batch(server: Server, outcome: Any) -> None:
    assert requests_to(TOKEN_PATH)(server) == 1, [r.path for r in server.requests]
    assert requests_to(BULK)(server) == 3


def never_the_header_none(server: Server, outcome: Any) -> None:
    sent = [r.headers.get("x-cap-api-oauth-token") for r in server.requests if r.path.startswith(BULK)]
    assert sent == [], sent  # no data request is sent without a token


def first_name_kept_as_text(server: Server, tables: Any) -> None:
    assert tables.customers["first_name"].to_list() == ["\\ud800"] * 3  # the six characters, not "\x00"


def unknown_key_kept_as_text(server: Server, tables: Any) -> None:
    assert tables.fields.filter(tables.fields["name"].str.ends_with("zz"))["value"].to_list() == ['"\\\\ud800"'] * 3


def code_left_out(server: Server, exc: Any) -> None:
    assert exc.code is None
    assert exc.status == 400


def token_requests_paced(server: Server, outcome: Any) -> None:
    times = [r.at for r in server.requests]
    assert requests_to(TOKEN_PATH)(server) == 1
    # 200 a minute: slots 0.3 s apart. Arrival times jitter on a busy machine (one late arrival makes a
    # short gap after it), but the span cannot shrink: unpaced, the token request would save a slot.
    assert times[-1] - times[0] >= (len(times) - 1) * 0.3 - 0.15, times


def ttl(value: str) -> Callable[[Request], Answer]:
    return lambda r: [
        response(200, b'{"data":{"accessToken":"%s","ttlSeconds":%s}}' % (TOKEN.encode(), value.encode()))
    ]


RAW = [
    Case("Content-Encoding gzip on a plain body", api(data=lambda r: plain_body_said_gzip(r)), capframe.FetchError,
         r"unreadable body: the body is not the gzip data .*after 3 attempts", check=asked_times(3)),
    Case("Content-Encoding br, never asked for", api(data=lambda r: brotli_not_asked(r)), capframe.FetchError,
         r"unreadable body: .*Content-Encoding capframe did not ask for", check=asked_times(3)),
    Case("Retry-After: Mon, 01 Jan 99999999999 00:00:00 GMT",
         first_then_fine(response(429, b"{}", {"Retry-After": "Mon, 01 Jan 99999999999 00:00:00 GMT"})), None),
    Case("Retry-After: 1e999", first_then_fine(response(503, b"", {"Retry-After": "1e999"})), None),
    Case("a lone surrogate as firstName", api(data=data_with(lambda ids: page(ids, {"firstName": "\ud800"}))), None,
         check=first_name_kept_as_text),
    Case("a lone surrogate in an unknown key", api(data=data_with(lambda ids: page(ids, {"zz": "\ud800"}))), None,
         check=unknown_key_kept_as_text),
    Case("600 levels of nesting in an unknown key of a 200",
         api(data=data_with(lambda ids: page(ids, zzz=json.loads(deep(600))))), capframe.FetchError,
         r"nests JSON more than 128 levels deep", check=asked_times(1)),
    Case("600 levels of nesting in an open-ended key of a 200",
         api(data=data_with(lambda ids: page(ids, extendedFields=json.loads(deep(600))))), capframe.FetchError,
         r"nests JSON more than 128 levels deep"),
    Case("a 4xx body nested 100,000 deep", api(data=data_with(lambda ids: deep(100_000).encode(), 400)),
         capframe.RequestRejectedError, r"HTTP 400\); retrying will not help"),
    Case('a 4xx body with "code": 1e999',
         api(data=data_with(lambda ids: b'{"errors":[{"code":1e999,"message":"Bad thing"}]}', 400)),
         capframe.RequestRejectedError, r"HTTP 400: Bad thing\)", check=code_left_out),
    Case("a 4xx body of another shape", api(data=data_with(lambda ids: b'{"errors":"no","code":[1]}', 422)),
         capframe.RequestRejectedError, r"HTTP 422\)"),
    Case("OAuth: ttlSeconds of 401 digits", api(token=ttl("9" * 401)), None, oauth=True,
         check=one_token_for_every_batch, options={"batch_size": 1}),
    Case("OAuth: ttlSeconds 0", api(token=ttl("0")), None, oauth=True, check=one_token_for_every_batch,
         options={"batch_size": 1}),
    Case("OAuth: ttlSeconds -5", api(token=ttl("-5")), None, oauth=True, check=one_token_for_every_batch,
         options={"batch_size": 1}),
    Case("OAuth: a token body nested 100,000 deep", api(token=lambda r: [response(200, deep(100_000).encode())]),
         capframe.FetchError, r"OAuth token endpoint answered HTTP 200 without a token", oauth=True,
         check=never_the_header_none),
    Case("OAuth: accessToken null", api(token=lambda r: [token_answer({"accessToken": None, "ttlSeconds": 60})]),
         capframe.FetchError, r"without a token", oauth=True, check=never_the_header_none),
    Case("OAuth: token requests are paced with the rest", api(), None, oauth=True, check=token_requests_paced,
         options={"requests_per_minute": 200, "batch_size": 1}),
]  # fmt: skip


@pytest.mark.parametrize("case", RAW, ids=str)
def test_no_raw_exception_escapes(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    run(case, caplog)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(page([1], zzz=json.loads(deep(600))), id="600 levels in an unknown key"),
        pytest.param(page([1], extendedFields=json.loads(deep(600))), id="600 levels in an open-ended key"),
        pytest.param(page([1], x=json.loads(deep(900))), id="900 levels"),
    ],
)
def test_tidy_customers_refuses_deep_nesting_without_a_recursion_error(body: bytes) -> None:
    with pytest.raises(capframe.InvalidArgumentError, match=r"page 0 .* nests JSON more than 128 levels deep"):
        capframe.tidy_customers([body])


def test_tidy_customers_keeps_lone_surrogates_as_text() -> None:
    with pytest.warns(capframe.SchemaDriftWarning):
        tables = capframe.tidy_customers([page([1], {"zz": "\ud800", "firstName": "\udc00"})])
    assert tables.customers["first_name"].to_list() == ["\\udc00"]
    assert tables.fields["value"].to_list() == ['"\\\\ud800"']


# --- family 3: leaks ----------------------------------------------------------------------------


def echo(status: int, what: str) -> Callable[[Request], Answer]:
    """An error answer that repeats the credential it received (some gateways do)."""

    def answer(request: Request) -> Answer:
        if request.path.startswith(TOKEN_PATH):
            yield token_answer({"accessToken": TOKEN, "ttlSeconds": 3600})
            return
        received = request.headers.get("authorization") or request.headers.get("x-cap-api-oauth-token", "")
        message = {"header": received, "password": f"bad password {PASSWORD} (md5 {DIGEST.upper()})",
                   "secret": f"secret {SECRET} is wrong"}[what]  # fmt: skip
        yield response(status, json.dumps({"errors": [{"code": status, "message": message}]}).encode())

    return answer


def request_id_echoes_the_token(request: Request) -> Answer:
    if request.path.startswith(TOKEN_PATH):
        return [token_answer({"accessToken": TOKEN, "ttlSeconds": 3600})]
    return [response(200, page(asked(request)), {"X-Cap-Requestid": f"req-{TOKEN}"})]


def non_ascii_token(request: Request) -> Answer:
    return [token_answer({"accessToken": TOKEN + "é", "ttlSeconds": 3600})]


LEAKS = [
    Case("a 401 repeating the Basic value", echo(401, "header"), capframe.AuthenticationError,
         r"HTTP 401: Basic \*\*\*"),
    Case("a 401 repeating the password and its MD5", echo(401, "password"), capframe.AuthenticationError,
         r"bad password \*\*\* \(md5 \*\*\*\)"),
    Case("a 403 repeating the OAuth token", echo(403, "header"), capframe.AccessDeniedError, r"HTTP 403: \*\*\*",
         oauth=True),
    Case("a 400 repeating the client secret", echo(400, "secret"), capframe.RequestRejectedError,
         r"secret \*\*\* is wrong", oauth=True),
    Case("an X-Cap-Requestid repeating the token", request_id_echoes_the_token, None, oauth=True),
    Case("an OAuth token with a non-ASCII character", non_ascii_token, capframe.AuthenticationError,
         r"token that cannot be sent in a header", oauth=True),
]  # fmt: skip


@pytest.mark.parametrize("case", LEAKS, ids=str)
def test_no_credential_leaks(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    run(case, caplog)


@pytest.mark.parametrize("case", [c for c in LEAKS if "password" not in c.name], ids=str)
def test_no_credential_reaches_a_recorded_cassette(case: Case, tmp_path: Path) -> None:
    """What the server repeated is recorded too: the cassette filters take it out. (The password
    itself never travels, so no server can repeat it.)"""
    recorder = vcr.VCR(cassette_library_dir=str(tmp_path), record_mode="once", **capframe.testing.vcr_config())
    with Server(case.answer) as server, recorder.use_cassette("hostile.yaml"):
        with contextlib.suppress(CapframeError):
            capframe.fetch_customer_tables([1, 2, 3], "INSTORE", client=client(server.url, case))
        assert server.requests
    cassette = (tmp_path / "hostile.yaml").read_text()
    for secret in [DIGEST, DIGEST.upper(), BASIC, SECRET, TOKEN]:
        assert secret not in cassette, f"{case}: {secret!r} in the cassette"


@pytest.mark.parametrize("variable", ["CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_SECRET"])
def test_a_credential_that_is_not_utf8_is_refused_without_repeating_it(variable: str) -> None:
    secret = os.fsdecode(b"s3cret-\xff-pass")  # how Python reads an environment byte that is not UTF-8
    pair = "CAPILLARY_USERNAME" if variable == "CAPILLARY_PASSWORD" else "CAPILLARY_CLIENT_KEY"
    with pytest.raises(capframe.ConfigurationError, match=variable) as info:
        capframe.Client.from_env({"CAPILLARY_HOST": "eu", pair: "till7", variable: secret})
    text = exception_text(info.value)
    assert "s3cret" not in text
    assert secret not in text
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


def test_the_cassette_scrubber_scrubs_a_body_that_is_not_utf8() -> None:
    body = b'{"data":{"accessToken":"' + TOKEN.encode() + b'","mobile":"919876543210","note":"caf\xe9"}}'
    recorded = capframe.testing.scrub_response({"status": {"code": 200}, "headers": {}, "body": {"string": body}})
    scrubbed = recorded["body"]["string"]
    assert TOKEN.encode() not in scrubbed
    assert b"919876543210" not in scrubbed
    assert b"caf\xe9" in scrubbed  # the byte that is not UTF-8 is kept as it was
    assert capframe.testing.scrub_response(recorded) == recorded


# --- family 4: configuration mistakes fail fast ---------------------------------------------------


def closed_port() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


def redirect_elsewhere(request: Request) -> Answer:
    yield response(302, b"", {"Location": "https://elsewhere.example.com/v2/bulk/getCustomers"})


def storm(request: Request) -> Answer:
    yield response(503, b"<html>busy</html>", {"Content-Type": "text/html"})


FAIL_FAST: list[tuple[Case, Callable[[Server], str] | None]] = [
    (Case("a closed port", api(), capframe.ConfigurationError, r"nothing answers at http://127\.0\.0\.1:\d+: the "
          r"connection was refused\. check the host \(CAPILLARY_HOST", within=3), lambda s: closed_port()),
    (Case("TLS to a server that does not speak it", api(), capframe.ConfigurationError,
          r"TLS connection to https://127\.0\.0\.1:\d+ failed .*use http://127\.0\.0\.1:\d+ ", within=3),
     lambda s: s.url.replace("http://", "https://")),
    (Case("a redirect to another host", redirect_elsewhere, capframe.RequestRejectedError,
          r"HTTP 302, a redirect to elsewhere\.example\.com, which capframe does not follow .*check the host",
          within=3, check=asked_times(1)), None),
    (Case("a 503 storm still says to try again later", storm, capframe.FetchError, r"try again later"), None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "url"), FAIL_FAST, ids=[str(c) for c, _ in FAIL_FAST])
def test_configuration_mistakes_fail_fast(
    case: Case, url: Callable[[Server], str] | None, caplog: pytest.LogCaptureFixture
) -> None:
    if url is None:
        run(case, caplog)
        return
    with Server(case.answer) as target:
        run(case, caplog, url(target))
        assert not target.requests or case.name.startswith("TLS"), "nothing readable reached the server"


def test_an_unknown_host_name_fails_fast(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "capframe-hostile.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    case = Case("an unknown host name", api(), capframe.ConfigurationError,
                r"the host name of https://capframe-hostile\.invalid is unknown .*check the host", within=3)  # fmt: skip
    run(case, caplog, "https://capframe-hostile.invalid")


def test_a_parent_refusal_that_repeats_the_credential_does_not_carry_it() -> None:
    """The hierarchy API refuses an unknown parent inside a 200 (success=false); a gateway that echoes
    the Authorization header there must not put it into ParentNotFoundError."""

    def refuse(request: httpx.Request) -> httpx.Response:
        echoed = f"no parent for {request.headers.get('authorization')} ({PASSWORD}, {DIGEST})"
        errors = [{"status": False, "code": 8015, "message": echoed}]
        body = {"entity": {"customers": [], "count": 0}, "warnings": [], "errors": errors, "success": False}
        return httpx.Response(200, json=body)

    client = capframe.Client(
        "http://127.0.0.1:9", username=USERNAME, password=PASSWORD, transport=httpx.MockTransport(refuse), **FAST
    )
    with pytest.raises(capframe.ParentNotFoundError) as raised:
        capframe.fetch_children(("mobile", "917799889933"), client=client)
    shown = exception_text(raised.value)
    assert "no parent for" in shown
    for secret in SECRETS:
        assert secret not in shown, f"{secret!r} in the exception"
