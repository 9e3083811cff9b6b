"""Tributary's Python guest SDK: write a connector or a channel as a WebAssembly component.

A plugin's ``src/app.py`` defines ``class Sync(Connector)`` (a connector) or
``class Messaging(Channel)`` (a channel); ``sdk/python/build.py`` (run by
``tributary plugins build``) turns it into a component with componentize-py.

What is here:

- errors the host understands: ``PluginError`` and its cases ``PermissionDenied``,
  ``LimitExceeded``, ``ConfigError``, ``HttpError``, ``TransientError``; ``config_error``;
- the instance's context: ``config()``, ``secret(field)``, ``log``, ``require_config``,
  ``config_string``, ``config_url``, ``config_int``, ``now_ms``, ``utc_now``, ``parse_time_ms``,
  ``format_time_ms``, ``cancelled``, ``sleep_ms``, ``random_bytes``, ``kv_get`` /
  ``kv_set`` / ``kv_delete``, ``emit_event``, ``data_get``;
- HTTP: ``request`` and ``request_json`` (``query`` parameters encoded) with ``bearer`` /
  ``basic`` / ``header`` secrets the host attaches, ``Response`` (``ensure_ok``, ``json``, ``links``), ``parse_link_header``,
  ``parse_retry_after_ms``, ``describe_request``, ``with_query``;
- ``paginate`` and ``with_retry``;
- connectors: ``Connector``, ``SyncRequest``, ``Page``, ``Item``, ``upsert``, ``remove``;
- channels: ``Channel``, ``Webhook``, ``WebhookRejected``, ``accept``, ``respond``,
  ``participant``, ``message_event``, ``delivery_status_event``, ``sent_message``;
- the unified model's field types in ``tributary_plugin.model`` (``DocumentFields``,
  ``PersonFields``, ``MessageFields``, …).

The connector and channel parts load on first use (``from tributary_plugin import Connector``),
as each needs its own world's bindings.
"""

import importlib

from .errors import (
    ConfigError,
    HttpError,
    LimitExceeded,
    PermissionDenied,
    PluginError,
    TransientError,
    config_error,
)
from .host import (
    cancelled,
    config,
    config_int,
    config_string,
    config_url,
    data_get,
    emit_event,
    format_time_ms,
    instance_id,
    kv_delete,
    kv_get,
    kv_set,
    log,
    now_ms,
    parse_time_ms,
    plugin_id,
    random_bytes,
    require_config,
    secret,
    sleep_ms,
    utc_now,
)
from .http import (
    Response,
    basic,
    bearer,
    describe_request,
    header,
    parse_link_header,
    parse_retry_after_ms,
    request,
    request_json,
    with_query,
)
from .items import ENTITY_TYPES, Item, Page, remove, upsert
from .paging import is_retryable, paginate, with_retry

_LAZY = {
    "Connector": "connector",
    "SyncRequest": "connector",
    "Channel": "channel",
    "Webhook": "channel",
    "WebhookRejected": "channel",
    "accept": "channel",
    "respond": "channel",
    "participant": "channel",
    "message_event": "channel",
    "delivery_status_event": "channel",
    "sent_message": "channel",
}


def __getattr__(name):
    """Loads the connector or channel part on first use of one of its names."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tributary_plugin' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
