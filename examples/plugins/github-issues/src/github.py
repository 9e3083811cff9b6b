"""GitHub's REST API as this connector reads it: the URLs, paging by ``Link`` and rate limits.

Rate limits are handled as GitHub's REST documentation says ("Rate limits for the REST API"):
a 403 or 429 answer is a rate limit when it has ``retry-after`` (wait that many seconds),
``x-ratelimit-remaining: 0`` (wait until ``x-ratelimit-reset``, UTC epoch seconds), or a
message saying so (a secondary limit without headers: wait at least a minute). A wait of at
most ``maxRateLimitWaitSeconds`` is made and the request asked again (up to three times); a
longer one fails the sync at once as transient, saying when the limit resets, and the next
scheduled sync resumes from the last checkpoint. Any other 403 (a token without access) is an
HTTP error. The host itself already retries 429 and 5xx honouring ``Retry-After``.
"""

from urllib.parse import quote, urlencode

from tributary_plugin import (
    HttpError,
    TransientError,
    bearer,
    format_time_ms,
    now_ms,
    request,
    with_retry,
)

#: The REST API version asked for.
API_VERSION = "2022-11-28"
#: The most items GitHub gives in one page.
PER_PAGE = 100
#: How often a rate-limited request is asked, in all.
ATTEMPTS = 3
#: The wait for a secondary rate limit that names none: "at least one minute".
SECONDARY_LIMIT_WAIT_MS = 60_000


class RateLimited(TransientError):
    """GitHub answered that a rate limit is exhausted; ``retry_after_ms`` is the wait it asks for."""

    def __init__(self, message: str, retry_after_ms: int):
        super().__init__(message)
        #: How long to wait before asking again, in milliseconds.
        self.retry_after_ms = retry_after_ms


def list_url(base_url: str, repository: str, what: str, since: "str | None") -> str:
    """The first page of ``issues`` or ``issues/comments`` of ``repository``, oldest change first,
    only those updated since ``since`` when given."""
    params = [("sort", "updated"), ("direction", "asc"), ("per_page", str(PER_PAGE))]
    if what == "issues":
        params.insert(0, ("state", "all"))
    if since is not None:
        params.append(("since", since))
    owner, name = repository.split("/", 1)
    return f"{base_url}/repos/{quote(owner)}/{quote(name)}/{what}?{urlencode(params)}"


def rate_limit_wait_ms(response, now: int) -> "int | None":
    """The wait a 403 or 429 ``response`` asks for when it is a rate limit, else None."""
    if response.status not in (403, 429):
        return None
    retry_after = response.retry_after_ms()
    if retry_after is not None:
        return retry_after
    if response.header("x-ratelimit-remaining") == "0":
        reset = response.header("x-ratelimit-reset") or ""
        if reset.isdigit():
            return max(0, int(reset) * 1000 - now)
        return SECONDARY_LIMIT_WAIT_MS
    if response.status == 429 or "rate limit" in response.text().lower():
        return SECONDARY_LIMIT_WAIT_MS
    return None


def get_page(url: str, max_wait_ms: int) -> "tuple[list, str | None]":
    """The JSON list at ``url`` and the URL of the page after it (``Link: rel="next"``), asking
    again after a rate limit whose wait is at most ``max_wait_ms``."""

    def attempt():
        response = request(
            "GET",
            url,
            headers={"accept": "application/vnd.github+json", "x-github-api-version": API_VERSION},
            auth=bearer("token"),
        )
        wait = rate_limit_wait_ms(response, now_ms())
        if wait is not None:
            resumes = format_time_ms(now_ms() + wait)
            raise RateLimited(
                f"GitHub's rate limit is exhausted (GET {url.split('?', 1)[0]} answered {response.status}); "
                f"it asks to wait until {resumes}, and the next sync resumes from the last checkpoint",
                wait,
            )
        body = response.ensure_ok().json()
        if not isinstance(body, list):
            raise HttpError(response.status, f"GET {url.split('?', 1)[0]} answered JSON that is not a list")
        return body, response.links().get("next")

    return with_retry(
        attempt,
        attempts=ATTEMPTS,
        max_wait_ms=max_wait_ms,
        retry_if=lambda error: isinstance(error, RateLimited),
    )
