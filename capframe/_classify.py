"""What an answer means: done, ask again (after N seconds, perhaps holding every request back), or
refuse with this error. Pure: a response whose body was read, or the exception met while getting
one, in; a verdict out.

Asked again: 429, 5xx (Capillary's 521 too: customer busy), dropped connections, answers that did
not arrive within ``timeout``, bodies that do not decode. Refused at once: 401, 403 and other 4xx,
redirects (never followed: credentials must not travel to another location), a body past
``max_body_bytes``, and mistakes of configuration: a refused connection, an unknown host name, a
failed TLS handshake. Text from the server is cut short and redacted of the client's credentials
before it goes into an error.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from capframe._body import BodyTooLarge, UndecodableBody
from capframe._retry import RetriesExhausted, retry_after
from capframe._wire import WireFormatError, loads
from capframe.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigurationError,
    RequestRejectedError,
)

__all__ = ["Done", "Refuse", "Retry", "Verdict", "api_error", "classify", "classify_failure", "server_text"]


@dataclass(frozen=True)
class Done:
    body: bytes


@dataclass(frozen=True)
class Retry:
    failure: str  # what went wrong, for the log and the final error: "HTTP 503"
    status: int | None = None
    after: float | None = None  # seconds the server asked for (Retry-After), not yet capped
    pause: bool = False  # hold every request of the client back: the whole API key is over its limit


@dataclass(frozen=True)
class Refuse:
    error: Exception  # a CapframeError, or RetriesExhausted for an answer asking again would not change


Verdict = Done | Retry | Refuse

RETRYABLE = frozenset({429, 500, 502, 503, 504, 521})
_ERROR_BODY = 1 << 16  # error bodies longer than this are not read for a message
_TEXT = 200  # characters of server text an error repeats, at most


def _same(text: str) -> str:
    return text


def server_text(value: object, redact: Callable[[str], str] = _same) -> str:
    """Text from a server, fit to repeat: printable, short, redacted."""
    # Redacted first: a value with a control character is still found as it was sent.
    text = "".join(c if c.isprintable() else "?" for c in redact(str(value)[: 64 * _TEXT])[: 4 * _TEXT])
    return text if len(text) <= _TEXT else text[: _TEXT - 3] + "..."


def api_error(body: bytes, redact: Callable[[str], str] = _same) -> tuple[int | None, str]:
    """The API's own error code and message from an error body, where they are sane; else (None, "")."""
    if len(body) > _ERROR_BODY:
        return None, ""
    try:
        document = loads(body)
    except WireFormatError:
        return None, ""
    errors = document.get("errors") if isinstance(document, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code, message = first.get("code"), first.get("message")
    sane = isinstance(code, int) and not isinstance(code, bool) and -(2**63) <= code < 2**63
    return (code if sane else None), (server_text(message, redact) if isinstance(message, str) else "")


def classify(response: httpx.Response, what: str, redact: Callable[[str], str] = _same) -> Verdict:
    """A response whose body was read (``response.content``) -> what to do with it."""
    status = response.status_code
    if 200 <= status < 300:
        return Done(response.content)
    if status in RETRYABLE or status >= 500:
        return Retry(f"HTTP {status}", status, retry_after(response.headers.get("Retry-After")), pause=status == 429)
    return Refuse(_refusal(response, what, redact))


def _refusal(response: httpx.Response, what: str, redact: Callable[[str], str]) -> Exception:
    status = response.status_code
    base = f"{response.request.url.scheme}://{response.request.url.netloc.decode('ascii', 'replace')}"
    if 300 <= status < 400:
        location = httpx.URL()
        with contextlib.suppress(httpx.InvalidURL, UnicodeError, ValueError):
            location = response.request.url.join(response.headers.get("Location", ""))
        where = f" to {server_text(location.host, redact)}" if location.host else ""
        return RequestRejectedError(
            f"the API answered {what} with HTTP {status}, a redirect{where}, which capframe does not follow "
            f"(credentials must not travel to another location): check the host ({base}); it must be the "
            "cluster's API host itself, such as https://eu.api.capillarytech.com",
            status=status,
        )
    code, message = api_error(response.content, redact)
    said = f": {message}" if message else ""
    said += f" (code {code})" if code is not None else ""
    if status == 401:
        return AuthenticationError(
            f"the API refused the credentials (HTTP 401{said}) for {what}: check the till code (username) and "
            f"password, or the OAuth client key and secret, and that they belong to {base}",
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
        api_message=message or None,
    )


TOO_LARGE = (
    "Raise the client's max_body_bytes if the API's answers are really this large, or ask for less per "
    "request (batch_size, page_size); a server sending without end is not the Capillary API: check the host."
)


def classify_failure(exc: Exception, host: str, timeout: float) -> Retry | Refuse | None:
    """An exception met while sending or reading -> what to do; None for one this module does not know."""
    if isinstance(exc, TimeoutError):
        return Retry(f"no complete answer within timeout={timeout:g} s")
    if isinstance(exc, BodyTooLarge):
        return Refuse(RetriesExhausted(str(exc), None, remedy=TOO_LARGE))
    if isinstance(exc, UndecodableBody):
        return Retry(f"an unreadable body: {exc}")
    if isinstance(exc, httpx.ConnectError) and (mistake := _misconfigured(exc, host)) is not None:
        return Refuse(ConfigurationError(mistake))
    if isinstance(exc, httpx.TransportError):
        return Retry(f"{exc.__class__.__name__} (the connection failed)")
    return None


def _on_loopback(url: str) -> bool:
    name = httpx.URL(url).host
    with contextlib.suppress(ValueError):
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    return False


def _misconfigured(exc: BaseException, host: str) -> str | None:
    """A connection that cannot succeed however often it is tried: say what is wrong with the host."""
    check = "check the host (CAPILLARY_HOST, or the host given to capframe.Client)"
    seen: set[int] = set()
    linked: BaseException | None = exc
    while linked is not None and id(linked) not in seen:
        seen.add(id(linked))
        if isinstance(linked, ConnectionRefusedError):
            return (
                f"nothing answers at {host}: the connection was refused. {check} and its port; is the server running?"
            )
        if isinstance(linked, socket.gaierror):
            return (
                f"the host name of {host} is unknown (no address found for it): {check}, e.g. 'eu' for "
                "https://eu.api.capillarytech.com, and that this machine is online"
            )
        if isinstance(linked, ssl.SSLError):
            reason = getattr(linked, "reason", None) or linked.__class__.__name__
            if host.startswith("https://") and _on_loopback(host):  # an https:// the user did not write, often
                plain = "http://" + host.removeprefix("https://")
                return (
                    f"the TLS connection to {host} failed ({reason}): a local server that speaks plain HTTP, such as "
                    f"`capframe sandbox`, needs http://: use {plain} (CAPILLARY_HOST, or the host given to capframe.Client)."
                )
            return (
                f"the TLS connection to {host} failed ({reason}): {check}; it must be an HTTPS API host. Behind a "
                "proxy that inspects HTTPS, point SSL_CERT_FILE at its certificate."
            )
        linked = linked.__cause__ or linked.__context__
    return None
