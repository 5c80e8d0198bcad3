"""Record capframe's HTTP traffic once, replay it offline in your tests, and leak nothing.

With `pytest-recording <https://github.com/kiwicom/pytest-recording>`_ (vcrpy), in ``conftest.py``::

    import pytest
    import capframe.testing

    @pytest.fixture(scope="module")
    def vcr_config():
        return capframe.testing.vcr_config()

and in a test::

    @pytest.mark.vcr
    def test_my_pull():
        client = capframe.Client("eu", username=..., password=...)
        frame = capframe.fetch_customers([565338404], "INSTORE", client=client)
        ...

``pytest --record-mode=once`` records the cassette, plain ``pytest`` replays it (pytest-recording's
default mode is ``none``: replay only, no network). Never put ``record_mode`` in ``vcr_config``:
it would silently override ``--record-mode``.

What the configuration does:

* Requests are matched on method, scheme, path, query and **body**, not on host or port, so a
  cassette recorded against a loopback sandbox on a random port replays anywhere, and concurrent
  batches each get their own answer (vcrpy otherwise matches POSTs by order). A retried request
  matches the same batch's interactions, played in the order they were recorded.
* Credentials are removed: the ``Authorization``, ``X-CAP-API-OAUTH-TOKEN`` and ``Cookie`` request
  headers (and similar ones), ``set-cookie`` response headers, the ``key`` and ``secret`` of an OAuth
  token request and the ``accessToken`` of its answer; and, should a server repeat one (some gateways
  echo the credential they refused), that secret anywhere in a later answer, and what looks like a
  ``Basic`` value or an MD5 digest in an error answer.
* Personal data in JSON bodies is replaced by deterministic placeholders derived from a keyed hash
  of the original value, shaped like it, so joins across tables still work: names become
  ``Name-<hash>``, mobiles 12 digits starting ``910``, emails ``user-<hash>@example.invalid``, other
  identifiers (external ids, card numbers, ...) ``ext-<hash>``, ``card-<hash>`` or ``id-<hash>``,
  and dates of birth keep only their year. Structure, numbers, booleans and ids are kept. Set
  ``CAPFRAME_SCRUB_KEY`` to a private value when recording real data: with the public default key,
  the small space of phone numbers could be searched for a given placeholder.
* The scrubbers are idempotent (vcrpy applies them again when it loads a cassette and while it
  matches requests), and leave bodies that are not JSON alone (a JSON body cut short is still
  scrubbed, as far as it goes; bytes that are not UTF-8 are kept as they are, the text around them
  scrubbed). A body they cannot scrub is refused loudly, never recorded as it is.
* vcrpy's own log lines (its INFO line for each recorded interaction shows the answer as it came)
  show an answer by its status only, URLs without personal data in their query, and no secret the
  scrubbers have met.

>>> response = {
...     "status": {"code": 200, "message": "OK"},
...     "headers": {"set-cookie": ["_cfuvid=abc"], "content-type": ["application/json"]},
...     "body": {"string": b'{"id": 565338404, "firstName": "Muhammad", "identifiers": '
...              b'[{"type": "mobile", "value": "912726093529"}], "lifetimePurchases": 0.000}'},
... }
>>> scrubbed = scrub_response(response)
>>> scrubbed["headers"]
{'content-type': ['application/json']}
>>> print(scrubbed["body"]["string"].decode())  # doctest: +ELLIPSIS
{"id":565338404,"firstName":"Name-...","identifiers":[{"type":"mobile","value":"910..."}],"lifetimePurchases":0.000}
>>> scrub_response(scrubbed) == scrubbed
True
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from functools import partial
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from capframe._endpoints import personal_parameters
from capframe._http import as_words

__all__ = [
    "CREDENTIAL_HEADERS",
    "MATCH_ON",
    "scrub_request",
    "scrub_response",
    "vcr_config",
]

#: Request and response headers that carry credentials, lower-case. All are dropped.
CREDENTIAL_HEADERS: Final[tuple[str, ...]] = (
    "authorization",
    "proxy-authorization",
    "x-cap-api-oauth-token",
    "cap-api-access-token",
    "x-cap-api-auth-key",
    "x-api-key",
    "cookie",
    "set-cookie",
    "set-cookie2",
)
#: What a request is matched on: never host or port, always the body.
MATCH_ON: Final[tuple[str, ...]] = ("method", "scheme", "path", "query", "body")

REDACTED: Final = "REDACTED"
_TOKEN_PATH: Final = "/v3/oauth/token/generate"
_DEFAULT_KEY: Final = "capframe.testing: set CAPFRAME_SCRUB_KEY to a private value for real data"

# Keys whose string values are secrets wherever they appear (normalised: lower case, letters and digits only).
_SECRET_KEYS: Final = frozenset(
    {"password", "secret", "clientsecret", "accesstoken", "refreshtoken", "idtoken", "token", "apikey"}
)
# Keys whose values are personal data, normalised, mapped to the kind of placeholder.
_KEY_KINDS: Final[Mapping[str, str]] = {
    **dict.fromkeys(
        ("firstname", "lastname", "middlename", "fullname", "displayname", "nickname", "customername"), "name"
    ),
    **dict.fromkeys(("mobile", "mobilenumber", "phone", "phonenumber", "landline", "whatsapp"), "mobile"),
    **dict.fromkeys(("email", "emailid", "emailaddress"), "email"),
    "externalid": "ext",
    **dict.fromkeys(("cardnumber", "cardexternalid"), "card"),
    **dict.fromkeys(
        (
            "wechat",
            "wechatid",
            "fbid",
            "facebookid",
            "martjackid",
            "cuid",
            "unionid",
            "openid",
            "twitterid",
            "googleid",
            "lineid",
            "identifiervalue",
        ),
        "id",
    ),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday", "anniversary", "anniversarydate"), "date"),
    **dict.fromkeys(
        ("address", "addressline", "addressline1", "addressline2", "street", "pincode", "zipcode", "postalcode"),
        "address",
    ),
}
# {"type": ..., "value": ...} objects: the type says what the value is. Inside these lists any type
# counts; elsewhere only the identifier types known here do (a type/value pair may be anything).
_IDENTIFIER_LISTS: Final = frozenset({"identifiers", "identifiersall", "commchannels", "channels"})
_PLACEHOLDER: Final = re.compile(
    r"910\d{9}|user-[0-9a-f]{12}@example\.invalid|Name-[0-9a-f]{10}|(?:ext|card|id|address)-[0-9a-f]{12}|" + REDACTED
)
_ISO_DATE: Final = re.compile(r"(\d{4})-\d{2}-\d{2}(.*)", re.DOTALL)
_YEAR: Final = re.compile(r"\b(19\d\d|20\d\d)\b")


class _VcrRequest(Protocol):
    """What the scrubbers use of a ``vcr.request.Request``."""

    uri: str
    body: Any
    headers: Any


R = TypeVar("R", bound=_VcrRequest)


def vcr_config(*, personal_data: bool = True) -> dict[str, Any]:
    """The pytest-recording ``vcr_config``: credential filters, scrubbers and body matching.

    ``personal_data=False`` keeps names, mobiles and the like as they are (credentials are still
    removed): only for cassettes whose data is public or synthetic.

    >>> config = vcr_config()
    >>> config["match_on"]
    ('method', 'scheme', 'path', 'query', 'body')
    >>> "record_mode" in config
    False
    """
    # Secrets the filters replace (a token request's secret, a token answer's token) are removed from
    # every later answer of the cassette too: a gateway may repeat the credential it received.
    secrets: set[str] = set()
    asked: set[str] = set()  # the personal values the cassette's requests asked about
    _redact_recording_logs(secrets)
    return {
        "filter_headers": list(CREDENTIAL_HEADERS),
        "match_on": MATCH_ON,
        "before_record_request": partial(_scrub_request, personal_data=personal_data, secrets=secrets, asked=asked),
        "before_record_response": partial(_scrub_response, personal_data=personal_data, secrets=secrets, asked=asked),
        "decode_compressed_response": True,
    }


# vcrpy's loggers: those that see a request or an answer while a cassette is recorded or replayed.
_VCR_LOGGERS: Final = (
    "vcr", "vcr.cassette", "vcr.matchers", "vcr.patch", "vcr.request", "vcr.stubs", "vcr.stubs.httpx_stubs",
    "vcr.stubs.aiohttp_stubs", "vcr.stubs.requests_stubs", "vcr.stubs.tornado_stubs", "vcr.stubs.boto3_stubs",
)  # fmt: skip
_URL: Final = re.compile(r"https?://[^\s<>\"']+")


class _RecordingLog(logging.Filter):
    """vcrpy logs each request and answer as it meets them: its INFO line "Appending request %s and
    response %s" shows the answer as it came, before the scrubbers (an OAuth access token, the
    customers' names and mobiles). Here an answer is shown by its status only, a URL's query without
    personal data, and a secret the scrubbers have met is blanked."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[set[str]] = []  # each vcr_config's secrets, filled as its cassette is recorded

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else (record.args,) if record.args else ()
        try:
            message = str(record.msg) % tuple(_logged(arg) for arg in args) if args else str(record.msg)
        except (TypeError, ValueError):  # a message that does not take its arguments: shown without them
            message = str(record.msg)
        message = _URL.sub(lambda url: _scrub_query(url[0]), message)
        for value in sorted({v for found in self.secrets for v in found}, key=len, reverse=True):
            if len(value) >= _SHORTEST_SECRET:
                message = message.replace(value, "REDACTED")
        record.msg, record.args = message, ()
        return True


