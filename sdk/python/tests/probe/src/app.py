"""A connector that exercises the SDK through the real host, one behaviour per case.

Config ``behaviour`` picks what ``next_page`` does; each ``test/<behaviour>.json`` says what
must come out. Not a plugin to install: it checks that the SDK keeps its promises.
"""

from datetime import datetime

from tributary_plugin import (
    Connector,
    HttpError,
    Page,
    PermissionDenied,
    config,
    kv_get,
    kv_set,
    log,
    paginate,
    request,
    require_config,
    upsert,
    utc_now,
    with_retry,
)


def note(external_id: str, **extra):
    """A document item named ``external_id`` carrying ``extra``."""
    return upsert("documents", external_id, "2026-01-01T00:00:00Z", {"title": external_id, "extra": extra})


def denied(base_url: str):
    """A request the grants do not cover, caught and raised again: it must stay ``denied``."""
    try:
        request("GET", "http://ungranted.example/notes")
    except PermissionDenied as error:
        log.warn(f"refused as expected: {error.message}")
        raise


def bug(base_url: str):
    """A plain bug: it must reach the host as ``other``, saying what and where."""
    settings = {}
    return settings["missing"]


def config_error(base_url: str):
    """``require_config`` naming the key."""
    require_config(config(), "needed")


def retry_http_date(base_url: str):
    """``with_retry`` honouring ``Retry-After`` given as an HTTP date (one long past: no wait)."""
    def fetch():
        return request("GET", f"{base_url}/flaky").ensure_ok().json()

    body = with_retry(fetch, attempts=3, retry_if=lambda e: isinstance(e, HttpError) and e.status == 425)
    return [note("after-retry", body=body)]


def retry_too_long(base_url: str):
    """A ``Retry-After`` longer than ``max_wait_ms`` is not waited for: the error comes at once."""
    return with_retry(
        lambda: request("GET", f"{base_url}/slow").ensure_ok().json(),
        max_wait_ms=1000,
        retry_if=lambda e: isinstance(e, HttpError) and e.status == 425,
    )


def pages(base_url: str):
    """``paginate`` over a ``Link`` chain: every page's items, in order."""
    def fetch(url):
        response = request("GET", url).ensure_ok()
        return response.json()["ids"], response.links().get("next")

    return [note(i) for page in paginate(f"{base_url}/chain?page=1", fetch) for i in page]


def lazy_import(base_url: str):
    """A module first imported while a call runs: refused with ``ImportError`` naming it (not a trap)."""
    import colorsys  # noqa: imported on purpose inside the call

    return [note("lazy", hls=list(colorsys.rgb_to_hls(1.0, 0.0, 0.0)))]


def import_fallback(base_url: str):
    """Code that falls back on ``ImportError`` works in a call."""
    try:
        import colorsys  # noqa: imported on purpose inside the call

        found = True
    except ImportError:
        found = False
    return [note("fallback", found=found)]


def context(base_url: str):
    """What the host hands the guest: no secret in ``config()``, a working store and clock, and
    the standard library's lazily imported helpers (``strptime``, codecs) the SDK imports early."""
    kv_set("seen", b"yes")
    parsed = datetime.strptime("2026-01-31 09:30", "%Y-%m-%d %H:%M").isoformat()
    return [note(
        "context",
        config_keys=sorted(config()),
        kv=kv_get("seen").decode(),
        now=utc_now()[:2],
        parsed=parsed,
        cp1252=b"caf\xe9 \x80".decode("cp1252"),
    )]


BEHAVIOURS = {
    "denied": denied,
    "bug": bug,
    "config-error": config_error,
    "retry-http-date": retry_http_date,
    "retry-too-long": retry_too_long,
    "pages": pages,
    "lazy-import": lazy_import,
    "import-fallback": import_fallback,
    "context": context,
}


class Sync(Connector):
    """Runs the configured behaviour once: one page, no checkpoint."""

    def next_page(self, sync_request, token):
        """The page the behaviour makes."""
        settings = config()
        items = BEHAVIOURS[settings["behaviour"]](settings.get("baseUrl", "").rstrip("/"))
        return Page(items=items or [], checkpoint={"done": True})
