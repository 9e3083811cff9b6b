"""The ``messaging`` export of the ``channel`` world, as a class to subclass.

In ``src/app.py``::

    from tributary_plugin import Channel, WebhookRejected, accept

    class Messaging(Channel):
        headers_to_keep = ["content-type"]

        def verify_webhook(self, request):      # quick, no network: runs before anything is stored
            if request.header("x-token") is None:
                raise WebhookRejected(401, "the x-token header is missing")
            return accept(request.json()["id"])

        def handle_incoming(self, request):     # a list of event dicts
            return [message_event(...)]

        def send_message(self, message):        # an outbound message dict -> a sent message dict
            ...

``Channel`` turns the host's records and JSON text into Python values and back: a
``Webhook`` in, ``accept``/``respond`` verdicts or ``WebhookRejected`` out of
``verify_webhook``; lists and dicts for events and messages (the shapes of the Rust SDK's
``IncomingEvent``, ``OutboundMessage`` and ``SentMessage``). A ``PluginError`` reaches the
host as its WIT case; any other exception as ``other`` saying what was raised where.
"""

import json as _json
from typing import Any
from urllib.parse import parse_qsl

from componentize_py_types import Err
from wit_world.exports import messaging as _messaging

from .errors import ConfigError, PluginError, describe_exception, raise_as_wit
from .host import log
from .runtime import seal_imports


class Webhook:
    """A request the service received on the instance's webhook route."""

    def __init__(self, method: str, url: str, query: "str | None", headers: "list[tuple[str, str]]", body: bytes, received_at: str):
        #: The HTTP method.
        self.method = method
        #: The URL the provider called, as it saw it.
        self.url = url
        #: The query string without ``?``, or None.
        self.query = query
        #: The headers as (lower-case name, value) pairs, in the order received. In
        #: ``handle_incoming`` only those ``headers_to_keep`` names are there.
        self.headers = headers
        #: The body exactly as received.
        self.body = body
        #: When the service received it, RFC 3339.
        self.received_at = received_at

    def header(self, name: str) -> "str | None":
        """The first value of the header ``name`` (any case), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def query_params(self) -> "dict[str, str]":
        """The query's parameters (the first value of each)."""
        params = {}
        for key, value in parse_qsl(self.query or "", keep_blank_values=True):
            params.setdefault(key, value)
        return params

    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; ``WebhookRejected`` 400 when it is not JSON."""
        try:
            return _json.loads(self.body.decode("utf-8"))
        except ValueError as error:
            raise WebhookRejected(400, f"the body is not JSON: {error}") from None

    @classmethod
    def from_wit(cls, request) -> "Webhook":
        """The ``Webhook`` of the generated binding's ``incoming-webhook``."""
        headers = [(h.name.lower(), h.value) for h in request.headers]
        return cls(request.method, request.url, request.query, headers, bytes(request.body), request.received_at)


class WebhookRejected(Exception):
    """Raised by ``verify_webhook``: the service answers ``status`` with ``reason`` and stores
    nothing. 401 for a signature or token that does not verify, 400 for a request that cannot
    be read, 403 for a handshake with the wrong token, 405 for a method the provider never
    sends. The reason is shown to the caller: name the problem, never a secret."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        #: The HTTP status to answer.
        self.status = status
        #: What is wrong.
        self.reason = reason


def accept(delivery_id: str):
    """The verdict storing the webhook, answering 2xx and handling it later; ``delivery_id`` is
    the provider's id of this delivery, the same across its retries (a second is dropped)."""
    return _messaging.WebhookVerdict_Accept(str(delivery_id))


def respond(status: int, body: "bytes | str" = b"", content_type: str = "text/plain"):
    """The verdict answering ``status`` with ``body`` and storing nothing (a handshake)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return _messaging.WebhookVerdict_Respond(_messaging.WebhookResponse(status=status, content_type=content_type, body=body))


def participant(address: str, display_name: "str | None" = None) -> dict:
    """A sender or recipient in the provider's addressing: ``{"address", "display_name"?}``."""
    value = {"address": address}
    if display_name is not None:
        value["display_name"] = display_name
    return value


def message_event(
    provider_message_id: str,
    sender: dict,
    text: str,
    sent_at: str,
    *,
    conversation_id: "str | None" = None,
    conversation_title: "str | None" = None,
    recipients: "list[dict] | None" = None,
    raw: Any = None,
) -> dict:
    """An incoming message for ``handle_incoming`` to answer (``{"kind": "message", …}``).

    ``provider_message_id`` makes a redelivered webhook idempotent; without a
    ``conversation_id`` the service files the message under a conversation of its sender and
    recipients. ``sender`` and ``recipients`` are ``participant(...)`` dicts.
    """
    event = {
        "kind": "message",
        "provider_message_id": str(provider_message_id),
        "sender": sender,
        "recipients": list(recipients or []),
        "text": text,
        "sent_at": sent_at,
        "raw": raw,
    }
    if conversation_id is not None:
        event["conversation_id"] = str(conversation_id)
    if conversation_title is not None:
        event["conversation_title"] = conversation_title
    return event


def delivery_status_event(provider_message_id: str, status: str, at: str, error: "str | None" = None) -> dict:
    """A new delivery status of a message sent earlier (``{"kind": "delivery_status", …}``)."""
    event = {"kind": "delivery_status", "provider_message_id": str(provider_message_id), "status": status, "at": at}
    if error is not None:
        event["error"] = error
    return event