def _logged(arg: object) -> object:
    """What a log line shows of a vcrpy object: an answer's status, a request's method and URL."""
    if isinstance(arg, dict):
        status = arg.get("status")
        return f"<response {status.get('code') if isinstance(status, dict) else '?'}>"
    method, uri = getattr(arg, "method", None), getattr(arg, "uri", None)
    if isinstance(method, str) and isinstance(uri, str):
        return f"<Request ({method}) {uri}>"
    return arg


_RECORDING_LOG: Final = _RecordingLog()


def _redact_recording_logs(secrets: set[str]) -> None:
    """Put the filter on every vcrpy logger (a filter sees only its own logger's records) and let it
    blank ``secrets`` too."""
    _RECORDING_LOG.secrets.append(secrets)
    names = {*_VCR_LOGGERS, *(n for n in logging.Logger.manager.loggerDict if n.startswith("vcr."))}
    for name in names:
        logger = logging.getLogger(name)
        if _RECORDING_LOG not in logger.filters:
            logger.addFilter(_RECORDING_LOG)


def scrub_request(request: R, *, personal_data: bool = True) -> R:
    """A copy of a vcrpy request without credentials (and without personal data in its query and body).

    Drops credential headers, redacts the ``key`` and ``secret`` of ``POST /v3/oauth/token/generate``
    and secrets anywhere in a JSON body. Idempotent; a request it cannot scrub raises ``ValueError``.
    """
    return _scrub_request(request, personal_data=personal_data, secrets=set(), asked=set())


