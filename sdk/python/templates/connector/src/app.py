"""The connector: the notes of a JSON notes API as documents.

The API (change this to yours):

    GET <baseUrl>/notes[?updated_since=<RFC 3339>][&cursor=<next_cursor>]
    Authorization: Bearer <apiToken>
    → {"notes": [{"id", "title", "body"?, "tags"?, "updated_at", "deleted"?}], "next_cursor": "…" | null}

Notes come oldest change first; ``updated_since`` is inclusive; a note with ``"deleted": true``
was deleted.

The host calls ``next_page`` once per page and publishes its items before asking for the next:
the first call reads the first page (``token`` None), each later one the page the token names.
Each page's checkpoint, ``{"since"}``, is the newest ``updated_at`` handed over so far; the host
stores it, and the next incremental sync reads only the notes updated since.
"""

from tributary_plugin import (
    Connector,
    Page,
    PluginError,
    bearer,
    config,
    config_url,
    log,
    parse_time_ms,
    remove,
    request_json,
    upsert,
)
from tributary_plugin.model import DocumentFields


def later(a: "str | None", b: "str | None") -> "str | None":
    """The later of two RFC 3339 times (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if parse_time_ms(b) > parse_time_ms(a) else a


def is_time(value) -> bool:
    """Whether ``value`` is an RFC 3339 time."""
    try:
        parse_time_ms(value)
        return True
    except (TypeError, ValueError):
        return False


def item_of(note: dict, where: str):
    """The item of ``note``: a document, or a tombstone when the note was deleted."""
    if not isinstance(note, dict) or not isinstance(note.get("id"), str) or not isinstance(note.get("title"), str) \
            or not is_time(note.get("updated_at")):
        raise PluginError(f'{where} is not a note: it needs an "id", a "title" and an RFC 3339 "updated_at"')
    if note.get("deleted") is True:
        return remove("documents", note["id"], note["updated_at"], note)
    data: DocumentFields = {
        "title": note["title"],
        "content": note.get("body") or "",
        "path": f"notes/{note['id']}",
        "mime_type": "text/markdown",
        "modified_at": note["updated_at"],
        "extra": {"tags": note.get("tags") or []},
    }
    return upsert("documents", note["id"], note["updated_at"], data, note)


class Sync(Connector):
    """The ``sync`` export of the ``connector`` world."""

    def next_page(self, sync_request, token):
        """One page of notes; ``token`` is None first, then ``{"cursor", "since", "newest"}``."""
        base_url = config_url(config(), "baseUrl")
        stored = sync_request.cursor.get("since") if isinstance(sync_request.cursor, dict) else None
        # A full sync reads every note; an incremental one the notes updated since the
        # checkpoint; a backfill those updated since the time it was asked for.
        since = {"full": None, "incremental": stored, "backfill": sync_request.since}[sync_request.mode]
        if token is not None:
            since = token["since"]
        else:
            log.info(f"Syncing notes from {base_url} ({sync_request.mode})" + (f" updated since {since}" if since else "") + ".")

        answer = request_json(
            "GET",
            f"{base_url}/notes",
            query={"updated_since": since, "cursor": token["cursor"] if token else None},
            auth=bearer("apiToken"),
        )
        notes = answer.get("notes") if isinstance(answer, dict) else None
        if not isinstance(notes, list):
            raise PluginError(f'GET {base_url}/notes answered JSON without a "notes" list')

        newest = token["newest"] if token else (None if sync_request.mode == "full" else stored)
        items = []
        for i, note in enumerate(notes):
            items.append(item_of(note, f"note {i} of the page"))
            newest = later(newest, note["updated_at"])
        # A backfill that starts after the stored checkpoint has not read what lies between: it
        # leaves the checkpoint where it was (the next incremental sync reads from there).
        gap = (sync_request.mode == "backfill" and stored is not None and since is not None
               and parse_time_ms(since) > parse_time_ms(stored))
        checkpoint = sync_request.cursor if gap else (None if newest is None else {"since": newest})
        following = answer.get("next_cursor")
        next_token = {"cursor": following, "since": since, "newest": newest} if following else None
        return Page(items=items, checkpoint=checkpoint, next=next_token)
