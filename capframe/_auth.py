"""Credentials as httpx authentication flows: Basic (till code + MD5 of the password) and OAuth
client credentials, whose flow gets a token, sends it, and renews it once on a 401.

Neither object keeps a secret in a form that ``repr`` shows; the OAuth token lives only in memory.
Both redact their own secrets from any text (a gateway may repeat a credential in its error).
Errors about a credential never repeat it, nor chain to an exception that does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import replace

import httpx

from capframe._body import HEADERS
from capframe._classify import Done, Refuse, Retry, classify
from capframe._pacing import Pacer
from capframe._wire import WireFormatError, loads
from capframe.errors import AuthenticationError

__all__ = ["TOKEN_PATH", "BasicAuth", "Credentials", "OAuth", "TokenUnavailable"]

TOKEN_PATH = "/v3/oauth/token/generate"
# Renew a token this long before the API says it expires, so no request carries a stale one.
_TOKEN_MARGIN = 30.0
# A token's lifetime as the API states it, trusted within these bounds (an API client's "token expiry
# duration" is set by its admin: seconds are possible, and a token kept past its real life gets 401s).
_MIN_TTL, _MAX_TTL = 1.0, 86_400.0
# The lifetime assumed when the answer states none that makes sense (missing, 0 or less, not a number):
# a lifetime of 0 would cost a token request per data request; a token that dies sooner gets its 401
# and a renewal.
_UNSTATED_TTL = 60.0
_TOKEN_BODY = 1 << 16  # a token answer longer than this is not one


class TokenUnavailable(Exception):
    """Internal: the token endpoint failed in a way a retry can fix (a 5xx, a 429, a dropped connection)."""

    def __init__(self, retry: Retry) -> None:
        super().__init__(retry.failure)
        self.retry = retry


class _Redacting:
    """Replaces the credential's secrets in any text with ``***``."""

    _secrets: set[str]

    def redact(self, text: str) -> str:
        secrets = sorted((s for s in self._secrets if len(s) >= 4), key=len, reverse=True)
        if not secrets:
            return text
        return re.sub("|".join(map(re.escape, secrets)), "***", text, flags=re.IGNORECASE)