def _scrub_request(request: R, *, personal_data: bool, secrets: set[str], asked: set[str]) -> R:
    """``asked``: the personal values of the query are added to it."""
    try:
        request = copy.copy(request)
        if request.headers is not None:  # a new mapping: the request given is left as it was
            request.headers = {k: v for k, v in request.headers.items() if str(k).lower() not in CREDENTIAL_HEADERS}
        uri = request.uri
        if personal_data and isinstance(uri, str) and "?" in uri:
            request.uri = _scrub_query(uri, asked)
        path = urlsplit(uri).path if isinstance(uri, str) else ""
        body = request.body
        if isinstance(body, (bytes, str)) and body:
            token_request = path.rstrip("/").endswith(_TOKEN_PATH)
            new = _scrub_body(body, token_request=token_request, personal_data=personal_data, secrets=secrets)
            if new is not body:
                request.body = new
                _fix_length(request.headers, new)
    except Exception:
        raise _Unscrubbable("request") from None
    return request


class _Unscrubbable(ValueError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"capframe.testing could not scrub a recorded {what}: it is not recorded, since it may hold "
            "credentials or personal data. Please report this with the shape (not the content) of the body."
        )


def scrub_response(response: Any, *, personal_data: bool = True) -> Any:
    """A copy of a vcrpy response dict without ``set-cookie`` and other credential headers, without
    tokens, and (by default) with personal data in a JSON body replaced by placeholders. An error
    answer (3xx to 5xx) is also rid of what looks like an echoed credential: a ``Basic`` value, an
    MD5 digest (some gateways repeat the credential they refused).

    Keeps ``content-length`` true to the new body. Idempotent; a body it cannot scrub raises ``ValueError``.
    """
    return _scrub_response(response, personal_data=personal_data, secrets=set(), asked=set())


