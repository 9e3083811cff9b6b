"""A connector: the notes of a JSON API as documents, incremental by update time.

The API (replace it with yours):

    GET {baseUrl}/notes                       the first page, every note
    GET {baseUrl}/notes?since=<RFC 3339>      the first page, notes updated at or after then
    GET {baseUrl}/notes?cursor=<next>         the page after (the cursor carries the query)
    Authorization: Bearer <apiToken>          attached by the host

answers ``{"notes": [{"id", "title", "body", "updated_at"}], "next": "<cursor>" | null}``,
oldest change first. Each note becomes a document. After each page the checkpoint is the
newest ``updated_at`` handed over, so the next incremental sync asks only for notes updated
since then; a full sync reads everything; a backfill reads from its ``since`` and keeps the
stored checkpoint.
"""

from urllib.parse import urlencode

from tributary_plugin import (
    Connector,
    Page,
    PluginError,
    bearer,
    config,
    config_url,
    log,
    parse_time_ms,
    request,
    upsert,
)
from tributary_plugin.model import DocumentFields

#: Used when the instance's config names no ``baseUrl``.
DEFAULT_BASE_URL = "https://api.example.com"


def note_document(note: dict):
    """The document item of one note of the API."""
    if not isinstance(note, dict) or not isinstance(note.get("id"), str) or not isinstance(note.get("updated_at"), str):
        raise PluginError(f"a note without a string `id` and `updated_at`: {note!r}")
    data: DocumentFields = {
        "title": note.get("title") or note["id"],
        "content": note.get("body") or "",
        "mime_type": "text/plain",
        "path": f"notes/{note['id']}",
        "modified_at": note["updated_at"],
    }
    return upsert("documents", note["id"], note["updated_at"], data, raw=note)


def later(a: "str | None", b: str) -> str:
    """The later of two RFC 3339 times (``a`` may be None)."""
    return b if a is None or parse_time_ms(b) > parse_time_ms(a) else a


class Sync(Connector):
    """The ``sync`` export: one page of notes per call."""

    def next_page(self, sync_request, token):
        """One page of notes. ``token`` is None on the first call of a sync, then the
        ``{"cursor", "newest", "moves"}`` this method put in the page before's ``next``."""
        base_url = config_url(config(), "baseUrl", DEFAULT_BASE_URL)
        stored = sync_request.cursor.get("since") if isinstance(sync_request.cursor, dict) else None
        if token is None:
            since = {"incremental": stored, "full": None, "backfill": sync_request.since}[sync_request.mode]
            query = urlencode({"since": since}) if since else ""
            token = {"cursor": None, "newest": stored if sync_request.mode != "full" else None,
                     "moves": sync_request.mode != "backfill"}
            log.info(f"Reading notes from {base_url}" + (f" updated since {since}" if since else ""))
        else:
            query = urlencode({"cursor": token["cursor"]})

        url = f"{base_url}/notes" + (f"?{query}" if query else "")
        body = request("GET", url, auth=bearer("apiToken")).ensure_ok().json()
        notes = body.get("notes") if isinstance(body, dict) else None
        if not isinstance(notes, list):
            raise PluginError(f"GET /notes answered JSON without a `notes` list: {body!r:.200}")

        items = [note_document(note) for note in notes]
        newest = token["newest"]
        if token["moves"]:
            for item in items:
                newest = later(newest, item.source_modified_at)
        following = body.get("next")
        return Page(
            items=items,
            checkpoint=None if newest is None else {"since": newest},
            next=None if following is None else {**token, "cursor": following, "newest": newest},
        )
