"""HTTP through the host's ``http-fetch``: the grants checked, secrets attached by the host.

``request`` sends through the instance's client: the URL's host must be granted by a
``network:outbound`` permission (redirects are checked again), the instance's rate limit
applies, and 429 and 5xx answers are retried by the host honouring ``Retry-After`` (up to
60 s). A secret config field is attached by the host with ``auth=bearer("apiToken")``,
``basic("user", "passwordField")`` or ``header("x-api-key", "apiKey")``: the plugin never
holds the secret.
"""

import json as _json
import re
from datetime import datetime, timezone
from urllib.parse import quote_plus, urlsplit

from wit_world.imports import host as _host
from wit_world.imports import types as _wit

from .errors import HttpError, PluginError, TransientError, call_host


def bearer(field: str):
    """``Authorization: Bearer <the secret field ``field``>``, attached by the host."""
    return _host.SecretAuth_Bearer(field)


def basic(user: str, password_field: str):
    """``Authorization: Basic`` of ``user`` and the secret field ``password_field``, attached by the host."""
    return _host.SecretAuth_Basic(_host.BasicAuth(user=user, password_field=password_field))


def header(name: str, field: str):
    """The header ``name`` carrying the secret field ``field``'s value, attached by the host."""
    return _host.SecretAuth_Header(_host.SecretHeader(name=name, field=field))


_NO_JSON = object()


def describe_request(method: str, url: str) -> str:
    """``GET api.example.com/notes``: method, host and path, without the query (it may hold a key)."""
    parts = urlsplit(url)
    return f"{method.upper()} {parts.netloc}{parts.path or '/'}"


class Response:
    """An answer of any status: ``status``, ``headers`` (names lower-case, in order), the body."""

    def __init__(self, method: str, url: str, status: int, headers: "list[tuple[str, str]]", body: bytes):
        #: The request's method.
        self.method = method
        #: The request's URL.
        self.url = url
        #: The HTTP status.
        self.status = status
        #: The headers as (lower-case name, value) pairs, in the order received.
        self.headers = headers
        #: The body as received.
        self.body = body

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> "str | None":
        """The first value of the header ``name`` (any case), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; ``PluginError`` naming the request when it is not JSON."""
        try:
            return _json.loads(self.body.decode("utf-8"))
        except ValueError as error:
            raise PluginError(
                f"{describe_request(self.method, self.url)} answered something that is not JSON: {error}"
            ) from None

    def links(self) -> "dict[str, str]":
        """The ``Link`` header's URLs by relation: ``{"next": "https://…?page=2", "last": …}``."""
        return parse_link_header(self.header("link") or "")

    def retry_after_ms(self) -> "int | None":
        """The wait ``Retry-After`` asks for, in milliseconds (seconds or an HTTP date), or None."""
        value = self.header("retry-after")
        return None if value is None else parse_retry_after_ms(value, _host.now_ms())

    def ensure_ok(self) -> "Response":
        """This response if its status is 2xx; otherwise ``HttpError`` with the status, naming
        method, host and path and starting the body (and carrying ``Retry-After``)."""
        if self.ok:
            return self
        snippet = self.text()[:200]
        raise HttpError(
            self.status,
            f"{describe_request(self.method, self.url)} answered {self.status}: {snippet}",
            self.retry_after_ms(),
        )


def _form_encoded(value: str) -> str:
    """``value`` encoded as a query's name or value is in HTML forms (what JavaScript's
    ``URLSearchParams`` writes, so both SDKs send the same URL): space as ``+``, every byte
    but letters, digits and ``*-._`` as ``%XX``."""
    return quote_plus(value, safe="*").replace("~", "%7E")


def with_query(url: str, query: "dict | None") -> str:
    """``url`` with the parameters of ``query`` added in order (a None value leaves its
    parameter out; True and False are written ``true`` and ``false``)."""
    if not query:
        return url
    pairs = []
    for name, value in query.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        pairs.append(f"{_form_encoded(str(name))}={_form_encoded(text)}")
    if not pairs:
        return url
    base, hash_mark, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{'&'.join(pairs)}"
    return f"{joined}#{fragment}" if hash_mark else joined


