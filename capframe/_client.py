"""The Client: which cluster, which credentials, and how hard to push it."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import httpx

from capframe import _args
from capframe._auth import BasicAuth, Credentials, OAuth
from capframe._pacing import Pacer
from capframe.errors import ArgumentTypeError, ConfigurationError, InvalidArgumentError

if TYPE_CHECKING:
    from capframe.sandbox import Faults, Sandbox

__all__ = ["CLUSTERS", "Client"]

CLUSTERS: Mapping[str, str] = {
    "eu": "https://eu.api.capillarytech.com",
    "apac": "https://apac.api.capillarytech.com",
    "in": "https://apac.api.capillarytech.com",
    "apac2": "https://apac2.api.capillarytech.com",
    "sea": "https://apac2.api.capillarytech.com",
    "us": "https://us.api.capillarytech.com",
    "cn": "https://api.capillarytech.cn.com",
}
# Every host Capillary's docs name (capillary-api.md section 3): a host near one of these but not it is a typo.
_KNOWN_HOSTS = sorted(
    {httpx.URL(url).host for url in CLUSTERS.values()}
    | {
        "eu.intouch.capillarytech.com", "eucrm.cc.capillarytech.com", "apac.api.capillary.co.in",
        "apac.intouch.capillary.co.in", "sea.api.capillarytech.com", "ushc.api.capillarytech.com",
        "cdn-api.capillarytech.cn.com", "intouch.capillarytech.cn.com", "nightly.api.capillarytech.com",
    }
)  # fmt: skip
_ENV = ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY", "CAPILLARY_CLIENT_SECRET")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_host(host: str) -> str:
    """A cluster alias, a host name or a base URL -> the base URL to call.

    Refuses plain http except on loopback, and host names one typo away from a Capillary cluster.
    """
    if not isinstance(host, str):
        raise ArgumentTypeError(
            f"host must be a string such as 'eu' or 'https://eu.api.capillarytech.com', not {type(host).__name__}"
        )
    text = host.strip().rstrip("/")
    if text.lower() in CLUSTERS:
        return CLUSTERS[text.lower()]
    if not text:
        raise InvalidArgumentError(f"host is empty: pass a cluster alias ({', '.join(CLUSTERS)}) or a base URL")
    if "://" not in text:
        if "." not in text and text != "localhost":
            close = difflib.get_close_matches(text.lower(), CLUSTERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidArgumentError(
                f"unknown cluster alias {text!r}: use one of {', '.join(CLUSTERS)} or a base URL.{hint}"
            )
        text = f"https://{text}"
    shown = re.sub(r"//[^/@]*@", "//***@", host)  # never echo credentials someone put in a URL
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise InvalidArgumentError(f"host {shown!r} is not a valid URL") from None
    if url.userinfo:
        raise InvalidArgumentError(
            "host must not hold credentials (user:password@...): pass them as username and password, "
            "or client_key and client_secret"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidArgumentError(f"host {shown!r} must be an https:// URL")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise InvalidArgumentError(
            f"host {shown!r} uses plain http, which would send credentials in clear text: use https:// "
            "(plain http is allowed only for loopback addresses such as a local sandbox)"
        )
    if url.host not in _KNOWN_HOSTS:
        close = difflib.get_close_matches(url.host, _KNOWN_HOSTS, n=1, cutoff=0.85)
        if close:
            raise InvalidArgumentError(f"unknown Capillary host {url.host!r}: did you mean {close[0]!r}?")
    return str(url).rstrip("/")


class Client:
    """A Capillary cluster, its credentials, and the limits a pull keeps to.

    >>> client = Client("eu", username="store123", password="Pass123")
    >>> client.base_url
    'https://eu.api.capillarytech.com'
    >>> client
    Client('https://eu.api.capillarytech.com', basic auth as till 'store123')

    For a cluster: ``Client(host, username=..., password=...)`` (Basic auth: the till code and its
    password, sent as its MD5) or ``Client(host, client_key=..., client_secret=...)`` (OAuth).
    ``Client.from_env()`` reads the same from ``CAPILLARY_*`` variables; ``Client.sandbox()``
    is the embedded emulator and needs no network. Options are checked here, before any request:
    a value of the wrong type is an ``ArgumentTypeError``, one out of range an ``InvalidArgumentError``.

    Options:
        host: a cluster alias (eu, apac, in, apac2, sea, us, cn), a host name or an https:// base URL;
            plain http only for loopback addresses such as a local sandbox.
        username: the till code, for Basic auth (with password).
        password: the till's password; only its MD5 is sent.
        client_key: the OAuth client key, for OAuth (with client_secret).
        client_secret: the OAuth client secret; it is sent only to get a token.
        batch_size: ids per Get Customers Bulk request, 1 to 1000 (default 100); Capillary answers
            error 1060 past its limit.
        concurrency: requests in flight at once: "auto" (the default) follows the API's latency, so
            that requests_per_minute, not concurrency, is the limit (rate x p90 latency x 1.25 + 1,
            lower when the server answers 5xx, times out or slows down as more is asked); an int
            fixes it, at least 1.
        max_concurrency: the most requests in flight when concurrency is "auto", at least 1
            (default 64); the connection pool holds as many connections.
        requests_per_minute: requests sent per minute at most, evenly spaced, token requests included
            (default 1000); None for no limit.
        timeout: seconds one request may take from connecting to its last byte, a token request
            too (default 30); past it the request is retried.
        max_retries: how many times a failed request is sent again, at least 0 (default 5): 429, 5xx,
            dropped connections, timeouts and unreadable bodies, with exponential backoff and jitter.
        retry_backoff: seconds before the first retry, doubling with each retry up to 30 seconds,
            with jitter (default 0.5).
        max_retry_after: cap in seconds on a Retry-After the API asks for (seconds or an HTTP date;
            default 60); a 429 holds back every request of the client and slows the pace for a minute.
        max_body_bytes: the largest answer read, in bytes after decompression (default 64 MiB, far
            above the largest real page); a larger one fails its request with a FetchError that says so.
        transport: an httpx.AsyncBaseTransport to send requests through instead of the network,
            such as httpx.MockTransport in tests (default None: the network, TLS verified).
    """

    def __init__(
        self,
        host: str,
        *,
        username: str | None = None,
        password: str | None = None,
        client_key: str | None = None,
        client_secret: str | None = None,
        batch_size: int = 100,
        concurrency: int | Literal["auto"] = "auto",
        max_concurrency: int = 64,
        requests_per_minute: int | None = 1000,
        timeout: float = 30.0,
        max_retries: int = 5,
        retry_backoff: float = 0.5,
        max_retry_after: float = 60.0,
        max_body_bytes: int = 64 << 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = resolve_host(host)
        self.batch_size = _args.count("batch_size", batch_size, _args.MAX_BATCH)
        self.concurrency = _args.concurrency(concurrency)
        self.max_concurrency = _args.count("max_concurrency", max_concurrency)
        self.requests_per_minute = (
            None if requests_per_minute is None else _args.count("requests_per_minute", requests_per_minute)
        )
        self.timeout = _args.seconds("timeout", timeout, zero=False)
        self.max_retries = _args.count("max_retries", max_retries, low=0)
        self.retry_backoff = _args.seconds("retry_backoff", retry_backoff)
        self.max_retry_after = _args.seconds("max_retry_after", max_retry_after)
        self.max_body_bytes = _args.count("max_body_bytes", max_body_bytes)
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise ArgumentTypeError(f"transport must be an httpx.AsyncBaseTransport, not {type(transport).__name__}")
        # The request layer's own state, read only by _http.Session.connect.
        self._transport = transport
        self._pacer = Pacer(self.requests_per_minute)
        self._auth = _credentials(username, password, client_key, client_secret, self.base_url, self._pacer)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Client:
        """A client from ``CAPILLARY_HOST`` and ``CAPILLARY_USERNAME``/``CAPILLARY_PASSWORD``
        (or ``CAPILLARY_CLIENT_KEY``/``CAPILLARY_CLIENT_SECRET``). Other options as for ``Client``."""
        env = os.environ if environ is None else environ
        host = env.get("CAPILLARY_HOST")
        if not host:
            raise ConfigurationError(
                "no Capillary cluster is configured: set CAPILLARY_HOST and either CAPILLARY_USERNAME and "
                "CAPILLARY_PASSWORD (Basic auth) or CAPILLARY_CLIENT_KEY and CAPILLARY_CLIENT_SECRET (OAuth), "
                "or pass client=capframe.Client.sandbox() to use the embedded sandbox"
            )
        client = cls(
            host,
            username=env.get("CAPILLARY_USERNAME") or None,
            password=env.get("CAPILLARY_PASSWORD") or None,
            client_key=env.get("CAPILLARY_CLIENT_KEY") or None,
            client_secret=env.get("CAPILLARY_CLIENT_SECRET") or None,
            **options,
        )
        if isinstance(client._auth, OAuth):
            client._auth.given_as = "CAPILLARY_CLIENT_KEY and CAPILLARY_CLIENT_SECRET"
        return client

    @classmethod
    def sandbox(
        cls,
        customers: int = 10_000,
        *,
        seed: int = 0,
        latency: float = 0.0,
        faults: Faults | Mapping[str, float] | list[str] | tuple[str, ...] | None = None,
        sandbox_requests_per_minute: int | None = None,
        capacity: int | None = None,
        oauth: bool = False,
        **options: Any,
    ) -> Client:
        """A client of the embedded sandbox: a synthetic organisation served in-process, no network.

        ``customers`` and ``seed`` make the organisation (the same seed, the same customers);
        ``latency`` adds seconds to each answer; ``faults`` injects failures (see
        :class:`capframe.sandbox.Faults`); ``sandbox_requests_per_minute`` makes the sandbox enforce a
        rate limit with 429s; ``capacity`` makes it a server that degrades past that many requests in
        flight (see :class:`capframe.sandbox.Sandbox`); ``oauth=True`` signs in with the sandbox's OAuth client key and secret
        instead of Basic auth. Other options as for ``Client``. The sandbox itself is ``client.sandbox_org``.
        """
        from capframe.sandbox import Sandbox

        org = Sandbox(
            customers,
            seed=seed,
            latency=latency,
            faults=faults,
            requests_per_minute=sandbox_requests_per_minute,
            capacity=capacity,
        )
        if oauth:
            client = cls(
                Sandbox.BASE_URL,
                client_key=Sandbox.CLIENT_KEY,
                client_secret=Sandbox.CLIENT_SECRET,
                transport=org.transport(),
                **options,
            )
        else:
            client = cls(
                Sandbox.BASE_URL,
                username=Sandbox.USERNAME,
                password=Sandbox.PASSWORD,
                transport=org.transport(),
                **options,
            )
        client.sandbox_org = org
        return client

    sandbox_org: Sandbox | None = None

    @property
    def most_in_flight(self) -> int:
        """The most requests a pull has in flight: ``concurrency``, or ``max_concurrency`` when it is "auto"."""
        return self.max_concurrency if self.concurrency == "auto" else self.concurrency

    def __repr__(self) -> str:
        kind = "sandbox" if self.sandbox_org is not None else self._auth.describe()
        return f"Client({self.base_url!r}, {kind})"

    __str__ = __repr__


def _credentials(
    username: str | None, password: str | None, key: str | None, secret: str | None, base_url: str, pacer: Pacer
) -> Credentials:
    given = {"username": username, "password": password, "client_key": key, "client_secret": secret}
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise ArgumentTypeError(f"{name} must be a string")
        if value is not None and not _encodable(value):  # checked outside any except: no chained error holds it
            raise ConfigurationError(
                f"{name} holds a character that is not text (a lone surrogate: a variable such as "
                f"CAPILLARY_{name.upper()} holding a byte that is not UTF-8?); set it again, as UTF-8 text"
            )
    if username and password:
        return BasicAuth(username, password)
    if key and secret:
        return OAuth(key, secret, base_url=base_url, pacer=pacer)
    if username or password or key or secret:
        raise ConfigurationError(
            "incomplete credentials: pass username and password (Basic auth: the till code and its password) "
            "or client_key and client_secret (OAuth); with from_env, set both variables of the pair"
        )
    raise ConfigurationError(
        "no credentials: pass username and password (Basic auth) or client_key and client_secret (OAuth), "
        "or set " + ", ".join(_ENV) + "; for the embedded sandbox use capframe.Client.sandbox()"
    )


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