def sent_message(message_id: str, provider_message_id: str, status: str, sent_at: str, sender: "dict | None" = None) -> dict:
    """What ``send_message`` answers: Tributary's id of the message (the outbound message's
    ``id``), the provider's id for it, its status word (``sent``, ``queued``, …) and when."""
    value = {"id": message_id, "provider_message_id": str(provider_message_id), "status": status, "sent_at": sent_at}
    if sender is not None:
        value["sender"] = sender
    return value


def _rejection(error: BaseException):
    if isinstance(error, WebhookRejected):
        return _messaging.WebhookRejection(status=error.status, reason=error.reason)
    if isinstance(error, ConfigError):
        return _messaging.WebhookRejection(status=500, reason=f"the channel instance is misconfigured (config field `{error.field}`)")
    if isinstance(error, PluginError):
        log.error(f"verify_webhook failed: {error.message}")
        return _messaging.WebhookRejection(status=500, reason="the channel instance is misconfigured")
    # The caller sees the kind of bug and where, not its text (which may quote the request);
    # the instance's log has all of it.
    log.error(f"verify_webhook failed: {describe_exception(error)}")
    where = describe_exception(error).rsplit(" (at ", 1)
    suffix = f" (at {where[1]}" if len(where) == 2 else ""
    return _messaging.WebhookRejection(status=500, reason=f"the channel plugin failed: {type(error).__name__}{suffix}")


def _dump(value, what: str) -> str:
    try:
        return _json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PluginError(f"{what} is not JSON: {error}") from None


def _export_verify(verify):
    def verify_webhook(self, request):
        seal_imports()
        try:
            verdict = verify(self, Webhook.from_wit(request))
            if not isinstance(verdict, (_messaging.WebhookVerdict_Accept, _messaging.WebhookVerdict_Respond)):
                raise PluginError(f"verify_webhook answered a {type(verdict).__name__}, not accept(...) or respond(...)")
            return verdict
        except BaseException as error:
            raise Err(_rejection(error)) from None

    return verify_webhook


def _export_headers(headers):
    def headers_to_keep(self):
        seal_imports()
        try:
            names = headers(self) if callable(headers) else headers
            return [str(name).lower() for name in names]
        except BaseException as error:
            log.error(f"headers_to_keep failed, keeping no header: {describe_exception(error)}")
            return []

    return headers_to_keep


def _export_handle(handle):
    def handle_incoming(self, request):
        seal_imports()
        try:
            events = handle(self, Webhook.from_wit(request))
            if not isinstance(events, list):
                raise PluginError(f"handle_incoming answered a {type(events).__name__}, not a list of events")
            return _dump(events, "the incoming events")
        except BaseException as error:
            raise_as_wit(error)

    return handle_incoming


def _export_send(send):
    def send_message(self, message):
        seal_imports()
        try:
            try:
                outbound = _json.loads(message)
            except ValueError as error:
                raise PluginError(f"the host's outbound message is not JSON: {error}") from None
            sent = send(self, outbound)
            if not isinstance(sent, dict):
                raise PluginError(f"send_message answered a {type(sent).__name__}, not a sent-message dict")
            return _dump(sent, "the sent message")
        except BaseException as error:
            raise_as_wit(error)

    return send_message


_EXPORTS = {
    "verify_webhook": _export_verify,
    "headers_to_keep": _export_headers,
    "handle_incoming": _export_handle,
    "send_message": _export_send,
}


class Channel:
    """Subclass it as ``Messaging`` in ``app.py``; define what the channel does.

    - ``verify_webhook(self, request)``: ``request`` is a ``Webhook``; answer ``accept(id)`` or
      ``respond(status, body)``, or raise ``WebhookRejected(status, reason)``. On the request
      path, before anything is stored: quick, and no network. By default every webhook is
      refused with 404 (a channel that only sends; leave ``network:inbound`` out).
    - ``headers_to_keep``: the (lower-case) header names ``handle_incoming`` reads, a list or a
      method answering one; by default none.
    - ``handle_incoming(self, request)``: the events a verified webhook carries, a list of
      ``message_event(...)`` / ``delivery_status_event(...)`` dicts. It may run twice for one
      delivery: depend on the request alone. By default none.
    - ``send_message(self, message)``: ``message`` is the outbound message dict (``id``,
      ``conversation_id``?, ``recipients``, ``subject``?, ``text``, ``in_reply_to``?); answer
      ``sent_message(...)``. By default it fails: the channel does not send.
    """

    headers_to_keep: "list[str]" = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, export in _EXPORTS.items():
            member = getattr(cls, name)
            if not getattr(member, "_tributary_export", False):
                wrapped = export(member)
                wrapped.__doc__ = member.__doc__ if callable(member) else None
                wrapped._tributary_export = True
                setattr(cls, name, wrapped)

    def verify_webhook(self, request: Webhook):
        """Refuses every webhook with 404: this channel takes none."""
        raise WebhookRejected(404, "this channel takes no webhooks")

    def handle_incoming(self, request: Webhook) -> "list[dict]":
        """No events."""
        return []

    def send_message(self, message: dict) -> dict:
        """Fails: this channel does not send."""
        raise PluginError("this channel does not send messages")