def _scrub_response(response: Any, *, personal_data: bool, secrets: set[str], asked: set[str]) -> Any:
    """``secrets``: values scrubbed so far (from this cassette's requests and answers), removed
    wherever they appear again, in a body or a header. ``asked``: the personal values this
    cassette's requests asked about, removed where an answer repeats one in its text."""
    if not isinstance(response, dict):
        return response
    response = dict(response)
    headers = response.get("headers")
    status = response.get("status")
    error = isinstance(status, Mapping) and isinstance(status.get("code"), int) and status["code"] >= 300
    body = response.get("body")
    text = body.get("string") if isinstance(body, Mapping) else None
    try:
        if isinstance(body, Mapping) and isinstance(text, (bytes, str)) and text:
            new = _scrub_body(text, token_request=False, personal_data=personal_data, secrets=secrets)
            new = _without_echoes(new, secrets, error)
            new = _without_asked(new, asked) if personal_data and asked else new
            if new is not text:
                response["body"] = {**body, "string": new}
                _fix_length(headers, new)
        if isinstance(headers, Mapping):
            response["headers"] = {
                k: _header_without_echoes(v, secrets, error)
                for k, v in headers.items()
                if str(k).lower() not in CREDENTIAL_HEADERS
            }
    except Exception:
        raise _Unscrubbable("response") from None
    return response


_SHORTEST_SECRET = 6  # shorter values are too common to remove wherever they appear
_ECHOED = re.compile(r"(?i)(\bBasic\s+)[A-Za-z0-9+/=_-]{6,}|(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")


def _header_without_echoes(value: Any, secrets: set[str], error: bool) -> Any:
    """A header value (a str, or vcrpy's list of them) without echoed secrets."""
    if isinstance(value, list):
        return [_header_without_echoes(v, secrets, error) for v in value]
    return _without_echoes(value, secrets, error) if isinstance(value, str) else value


def _without_echoes(body: bytes | str, secrets: set[str], error: bool) -> bytes | str:
    """``body`` without the secrets already scrubbed elsewhere and, in an error answer, without
    what looks like a credential; ``body`` itself if there is none."""
    text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    new = text
    for secret in sorted(secrets, key=len, reverse=True):
        new = new.replace(secret, REDACTED)
    if error:
        new = _ECHOED.sub(lambda m: f"{m.group(1)}{REDACTED}" if m.group(1) else REDACTED, new)
    if new == text:
        return body
    return new.encode("utf-8", "surrogateescape") if isinstance(body, bytes) else new


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _without_asked(body: bytes | str, asked: set[str]) -> bytes | str:
    """``body`` without the values asked, where a JSON string holds one as a word of its own (a
    message "no customer with ..."): never inside a number or a longer word, which would change
    the data replayed (an externalId 700000 is part of the customer id 700000002)."""
    text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    word = as_words(asked)
    new = _JSON_STRING.sub(lambda string: word.sub(REDACTED, string[0]), text)
    if new == text:
        return body
    return new.encode("utf-8", "surrogateescape") if isinstance(body, bytes) else new


def _fix_length(headers: Any, body: bytes | str) -> None:
    """Keep a ``content-length`` header (a str or vcrpy's list of one) true to a scrubbed body."""
    if not isinstance(headers, MutableMapping):
        return
    length = str(len(body.encode() if isinstance(body, str) else body))
    for name in [k for k in headers if str(k).lower() == "content-length"]:
        headers[name] = [length] if isinstance(headers[name], list) else length


