"""The ``sync`` export of the ``connector`` world, as a class to subclass.

In ``src/app.py``::

    from tributary_plugin import Connector, Page, upsert

    class Sync(Connector):
        def next_page(self, request, token):
            ...
            return Page(items=[...], checkpoint={"since": newest}, next=None)

The host instantiates ``app.Sync`` and calls ``next_page`` once per page. ``Connector`` turns
the host's JSON text into Python values (``request.cursor``, ``token``) and back
(``checkpoint``, ``next``, each item's ``data`` and ``raw``), checks the items, and hands any
``PluginError`` to the host as its WIT case (any other exception as ``other``, saying what was
raised where).
"""

import json as _json
from dataclasses import dataclass
from typing import Any

from wit_world.exports import sync as _sync

from .errors import PluginError, raise_as_wit
from .items import ENTITY_TYPES, Item, Page
from .runtime import seal_imports

_MODES = {
    _sync.SyncMode.FULL: "full",
    _sync.SyncMode.INCREMENTAL: "incremental",
    _sync.SyncMode.BACKFILL: "backfill",
}
_OPERATIONS = {"upsert": _sync.ItemOperation.UPSERT, "delete": _sync.ItemOperation.DELETE}


@dataclass
class SyncRequest:
    """How the host asked for this sync."""

    #: ``full`` (list everything; the cursor still says what was known), ``incremental``
    #: (continue from the cursor) or ``backfill`` (everything modified since ``since``).
    mode: str
    #: For a backfill: how far back, RFC 3339; else None.
    since: "str | None"
    #: The last checkpoint stored for the instance (parsed JSON), or None on a first sync.
    cursor: Any


def _parse(text: "str | None", what: str):
    if text is None:
        return None
    try:
        return _json.loads(text)
    except ValueError as error:
        raise PluginError(f"unreadable {what} {text!r}: {error}") from None


def _dump(value, what: str) -> str:
    try:
        return _json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PluginError(f"{what} is not JSON: {error}") from None


def _wit_item(item: Item, index: int):
    if not isinstance(item, Item):
        raise PluginError(f"item {index} of the page is a {type(item).__name__}, not an Item (use upsert() or remove())")
    name = f"item {index} ({item.entity_type} `{item.external_id}`)"
    if item.entity_type not in ENTITY_TYPES:
        raise PluginError(f"{name}: the entity type must be one of {', '.join(ENTITY_TYPES)}")
    if not isinstance(item.external_id, str) or item.external_id == "":
        raise PluginError(f"{name}: the external id must be a non-empty string")
    if not isinstance(item.source_modified_at, str) or item.source_modified_at == "":
        raise PluginError(f"{name}: source_modified_at must be an RFC 3339 time")
    if item.operation not in _OPERATIONS:
        raise PluginError(f"{name}: the operation must be upsert or delete, found {item.operation!r}")
    if not isinstance(item.data, dict):
        raise PluginError(f"{name}: data must be a dict of the entity's fields")
    return _sync.Item(
        entity_type=item.entity_type,
        external_id=item.external_id,
        operation=_OPERATIONS[item.operation],
        source_modified_at=item.source_modified_at,
        data=_dump(item.data, f"{name}'s data"),
        raw=_dump(item.raw, f"{name}'s raw payload"),
    )


def _wit_page(page) -> "_sync.Page":
    if not isinstance(page, Page):
        raise PluginError(f"next_page answered a {type(page).__name__}, not a Page")
    return _sync.Page(
        items=[_wit_item(item, i) for i, item in enumerate(page.items)],
        checkpoint=None if page.checkpoint is None else _dump(page.checkpoint, "the checkpoint"),
        next=None if page.next is None else _dump(page.next, "the next page's token"),
    )


def _export(next_page):
    def wit_next_page(self, request, token):
        seal_imports()
        try:
            parsed = SyncRequest(_MODES[request.mode], request.since, _parse(request.cursor, "cursor"))
            return _wit_page(next_page(self, parsed, _parse(token, "page token")))
        except BaseException as error:  # every failure goes to the host as a plugin-error
            raise_as_wit(error)

    wit_next_page.__doc__ = next_page.__doc__
    wit_next_page._tributary_export = True
    return wit_next_page


class Connector:
    """Subclass it as ``Sync`` in ``app.py`` and define ``next_page(self, request, token)``.

    ``request`` is a ``SyncRequest``; ``token`` is None on the first call of a sync and then
    the ``next`` of the page before (as the Python value it was). Answer a ``Page``. Ask the
    host's ``cancelled()`` in a long loop.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        method = cls.next_page
        if not getattr(method, "_tributary_export", False):
            cls.next_page = _export(method)

    def next_page(self, request: SyncRequest, token) -> Page:
        """The next page of the sync ``request``; ``token`` is None on the first call."""
        raise PluginError(f"{type(self).__name__} does not define next_page(self, request, token)")
