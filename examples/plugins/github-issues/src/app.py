"""GitHub issues: a repository's issues, pull requests and their comments, incrementally.

A sync reads two lists, each oldest change first and paged by GitHub's ``Link`` header:

1. ``GET /repos/{owner}/{repo}/issues?state=all&sort=updated&direction=asc&per_page=100[&since=…]``
   (issues and pull requests), each one a document and a conversation, its author a person;
2. ``GET /repos/{owner}/{repo}/issues/comments?sort=updated&direction=asc&per_page=100[&since=…]``,
   each comment a message in its issue's conversation, its author a person.

The checkpoint after each page, ``{"v": 1, "issues": t, "comments": t}``, holds the newest
``updated_at`` handed over of each list; an incremental sync passes them as ``since``. A full
sync reads everything; a backfill reads what changed since its ``since`` and keeps the stored
checkpoint. See README.md.
"""

import re

from github import get_page, list_url
from mapping import comment_item, issue_items, issue_number_of, person_item
from tributary_plugin import (
    ConfigError,
    Connector,
    Page,
    PluginError,
    config,
    config_int,
    config_url,
    log,
    parse_time_ms,
)

#: GitHub's own API; GitHub Enterprise Server's is ``https://<host>/api/v3``.
DEFAULT_BASE_URL = "https://api.github.com"
#: The checkpoint's shape version.
CURSOR_VERSION = 1
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def settings() -> dict:
    """The instance's configuration, checked; a bad field is a ``ConfigError`` naming it."""
    raw = config()
    repository = raw.get("repository")
    if not repository:
        raise ConfigError("repository", "is required (owner/name, such as octocat/Hello-World)")
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        raise ConfigError("repository", f"must be owner/name, such as octocat/Hello-World, found {repository!r}")
    return {
        "repository": repository,
        "base_url": config_url(raw, "baseUrl", DEFAULT_BASE_URL),
        "max_wait_ms": config_int(raw, "maxRateLimitWaitSeconds", 10, 0, 45) * 1000,
    }


def stored_marks(cursor) -> "tuple[str | None, str | None]":
    """The issues' and comments' marks of the stored checkpoint (None without one)."""
    if cursor is None:
        return None, None
    if not isinstance(cursor, dict) or cursor.get("v") != CURSOR_VERSION:
        raise PluginError(f"unreadable checkpoint {cursor!r}: expected {{\"v\": 1, …}}; a full sync rebuilds it")
    return cursor.get("issues"), cursor.get("comments")


def later(a: "str | None", b: "str | None") -> "str | None":
    """The later of two RFC 3339 times, either of which may be None."""
    if a is None or b is None:
        return b if a is None else a
    return b if parse_time_ms(b) > parse_time_ms(a) else a


def first_token(sync_request, s: dict) -> dict:
    """Where a sync starts: the issues' first page, and the marks it starts from."""
    issues, comments = stored_marks(sync_request.cursor) if sync_request.mode != "full" else (None, None)
    since = {"incremental": (issues, comments), "full": (None, None),
             "backfill": (sync_request.since, sync_request.since)}[sync_request.mode]
    log.info(f"Syncing {s['repository']} from {s['base_url']} ({sync_request.mode})")
    return {
        "list": "issues",
        "url": list_url(s["base_url"], s["repository"], "issues", since[0]),
        "comments_since": since[1],
        "issues": issues,
        "comments": comments,
        "moves": sync_request.mode != "backfill",
    }


class Sync(Connector):
    """The ``sync`` export: one page of issues or comments per call."""

    def next_page(self, sync_request, token):
        """One page; ``token`` is None first, then where to read next and the marks so far."""
        s = settings()
        token = token or first_token(sync_request, s)
        entries, following = get_page(token["url"], s["max_wait_ms"])

        items, people, newest = [], set(), None
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("updated_at"), str) or "id" not in entry:
                raise PluginError(f"GitHub answered an entry without `id` and `updated_at`: {entry!r:.200}")
            if token["list"] == "issues":
                mapped = issue_items(entry, s["repository"])
            else:
                number = issue_number_of(entry)
                if number is None:
                    log.warn(f"Skipped comment {entry['id']}: its issue_url names no issue")
                    continue
                mapped = [comment_item(entry, s["repository"], number)]
            person = person_item(entry.get("user"), entry["updated_at"])
            if person is not None and person.external_id not in people:
                people.add(person.external_id)
                items.append(person)
            items.extend(mapped)
            newest = later(newest, entry["updated_at"])

        if token["moves"]:
            # The mark of the list being read ("issues" or "comments") moves to its newest change.
            token = {**token, token["list"]: later(token[token["list"]], newest)}
        checkpoint = {"v": CURSOR_VERSION, "issues": token["issues"], "comments": token["comments"]}
        if following is not None:
            following_token = {**token, "url": following}
        elif token["list"] == "issues":
            url = list_url(s["base_url"], s["repository"], "issues/comments", token["comments_since"])
            following_token = {**token, "list": "comments", "url": url}
        else:
            following_token = None
        return Page(items=items, checkpoint=checkpoint, next=following_token)
