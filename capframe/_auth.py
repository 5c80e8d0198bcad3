"""Credentials: Basic (till code + MD5 of the password) and OAuth client credentials.

Neither object keeps a secret in a form that ``repr`` shows; the OAuth token lives only in memory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, field

import httpx

from capframe.errors import AuthenticationError

__all__ = ["BasicAuth", "Credentials", "OAuth", "TokenUnavailable"]

# Renew a token this long before the API says it expires, so no request carries a stale one.
_TOKEN_MARGIN = 30.0


class TokenUnavailable(Exception):
    """Internal: the token endpoint failed in a way a retry can fix (a 5xx, a 429, a dropped connection)."""


@dataclass(frozen=True, repr=False)
class BasicAuth:
    """``Authorization: Basic base64(till_code:md5_hex(password))``, as Capillary documents it."""

    username: str
    _header: str = field(compare=False)

    @classmethod
    def from_password(cls, username: str, password: str) -> BasicAuth:
        digest = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
        token = base64.b64encode(f"{username}:{digest}".encode()).decode()
        return cls(username, f"Basic {token}")

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        return {"Authorization": self._header}

    def invalidate(self) -> bool:
        """A 401 with Basic auth is final: nothing to renew."""
        return False

    def describe(self) -> str:
        return f"basic auth as till {self.username!r}"

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class OAuth:
    """A token from ``POST /v3/oauth/token/generate``, sent as ``X-CAP-API-OAUTH-TOKEN``.

    Renewed shortly before ``ttlSeconds`` runs out, and once when the API answers 401.
    """

    def __init__(self, client_key: str, client_secret: str) -> None:
        self.client_key = client_key
        self._secret = client_secret
        self._token: str | None = None
        self._expires_at = 0.0
        # Token requests of one event loop wait for each other; a pull runs in one loop.
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self) -> asyncio.Lock:
        return self._locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        async with self._lock():
            if self._token is None or time.monotonic() >= self._expires_at:
                await self._generate(http)
            assert self._token is not None
            return {"X-CAP-API-OAUTH-TOKEN": self._token}

    def invalidate(self) -> bool:
        """Forget the token after a 401, so the next request asks for a new one."""
        self._token = None
        return True

    async def _generate(self, http: httpx.AsyncClient) -> None:
        try:
            response = await http.post(
                "/v3/oauth/token/generate", json={"key": self.client_key, "secret": self._secret}
            )
        except httpx.TransportError as exc:
            raise TokenUnavailable(f"the OAuth token request failed: {exc.__class__.__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TokenUnavailable(f"the OAuth token request got HTTP {response.status_code}")
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(
                f"the API refused the OAuth client key {self.client_key!r} and its secret "
                f"(HTTP {response.status_code}); check CAPILLARY_CLIENT_KEY and CAPILLARY_CLIENT_SECRET",
                status=response.status_code,
            )
        try:
            data = response.json()["data"]
            token, ttl = str(data["accessToken"]), float(data["ttlSeconds"])
        except (ValueError, KeyError, TypeError):
            raise TokenUnavailable(
                f"the OAuth token endpoint answered HTTP {response.status_code} without a token"
            ) from None
        self._token = token
        self._expires_at = time.monotonic() + max(ttl - min(_TOKEN_MARGIN, ttl / 10), 0.0)

    def describe(self) -> str:
        return f"OAuth client {self.client_key!r}"

    def __repr__(self) -> str:
        return f"OAuth(client_key={self.client_key!r}, client_secret=***)"


Credentials = BasicAuth | OAuth