class BasicAuth(httpx.Auth, _Redacting):
    """``Authorization: Basic base64(till_code:md5_hex(password))``, as Capillary documents it.

    Credentials are checked by the Client (text that encodes as UTF-8) before one is made.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        digest = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
        token = base64.b64encode(f"{username}:{digest}".encode()).decode()
        self._header = f"Basic {token}"
        self._secrets = {password, digest, token}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request  # a 401 with Basic auth is final: nothing to renew

    def describe(self) -> str:
        return f"basic auth as till {self.username!r}"

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class OAuth(httpx.Auth, _Redacting):
    """A token from ``POST /v3/oauth/token/generate``, sent as ``X-CAP-API-OAUTH-TOKEN``.

    Renewed shortly before ``ttlSeconds`` runs out, and once when the API answers 401. Token requests
    wait for their turn of the client's pacer, like every other request.
    """

    # Where the key and secret came from, for a refusal to name: Client.from_env says its variables.
    given_as = "the client_key and client_secret given to capframe.Client"

    def __init__(
        self,
        client_key: str,
        client_secret: str,
        *,
        base_url: str,
        pacer: Pacer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_key = client_key
        self._body = json.dumps({"key": client_key, "secret": client_secret}, separators=(",", ":")).encode()
        self._url = base_url + TOKEN_PATH
        self._pacer = pacer
        self._clock = clock
        self._secrets = {client_secret}
        # (token, when it came, when to renew it), replaced whole: pulls in other threads read it while
        # one renews it.
        self._token: tuple[str, float, float] | None = None
        # Token requests of one event loop wait for each other (a pull runs in one loop); pulls in other
        # threads run in other loops. Keyed by the loop itself: a finished loop's id may be a new loop's.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def _lock(self) -> asyncio.Lock:
        return self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    def _valid(self, refused_at: float | None) -> str | None:
        """The token to send now: None when there is none, it is due for renewal, or it came before an
        attempt that a 401 answered was sent (that 401 may be its own, met by a request of another pull)."""
        held = self._token
        if held is None or self._clock() >= held[2] or (refused_at is not None and held[1] <= refused_at):
            return None
        return held[0]

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        refused_at: float | None = None  # when the attempt a 401 answered was sent: renew once, after it
        while True:
            lock = self._lock()
            late = lock.locked()  # another request is getting a token: this one's turn will have passed
            async with lock:
                token = self._valid(refused_at)
                if token is None:
                    await self._pacer.wait()
                    answer = yield httpx.Request(
                        "POST", self._url, content=self._body, headers={**HEADERS, "Content-Type": "application/json"}
                    )
                    await answer.aread()
                    token = self._accept(answer)
                    late = True
            if late:  # the turn this request waited for went by, or went to the token request: a new one
                await self._pacer.wait()
                # Pulls in other threads share the pace: the wait may outlast the token, and another
                # request may have renewed it meanwhile. The newest valid token goes; else this one.
                token = self._valid(refused_at) or token
            request.headers["X-CAP-API-OAUTH-TOKEN"] = token
            sent_at = self._clock()
            response = yield request
            if response.status_code != 401 or refused_at is not None:
                return
            refused_at = sent_at

    def _accept(self, response: httpx.Response) -> str:
        """Take the token of a token answer, or raise what its failure means."""
        status = response.status_code
        if status in (400, 401, 403):
            raise AuthenticationError(
                f"the API refused the OAuth client key {self.client_key!r} and its secret "
                f"(HTTP {status}); check {self.given_as}",
                status=status,
            )
        verdict = classify(response, "the OAuth token request", self.redact)
        if isinstance(verdict, Refuse):
            raise verdict.error
        if isinstance(verdict, Retry):
            raise TokenUnavailable(replace(verdict, failure=f"the OAuth token request got {verdict.failure}"))
        token, ttl = _token(verdict)
        if token is None:
            raise TokenUnavailable(Retry(f"the OAuth token endpoint answered HTTP {status} without a token", status))
        if not (token.isascii() and token.isprintable() and " " not in token):
            self._secrets.add(token)
            raise AuthenticationError(
                "the OAuth token endpoint answered a token that cannot be sent in a header (characters that are "
                "not printable ASCII): report it to Capillary",
                status=status,
            )
        self._secrets.add(token)
        ttl = min(max(ttl, _MIN_TTL), _MAX_TTL) if ttl > 0 else _UNSTATED_TTL
        now = self._clock()
        self._token = (token, now, now + ttl - min(_TOKEN_MARGIN, ttl / 10))
        return token

    def describe(self) -> str:
        return f"OAuth client {self.client_key!r}"

    def __repr__(self) -> str:
        return f"OAuth(client_key={self.client_key!r}, client_secret=***)"


def _token(answer: Done) -> tuple[str | None, float]:
    """(accessToken, ttlSeconds) of a token answer: (None, 0) where the token is missing or not text."""
    if len(answer.body) > _TOKEN_BODY:
        return None, 0.0
    try:
        document = loads(answer.body)
    except WireFormatError:
        return None, 0.0
    data = document.get("data") if isinstance(document, dict) else None
    token = data.get("accessToken") if isinstance(data, dict) else None
    ttl = data.get("ttlSeconds") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return None, 0.0
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        return token, 0.0
    # An int of 401 digits does not fit a float: clamp it first. NaN counts as no lifetime.
    ttl = float(max(min(ttl, _MAX_TTL), -1)) if isinstance(ttl, int) else ttl
    return token, 0.0 if math.isnan(ttl) else ttl


Credentials = BasicAuth | OAuth
