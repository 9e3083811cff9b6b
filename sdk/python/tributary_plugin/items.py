"""Items of the unified model, as a connector hands them to the host."""

from dataclasses import dataclass, field
from typing import Any

#: The entity types an item may have; each needs ``data:write:<type>`` in the manifest.
ENTITY_TYPES = ("persons", "organizations", "conversations", "messages", "calendar_events", "documents")


@dataclass
class Item:
    """One item: an upsert or a tombstone of one entity.

    ``data`` holds the entity's fields (``DocumentFields``, ``PersonFields``, … from
    ``tributary_plugin.model``); ``raw`` the payload as the source returned it;
    ``source_modified_at`` the source's version, RFC 3339 (a late older version never
    overwrites a newer one).
    """

    #: ``persons``, ``organizations``, ``conversations``, ``messages``, ``calendar_events`` or ``documents``.
    entity_type: str
    #: The source's own id for it.
    external_id: str
    #: The source's version, RFC 3339.
    source_modified_at: str
    #: The entity's fields.
    data: dict = field(default_factory=dict)
    #: The payload as the source returned it (any JSON value).
    raw: Any = None
    #: ``upsert`` or ``delete``.
    operation: str = "upsert"


def upsert(entity_type: str, external_id: str, modified_at: str, data: dict, raw: Any = None) -> Item:
    """An item creating or updating the entity ``external_id`` of ``entity_type`` with ``data``."""
    return Item(entity_type, str(external_id), modified_at, data, raw, "upsert")


def remove(entity_type: str, external_id: str, modified_at: str, raw: Any = None) -> Item:
    """A tombstone: the entity ``external_id`` of ``entity_type`` was deleted at the source."""
    return Item(entity_type, str(external_id), modified_at, {}, raw, "delete")


@dataclass
class Page:
    """What ``next_page`` answers: items, an optional checkpoint, an optional next token.

    ``checkpoint`` (any JSON value; None for none) is stored by the host once every item up to
    here is published, and handed back as ``request.cursor`` on the next sync and after a
    crash. ``next`` (any JSON value) is handed back as ``token`` for the next page; None ends
    the sync.
    """

    #: The items of this page.
    items: "list[Item]" = field(default_factory=list)
    #: The cursor to store once these items are published, or None.
    checkpoint: Any = None
    #: The token of the next page, or None when this is the last.
    next: Any = None
