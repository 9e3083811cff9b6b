"""Following a cursor chain, and retrying work that may pass."""

from . import host
from .errors import HttpError, PluginError, TransientError


def paginate(first, fetch):
    """Yields the pages of a cursor chain: ``fetch(cursor)`` answers ``(page, next_cursor)``;
    the first call gets ``first``, each later one the cursor before it; a ``next_cursor`` of
    None ends the chain.

    For walking a short chain inside one call (the repositories of an account, say). A
    connector's own pages go through ``next_page``'s ``next`` token instead, so that the host
    publishes and checkpoints each before asking for the next. Stops with ``TransientError``
    when the host cancels the call, and with ``PluginError`` when a cursor repeats the one
    before it (a chain that would never end).
    """
    cursor = first
    while True:
        if host.cancelled():
            raise TransientError("the call was cancelled")
        page, following = fetch(cursor)
        yield page
        if following is None:
            return
        if following == cursor:
            raise PluginError(f"the cursor chain does not move on: {following!r} came back")
        cursor = following


def is_retryable(error: BaseException) -> bool:
    """Whether ``with_retry`` tries again after ``error`` by default: a ``TransientError``, or an
    ``HttpError`` with status 429 or 5xx."""
    if isinstance(error, TransientError):
        return True
    return isinstance(error, HttpError) and (error.status == 429 or error.status >= 500)


def with_retry(work, *, attempts: int = 3, base_ms: int = 500, max_wait_ms: int = 2000, retry_if=is_retryable):
    """Runs ``work()`` up to ``attempts`` times while it raises an error ``retry_if`` accepts
    (by default transient errors and 429/5xx ``HttpError``), and answers what it returns.

    Between attempts it waits what the error asked for (``HttpError.retry_after_ms``, from
    ``Retry-After`` in seconds or as an HTTP date) or else ``base_ms`` doubled each time (at most
    ``max_wait_ms``). A wait asked for over ``max_wait_ms`` is not made: the error is raised at once, so a sync fails (and the
    next resumes from its checkpoint) rather than asking a server again before it said to.

    The host already retries 429 and 5xx answers inside ``http-fetch`` honouring
    ``Retry-After``: this helper is for guest-level work, such as a service that signals its
    rate limit with another status (GitHub's 403), or several requests that must succeed
    together. A wait watches the host's clock (``sleep_ms``), so it counts against the call's
    CPU limit (``limits.callCpuMs``, 5 s by default).
    """
    if attempts < 1:
        raise PluginError(f"with_retry: attempts must be at least 1, found {attempts}")
    attempt = 1
    while True:
        try:
            return work()
        except PluginError as error:
            if attempt >= attempts or not retry_if(error):
                raise
            asked = getattr(error, "retry_after_ms", None)
            if asked is not None and asked > max_wait_ms:
                raise
            wait = asked if asked is not None else min(max_wait_ms, base_ms * (2 ** (attempt - 1)))
            host.log.warn(f"Retrying after {wait} ms (attempt {attempt} of {attempts}): {error.message}")
            host.sleep_ms(wait)
            attempt += 1
