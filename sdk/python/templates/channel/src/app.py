"""The channel: a chat service's webhooks in, its API out.

The service (change this to yours):

- Webhooks: POST, a JSON body, and the instance's shared token in the ``x-webhook-token``
  header (compared in constant time; a missing or wrong token is refused with 401)::

      {"event_id": "evt-1", "type": "message.created",
       "message": {"id": "m-1", "conversation_id": "c-1", "conversation_title": "Support"?,
                   "from": {"id": "u-1", "name": "Alice"?}, "text": "Hello",
                   "created_at": "2026-01-01T10:00:00Z"}}

  Other event types are accepted and carry no message.
- Sending: ``POST <baseUrl>/messages`` with the API token attached by the host as a bearer
  token (the plugin never reads it)::

      {"client_id": "<Tributary's id>", "conversation_id": "c-1"?, "to": ["u-1"], "text": "…"}
      → 2xx {"id": "p-1", "status": "sent"?, "created_at"?}
"""

import hmac

from tributary_plugin import (
    Channel,
    PluginError,
    WebhookRejected,
    accept,
    bearer,
    config,
    config_url,
    log,
    message_event,
    participant,
    request_json,
    secret,
    sent_message,
    utc_now,
)


class Messaging(Channel):
    """The ``messaging`` export of the ``channel`` world."""

    #: ``handle_incoming`` reads the body only: the token is not stored with the webhook.
    headers_to_keep = ["content-type"]

    def verify_webhook(self, webhook):
        """Accepts a POST carrying the shared token; its delivery id is the body's ``event_id``."""
        if webhook.method != "POST":
            raise WebhookRejected(405, f"the service sends webhooks with POST, not {webhook.method}")
        given = webhook.header("x-webhook-token")
        if given is None:
            raise WebhookRejected(401, "the `x-webhook-token` header is missing")
        # `secret` raises a ConfigError when the token is not set: answered 500, naming the field.
        if not hmac.compare_digest(given.encode("utf-8"), secret("webhookToken").encode("utf-8")):
            raise WebhookRejected(401, "the `x-webhook-token` header does not match the instance's webhook token")
        body = webhook.json()
        if not isinstance(body, dict) or not isinstance(body.get("event_id"), str) or body["event_id"] == "":
            raise WebhookRejected(400, "the body has no `event_id` to name the delivery")
        return accept(body["event_id"])

    def handle_incoming(self, webhook):
        """The message a ``message.created`` webhook carries; nothing for another type."""
        body = webhook.json()
        if body.get("type") != "message.created":
            log.debug(f"Ignored a webhook of type {body.get('type')!r}.")
            return []
        message = body.get("message")
        sender = message.get("from") if isinstance(message, dict) else None
        if not isinstance(message.get("id") if isinstance(message, dict) else None, str) \
                or not isinstance(sender, dict) or not isinstance(sender.get("id"), str):
            raise PluginError("a message.created webhook needs `message.id` and `message.from.id`")
        return [
            message_event(
                provider_message_id=message["id"],
                conversation_id=message.get("conversation_id"),
                conversation_title=message.get("conversation_title"),
                sender=participant(sender["id"], sender.get("name")),
                text=message.get("text") or "",
                sent_at=message.get("created_at") or webhook.received_at,
                raw=body,
            )
        ]

    def send_message(self, message):
        """Sends ``message`` with ``POST <baseUrl>/messages``."""
        base_url = config_url(config(), "baseUrl")
        answer = request_json(
            "POST",
            f"{base_url}/messages",
            headers={"idempotency-key": message["id"]},
            json={
                "client_id": message["id"],
                "conversation_id": message.get("conversation_id"),
                "to": [recipient["address"] for recipient in message.get("recipients", [])],
                "text": message["text"],
            },
            auth=bearer("apiToken"),
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str) or answer["id"] == "":
            raise PluginError(f"POST {base_url}/messages answered no `id` for the message")
        log.info(f"Sent message {message['id']} as {answer['id']}.")
        return sent_message(
            message["id"],
            answer["id"],
            answer.get("status") or "sent",
            answer.get("created_at") or utc_now(),
        )