# --- bodies ---


class _Num:
    """A JSON number kept as its text, so ``0.000`` stays ``0.000`` and big ints stay exact."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs: order and duplicate keys survive."""


def _scrub_body(
    body: bytes | str, *, token_request: bool, personal_data: bool, secrets: set[str] | None = None
) -> bytes | str:
    """``body`` itself when nothing needs to change (so a clean body is byte for byte the same).

    Bytes that are not UTF-8 are carried through as they are (``surrogateescape``): the text around
    them is scrubbed all the same.
    """
    raw = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
    stripped = raw.lstrip("\ufeff \t\r\n")
    if not stripped.startswith(("{", "[")):
        return body  # not JSON: an HTML error page, a form, binary data
    scrubber = _Scrubber(token_request=token_request, personal_data=personal_data, secrets=secrets)
    try:
        tree = json.loads(stripped, object_pairs_hook=_Obj, parse_float=_Num, parse_int=_Num, parse_constant=_Num)
        new_tree = scrubber.node(tree, None)
        if not scrubber.changed:
            return body
        out: list[str] = []
        _dump(new_tree, out)
        return _encoded("".join(out), body)
    except (ValueError, RecursionError):  # ValueError: also a lone surrogate escape that cannot be written back
        # JSON cut short (or nested beyond reach): scrub the "key": "value" pairs it has.
        scrubber = _Scrubber(token_request=token_request, personal_data=personal_data, secrets=secrets)
        text = scrubber.text(raw)
        return _encoded(text, body) if scrubber.changed else body


def _encoded(text: str, body: bytes | str) -> bytes | str:
    return text.encode("utf-8", "surrogateescape") if isinstance(body, bytes) else text


def _dump(node: Any, out: list[str]) -> None:
    if isinstance(node, _Obj):
        out.append("{")
        for i, (key, value) in enumerate(node):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _dump(value, out)
        out.append("}")
    elif isinstance(node, list):
        out.append("[")
        for i, value in enumerate(node):
            if i:
                out.append(",")
            _dump(value, out)
        out.append("]")
    elif isinstance(node, _Num):
        out.append(node.text)
    else:  # str, bool, None
        out.append(json.dumps(node, ensure_ascii=False))


def _norm(key: str) -> str:
    return "".join(c for c in key.lower() if c.isalnum())


def _key_kind(key: str, value: object) -> str | None:
    """The placeholder kind for the value of ``key``, or None to leave it (and look inside it)."""
    norm = _norm(key)
    kind = _KEY_KINDS.get(norm)
    if kind is not None:
        return kind
    if isinstance(value, str):  # custom fields: "email2", "alternate_mobile", ...
        if "email" in norm and "@" in value:
            return "email"
        if ("mobile" in norm or "phone" in norm) and sum(c.isdigit() for c in value) >= 6:
            return "mobile"
    return None


def _type_kind(type_name: str, any_type: bool) -> str | None:
    norm = _norm(type_name)
    kind = _KEY_KINDS.get(norm)
    if kind in ("mobile", "email", "ext", "card", "id"):
        return kind
    return "id" if any_type else None