def request(
    method: str,
    url: str,
    *,
    query: "dict | None" = None,
    headers: "dict[str, str] | list[tuple[str, str]] | None" = None,
    body: "bytes | str | None" = None,
    json=_NO_JSON,
    auth=None,
    timeout_ms: "int | None" = None,
) -> Response:
    """Sends an HTTP request through the host and answers its response, whatever its status
    (``.ensure_ok()`` turns an error status into ``HttpError``; ``request_json`` does both).

    ``query`` adds parameters to the URL, encoded, in order (None leaves one out); ``json``
    sends that value as the body with ``content-type: application/json``; ``auth`` is
    ``bearer(field)``, ``basic(user, field)`` or ``header(name, field)``; ``timeout_ms`` bounds
    the whole exchange (the instance's default when None). A refusal raises
    ``PermissionDenied`` naming the permission; no answer at all raises ``TransientError``
    naming the request; a limit reached raises ``LimitExceeded``.
    """
    method = method.upper()
    url = with_query(url, query)
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if json is not _NO_JSON:
        if body is not None:
            raise PluginError("request: give `body` or `json`, not both")
        body = _json.dumps(json).encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in pairs):
            pairs.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    wit_request = _host.HttpRequest(
        method=method,
        url=url,
        headers=[_wit.Header(name=name, value=value) for name, value in pairs],
        body=body,
        auth=auth,
        timeout_ms=timeout_ms,
    )
    try:
        answer = call_host(_host.http_fetch, wit_request)
    except TransientError as error:
        raise TransientError(f"{describe_request(method, url)} got no answer: {error.message}") from None
    headers_received = [(h.name.lower(), h.value) for h in answer.headers]
    return Response(method, url, answer.status, headers_received, bytes(answer.body))


def request_json(method: str, url: str, **options):
    """``request(method, url, **options)`` checked with ``ensure_ok()``, its body parsed as JSON
    (``accept: application/json`` is sent unless ``headers`` name an ``accept``)."""
    headers = options.pop("headers", None)
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(name.lower() == "accept" for name, _ in pairs):
        pairs.append(("accept", "application/json"))
    return request(method, url, headers=pairs, **options).ensure_ok().json()


_LINK = re.compile(r'<([^>]*)>\s*((?:;(?:[^;,"]|"[^"]*")*)*)')
_LINK_PARAM = re.compile(r';\s*([A-Za-z0-9!#$&+.^_`|~-]+)\s*=\s*("([^"]*)"|[^;,\s]*)')


def parse_link_header(value: str) -> "dict[str, str]":
    """The URLs of an RFC 8288 ``Link`` header by relation (a ``rel`` naming several counts for each)."""
    links = {}
    for match in _LINK.finditer(value):
        target, params = match.group(1), match.group(2)
        for param in _LINK_PARAM.finditer(params):
            if param.group(1).lower() == "rel":
                rel = param.group(3) if param.group(3) is not None else param.group(2)
                for name in rel.split():
                    links.setdefault(name.lower(), target)
    return links


_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
_HTTP_DATE = re.compile(r"^\s*(?:[A-Za-z]+,\s*)?(\d{1,2})[ -]([A-Za-z]{3})[ -](\d{2,4})\s+(\d{2}):(\d{2}):(\d{2})\s*(?:GMT|UTC)?\s*$")


def parse_retry_after_ms(value: str, now_ms: int) -> "int | None":
    """The wait ``Retry-After: value`` asks for at ``now_ms``, in milliseconds: delay seconds
    or an HTTP date (a date past is no wait); None when it is neither."""
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    match = _HTTP_DATE.match(value)
    if match is None or match.group(2).title() not in _MONTHS:
        return None
    day, month, year, hour, minute, second = match.groups()
    year = int(year)
    if year < 100:
        year += 2000 if year < 70 else 1900
    try:
        moment = datetime(year, _MONTHS[month.title()], int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    except ValueError:
        return None
    return max(0, round(moment.timestamp() * 1000) - now_ms)
