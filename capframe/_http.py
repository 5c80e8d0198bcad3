"""One request, retried until it gives a readable answer or cannot.

Retried: 429, 5xx, Capillary's 521 (customer busy), transport failures and bodies that are not the
documented JSON (truncated, an HTML page from a proxy). Waits grow exponentially with jitter, or
follow ``Retry-After`` (seconds or an HTTP date), capped by ``Client.max_retry_after``.
Not retried: 401 (after one token renewal), 403 and other 4xx: retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from capframe._auth import TokenUnavailable
from capframe._client import Client
from capframe._concurrency import AdaptiveLimit, Outcome
from capframe._wire import WireFormatError, WireTypeError
from capframe.errors import AccessDeniedError, AuthenticationError, RequestRejectedError

__all__ = ["RetriesExhausted", "Session", "advice", "call"]

log = logging.getLogger("capframe")


class _RedactParent(logging.Filter):
    """httpx logs each request's URL at INFO; a hierarchy request's URL holds the parent's mobile or
    email (associationEntityIdentifierValue), which is personal data. This blanks that value."""

    _VALUE = re.compile(r"(associationEntityIdentifierValue=)[^&\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._VALUE.sub(r"\1***", str(a)) if isinstance(a, (str, httpx.URL)) else a for a in record.args
            )
        record.msg = self._VALUE.sub(r"\1***", str(record.msg))
        return True


logging.getLogger("httpx").addFilter(_RedactParent())
T = TypeVar("T")

_RETRYABLE = frozenset({429, 500, 502, 503, 504, 521})
_MAX_BACKOFF = 30.0


class RetriesExhausted(Exception):
    """Internal: every attempt failed; the caller turns it into a FetchError naming its ids.

    ``lasting``: the API answered, with values of types its documentation does not give; asking
    again gets the same, so it was not asked again.
    """

    def __init__(self, reason: str, status: int | None, *, lasting: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.lasting = lasting


UNDOCUMENTED_TYPES = (
    "The API answered with values of types its documentation does not give (named above): asking again "
    "will not help. Report it to Capillary with the X-Cap-Requestid that capframe logs at DEBUG."
)


SLOW_DOWN = "The API is failing or limiting this client: try again later, or lower concurrency and requests_per_minute."


def advice(failures: Iterable[RetriesExhausted], transient: str = SLOW_DOWN) -> str:
    """What a FetchError tells the user to do: ``transient`` unless every failure will last."""
    return UNDOCUMENTED_TYPES if all(f.lasting for f in failures) else transient


@dataclass
class Session:
    """What one pull shares: the client's settings and one HTTP connection pool."""

    client: Client
    http: httpx.AsyncClient
    limit: AdaptiveLimit

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, client: Client) -> AsyncIterator[Session]:
        """One pull's session: its connection pool is closed when the pull ends. Pulls build their
        sessions here only, so how a session is made is this module's business."""
        async with client._http() as http:
            fixed = None if client.concurrency == "auto" else client.concurrency
            yield cls(client, http, AdaptiveLimit(client.most_in_flight, client._pacer.rate, fixed=fixed))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _api_error(response: httpx.Response) -> tuple[int | None, str]:
    """The API's own error code and message from an error body, where it sent one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return (int(first["code"]) if first.get("code") is not None else None), str(first.get("message", ""))
    except (ValueError, AttributeError, LookupError, TypeError):
        return None, ""


def _refuse(response: httpx.Response, what: str, client: Client) -> Exception:
    """The error for an answer that retrying cannot fix."""
    status = response.status_code
    code, message = _api_error(response)
    said = f": {message} (code {code})" if message else ""
    if status == 401:
        return AuthenticationError(
            f"the API refused the credentials (HTTP 401{said}) for {what}: check the till code (username) and "
            f"password, or the OAuth client key and secret, and that they belong to {client.base_url}",
            status=status,
            code=code,
        )
    if status == 403:
        return AccessDeniedError(
            f"access denied (HTTP 403{said}) for {what}: the API client needs v2 APIs enabled and the access "
            "group this API requires (the 'Default access group' for Get Customers Bulk; read access to the "
            "'User Group' resource for the hierarchy). Ask your Capillary admin to grant it.",
            status=status,
            code=code,
        )
    return RequestRejectedError(
        f"the API rejected {what} (HTTP {status}{said}); retrying will not help: check the arguments",
        status=status,
        code=code,
    )


async def call(
    session: Session,
    method: str,
    path: str,
    *,
    params: Mapping[str, str],
    what: str,
    read: Callable[[bytes], T],
    content: bytes | None = None,
) -> T:
    """Send one request and read its body with ``read`` (in a worker thread), retrying as above.

    ``read`` raises WireFormatError for a body that is not the documented JSON; that is retried,
    unless it is a WireTypeError (the documented shape, other types), which asking again does not change.
    A request keeps its concurrency slot while it waits to retry (a failing API is not asked
    harder), but not while its body is read.
    """
    client = session.client
    renewed = False
    failure = "no attempt"
    status: int | None = None
    attempt = 0
    headers = {"Content-Type": "application/json"} if content is not None else {}

    async def backoff(wait: float | None) -> bool:
        """Count a failed attempt; wait before the next one, if there is one."""
        nonlocal attempt
        attempt += 1
        if attempt > client.max_retries:
            return False
        if wait is None:
            wait = min(client.retry_backoff * 2 ** (attempt - 1), _MAX_BACKOFF) * random.uniform(0.5, 1.0)
        log.debug("%s failed with %s; retry %d of %d in %.2fs", what, failure, attempt, client.max_retries, wait)
        await asyncio.sleep(wait)
        return True

    while True:
        body: bytes | None = None
        async with session.limit.slot() as slot:
            while body is None:
                wait: float | None = None
                await client._pacer.wait()  # after the slot is ours, so a paced request is sent at once
                try:
                    auth = await client._auth.headers(session.http)
                    slot.sent()
                    log.debug("%s %s sent; %s", method, path, session.limit.describe())
                    response = await session.http.request(
                        method, path, params=params, content=content, headers={**headers, **auth}
                    )
                    content_read = await response.aread()
                except httpx.TransportError as exc:
                    slot.done(Outcome.OVERLOADED)
                    status, failure = None, f"{exc.__class__.__name__} (the connection failed)"
                except TokenUnavailable as exc:
                    status, failure = None, str(exc)
                else:
                    status = response.status_code
                    slot.done(
                        Outcome.THROTTLED
                        if status == 429
                        else Outcome.OVERLOADED
                        if status in _RETRYABLE or status >= 500
                        else Outcome.ANSWERED
                    )
                    request_id = response.headers.get("X-Cap-Requestid", "-")
                    log.debug("%s %s -> %s, X-Cap-Requestid %s", method, path, status, request_id)
                    if status == 200:
                        body = content_read
                        break
                    if status == 401 and not renewed and client._auth.invalidate():
                        renewed = True  # an expired token: renew once, without spending a retry
                        continue
                    if status not in _RETRYABLE and status < 500:
                        raise _refuse(response, what, client)
                    failure = f"HTTP {status}"
                    wait = _retry_after(response)
                    if wait is not None:
                        wait = min(wait, client.max_retry_after)
                    if status == 429:
                        client._pacer.pause(wait)
                if not await backoff(wait):
                    raise RetriesExhausted(f"{failure} after {client.max_retries + 1} attempts", status)
        try:
            return await asyncio.to_thread(read, body)
        except WireTypeError as exc:
            raise RetriesExhausted(f"an unreadable body: {exc}", None, lasting=True) from None
        except WireFormatError as exc:
            status, failure = None, f"an unreadable body: {exc}"  # the 200 said nothing true
        if not await backoff(None):
            raise RetriesExhausted(f"{failure} after {client.max_retries + 1} attempts", status)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