class _Scrubber:
    def __init__(self, *, token_request: bool, personal_data: bool, secrets: set[str] | None = None) -> None:
        self.token_request = token_request
        self.personal_data = personal_data
        self.secrets = set() if secrets is None else secrets  # secret values replaced: noted, to find them elsewhere
        self.changed = False
        self.key = os.environ.get("CAPFRAME_SCRUB_KEY", _DEFAULT_KEY).encode()

    def node(self, node: Any, parent_key: str | None) -> Any:
        if isinstance(node, _Obj):
            return self.obj(node, parent_key)
        if isinstance(node, list):
            return [self.node(item, parent_key) for item in node]
        return node

    def obj(self, pairs: _Obj, parent_key: str | None) -> _Obj:
        value_kind = None
        if self.personal_data:
            types = [v for k, v in pairs if k == "type" and isinstance(v, str)]
            if types:
                value_kind = _type_kind(types[0], parent_key is not None and _norm(parent_key) in _IDENTIFIER_LISTS)
        out = _Obj()
        for key, value in pairs:
            out.append((key, self.member(key, value, value_kind)))
        return out

    def member(self, key: str, value: Any, value_kind: str | None) -> Any:
        norm = _norm(key)
        if norm in _SECRET_KEYS or (self.token_request and norm == "key"):
            return self.secret(value) if isinstance(value, str) else value
        if not self.personal_data:
            return self.node(value, key)
        kind = value_kind if key == "value" and value_kind is not None else _key_kind(key, value)
        if kind is None:
            return self.node(value, key)
        if isinstance(value, str):
            return self.replace(value, lambda v: self.placeholder(kind, v))
        return self.node(value, key)

    def secret(self, value: str) -> str:
        if len(value) >= _SHORTEST_SECRET and value != REDACTED:
            self.secrets.add(value)
        return self.replace(value, lambda _: REDACTED)

    def replace(self, value: str, make: Callable[[str], str]) -> str:
        if not value.strip() or _PLACEHOLDER.fullmatch(value):
            return value
        new = make(value)
        if new != value:
            self.changed = True
            return new
        return value

    def placeholder(self, kind: str, value: str) -> str:
        if kind == "date":
            iso = _ISO_DATE.fullmatch(value)
            if iso:
                return f"{iso.group(1)}-01-01{iso.group(2)}"
            year = _YEAR.search(value)
            return f"{year.group(1)}-01-01" if year else REDACTED
        digest = hmac.new(self.key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        if kind == "mobile":
            return "910" + str(int(digest[:15], 16) % 10**9).zfill(9)
        if kind == "email":
            return f"user-{digest[:12]}@example.invalid"
        if kind == "name":
            return f"Name-{digest[:10]}"
        return f"{kind}-{digest[:12]}"

    # --- JSON that does not parse: a body cut short ---

    _PAIR = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"(\s*:\s*)"((?:[^"\\]|\\.)*)("|\Z)')
    _TYPED = re.compile(r'("type"\s*:\s*"([^"\\]*)"\s*,\s*"value"\s*:\s*")((?:[^"\\]|\\.)*)("|\Z)')

    def text(self, raw: str) -> str:
        def typed(match: re.Match[str]) -> str:
            kind = _type_kind(match.group(2), True) if self.personal_data else None
            if kind is None:
                return match.group(0)
            new = self.replace(match.group(3), lambda v: self.placeholder(kind, v))
            return f"{match.group(1)}{new}{match.group(4)}"

        def pair(match: re.Match[str]) -> str:
            key, sep, value, end = match.groups()
            norm = _norm(key)
            if norm in _SECRET_KEYS or (self.token_request and norm == "key"):
                new = self.secret(value)
            elif self.personal_data and (kind := _key_kind(key, value)) is not None:
                new = self.replace(value, lambda v: self.placeholder(kind, v))
            else:
                return match.group(0)
            return f'"{key}"{sep}"{new}{end}'

        return self._PAIR.sub(pair, self._TYPED.sub(typed, raw))


def _scrub_query(uri: str, asked: set[str] | None = None) -> str:
    """``uri`` with placeholders for its personal values, which are added to ``asked``: an answer
    may repeat the value it was asked for (a lookup's "no customer with ..."), and is rid of it."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = dict(query)
    scrubber = _Scrubber(token_request=False, personal_data=True)
    new_query = []
    personal = personal_parameters()  # each endpoint's spec names its own (capframe._endpoints)
    for name, value in query:
        if name in personal:
            if asked is not None and len(value) >= _SHORTEST_SECRET:
                asked.add(value)
            kind = _type_kind(names.get(personal[name], ""), True) or "id"
            value = scrubber.replace(value, partial(scrubber.placeholder, kind))
        new_query.append((name, value))
    if not scrubber.changed:
        return uri
    return urlunsplit(parts._replace(query=urlencode(new_query)))
