"""One request, sent until it gives a readable answer or cannot: a short loop over the parts.

The parts, one concern each, as httpx does it: authentication is the client's ``httpx.Auth`` (it
gets, sends and renews OAuth tokens); :mod:`capframe._body` caps and decodes every body as it
streams; :mod:`capframe._classify` says what an answer means; :mod:`capframe._retry` says whether
to ask again and when. Here: a concurrency slot, the client's pacer, a deadline for the whole
exchange (``timeout``, from connecting to the last byte), and the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from capframe import _body
from capframe._auth import Credentials, TokenUnavailable
from capframe._classify import Done, Refuse, Retry, Verdict, classify, classify_failure, server_text
from capframe._client import Client
from capframe._concurrency import AdaptiveLimit, Outcome, Slot
from capframe._endpoints import personal_parameters
from capframe._pacing import Pacer
from capframe._retry import SLOW_DOWN, UNDOCUMENTED_TYPES, RetriesExhausted, RetryPolicy, advice
from capframe._wire import WireFormatError, WireTypeError

__all__ = [
    "SLOW_DOWN",
    "UNDOCUMENTED_TYPES",
    "RetriesExhausted",
    "Session",
    "advice",
    "as_words",
    "call",
    "dumps",
    "lasting",
    "redaction",
]

log = logging.getLogger("capframe")


class _Redact(logging.Filter):
    """Log records of httpx and httpcore hold what the wire held: a request's URL may hold personal
    data (a hierarchy parent's mobile or email, a lookup's identifier value: the query parameters
    each endpoint's spec names ``personal``), and httpcore's DEBUG lines hold response headers, where
    a hostile server may repeat a credential. This blanks the first, and the credentials of every
    session open (each registers its redaction in ``active``)."""

    active: list[Callable[[str], str]] = []  # noqa: RUF012 - shared by every session, on purpose

    def filter(self, record: logging.LogRecord) -> bool:
        message = _personal_values(tuple(personal_parameters())).sub(r"\1***", record.getMessage())
        for redact in list(self.active):
            message = redact(message)
        record.msg, record.args = message, ()
        return True


@functools.cache
def _personal_values(parameters: tuple[str, ...]) -> re.Pattern[str]:
    """``name=value`` of these query parameters, the value up to the next parameter or quote."""
    names = "|".join(re.escape(name) for name in sorted(parameters, key=len, reverse=True)) or "(?!)"
    return re.compile(rf"((?:{names})=)[^&\s\"']*")


def as_words(values: Iterable[str]) -> re.Pattern[str]:
    """Any of ``values``, in any case, as a word of its own, never inside a longer one (an externalId
    700000 in the customer id 700000002): where a server's text repeats a value it was asked for."""
    alternatives = "|".join(re.escape(value) for value in sorted(set(values), key=len, reverse=True))
    return re.compile(rf"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)


def redaction(session: Session, params: Mapping[str, str]) -> Callable[[str], str]:
    """The session's redaction of credentials, and of the personal values among a request's ``params``
    (:func:`as_words`): a server may repeat the identifier value it was asked for in its error message."""
    values = [params[name] for name in personal_parameters() if params.get(name)]
    if not values:
        return session.auth.redact
    pattern = as_words(values)

    def redact(text: str) -> str:
        return session.auth.redact(pattern.sub("***", text))

    return redact


_REDACT = _Redact()
for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_REDACT)
T = TypeVar("T")


@dataclass
class Session:
    """What one pull shares: the client's settings, its credentials and pacer, one connection pool,
    and the concurrency slots its requests take (``limit``: fixed, or following latency)."""

    client: Client
    http: httpx.AsyncClient
    limit: AdaptiveLimit
    auth: Credentials
    pacer: Pacer
    policy: RetryPolicy

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, client: Client) -> AsyncIterator[Session]:
        """One pull's session: its connection pool is closed when the pull ends. Sessions are made here
        only; this is the one place the request layer reads the client's credentials and pacer.
        httpx clients belong to one event loop, hence one per pull. TLS verification stays on."""
        auth, pacer = client._auth, client._pacer
        http = httpx.AsyncClient(
            base_url=client.base_url,
            auth=auth,
            # Per read; the deadline in _exchange bounds the whole exchange. No pool timeout: the pool
            # holds as many connections as the concurrency limit allows requests.
            timeout=httpx.Timeout(client.timeout, pool=None),
            transport=client._transport,
            verify=_tls(),
            headers=_body.HEADERS,
            limits=httpx.Limits(max_connections=client.most_in_flight, max_keepalive_connections=client.most_in_flight),
            event_hooks={"response": [_body.guard(client.max_body_bytes)]},
        )
        policy = RetryPolicy(client.max_retries, client.retry_backoff, client.max_retry_after)
        _Redact.active.append(auth.redact)
        try:
            async with http:
                fixed = None if client.concurrency == "auto" else client.concurrency
                limit = AdaptiveLimit(client.most_in_flight, pacer.rate, fixed=fixed)
                yield cls(client, http, limit, auth, pacer, policy)
        finally:
            _Redact.active.remove(auth.redact)


def _tls() -> ssl.SSLContext:
    """httpx's own TLS context (certifi's CAs, or those SSL_CERT_FILE / SSL_CERT_DIR name), made once
    per CA setting: loading the CAs took 40 ms of every pull when each session made its own."""
    return _tls_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _tls_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the same two variables


async def call(
    session: Session,
    method: str,
    path: str,
    *,
    params: Mapping[str, str],
    what: str,
    read: Callable[[bytes], T],
    content: bytes | None = None,
    unreadable: WireFormatError | None = None,
) -> T:
    """Send one request and read its body with ``read`` (in a worker thread), asking again as the
    classifier and the retry policy say.

    ``read`` raises WireFormatError for a body that is not the documented JSON; that is asked again,
    unless it is a WireTypeError (the documented shape, other types), which asking again does not change.
    A request keeps its concurrency slot while it waits to retry (a failing API is not asked
    harder), but not while its body is read. ``unreadable``: why the body of this request's first
    attempt, read after it was answered (with its group's), could not be read; this call is its retry.
    """
    headers = {"Content-Type": "application/json"} if content is not None else {}
    request = session.http.build_request(method, path, params=params, content=content, headers=headers)
    attempt = 0

    async def again(retry: Retry) -> bool:
        """Count a failed attempt; wait before the next one, if there is one."""
        nonlocal attempt
        attempt += 1
        wait = session.policy.wait(attempt, retry.after)
        if wait is None:
            return False
        if retry.pause:  # a 429: every request waits out what it asked for (capped), and the pace slows
            session.pacer.pause(None if retry.after is None else min(retry.after, session.policy.max_retry_after))
        log.debug(
            "%s failed with %s; retry %d of %d in %.2fs", what, retry.failure, attempt, session.policy.max_retries, wait
        )
        await asyncio.sleep(wait)
        return True

    failed = None if unreadable is None else Retry(f"an unreadable body: {unreadable}")
    while True:
        if failed is not None and not await again(failed):
            raise RetriesExhausted(f"{failed.failure} after {attempt} attempts", None)
        async with session.limit.slot() as slot:  # the one place a request takes a concurrency slot
            while not isinstance(verdict := await _exchange(session, request, what, slot), Done):
                if isinstance(verdict, Refuse):
                    raise verdict.error
                if not await again(verdict):
                    raise RetriesExhausted(f"{verdict.failure} after {attempt} attempts", verdict.status)
        try:
            return await asyncio.to_thread(read, verdict.body)
        except WireTypeError as exc:
            raise lasting(exc) from None
        except WireFormatError as exc:
            failed = Retry(f"an unreadable body: {exc}")  # the 200 said nothing true


def lasting(exc: WireTypeError) -> RetriesExhausted:
    """A request failed by a body of the documented shape with values of other types: not asked again."""
    return RetriesExhausted(f"an unreadable body: {exc}", None, lasting=True)


async def _exchange(session: Session, request: httpx.Request, what: str, slot: Slot) -> Verdict:
    """One attempt, from the pacer's turn to the last byte of the answer (or the failure met on the way)."""
    await session.pacer.wait()  # after the slot is ours, so a paced request is sent at once
    slot.sent()
    log.debug("%s %s sent; %s", request.method, request.url.path, session.limit.describe())
    verdict = await _attempt(session, request, what)
    slot.done(_load(verdict))
    return verdict


def _load(verdict: Verdict) -> Outcome:
    """What an attempt says of the server's load: a 429 is the pacer's business; any other reason to
    ask again (5xx, a timeout, a dropped connection, a garbled body) says it is struggling."""
    if isinstance(verdict, Retry):
        return Outcome.THROTTLED if verdict.pause else Outcome.OVERLOADED
    return Outcome.ANSWERED


async def _attempt(session: Session, request: httpx.Request, what: str) -> Verdict:
    client = session.client
    try:
        async with asyncio.timeout(client.timeout):
            response = await session.http.send(request, stream=True)
            try:
                await response.aread()
            finally:
                await response.aclose()
    except TokenUnavailable as exc:
        return exc.retry
    except Exception as exc:
        verdict = classify_failure(exc, client.base_url, client.timeout)
        if verdict is None:
            raise
        return verdict
    redact = redaction(session, request.url.params)
    request_id = server_text(response.headers.get("X-Cap-Requestid", "-"), redact).replace(" ", "_")
    log.debug("%s %s -> %s, X-Cap-Requestid %s", request.method, request.url.path, response.status_code, request_id)
    return classify(response, what, redact)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
