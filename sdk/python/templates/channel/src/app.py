"""A channel: messages in by webhook, out through a JSON API.

In: the provider POSTs each message as JSON,

    {"id": "<delivery id>", "message_id": "<its id>", "conversation_id": "<thread>",
     "from": {"address": "<sender>", "name": "<shown name>"}, "text": "…", "sent_at": "<RFC 3339>"}

with the header ``x-webhook-token: <webhookToken>``, a secret shared with the provider and
compared in constant time. A wrong or missing token is answered 401 and nothing is stored.

Out: ``POST {baseUrl}/messages`` with ``{"conversation_id", "to", "text"}``, the message's id
as ``idempotency-key`` and ``Authorization: Bearer <apiToken>`` attached by the host; the
provider answers ``{"id", "status"?, "sent_at"?}``.
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
    message_event,
    participant,
    request,
    secret,
    sent_message,
    utc_now,
)

#: Used when the instance's config names no ``baseUrl``.
DEFAULT_BASE_URL = "https://api.example.com"
#: The header carrying the shared token.
TOKEN_HEADER = "x-webhook-token"


class Messaging(Channel):
    """The ``messaging`` export."""

    #: ``handle_incoming`` reads the body only; the token header is not kept once verified.
    headers_to_keep = ["content-type"]

    def verify_webhook(self, webhook):
        """Accepts a POST whose token header is the shared secret; its delivery id is the body's ``id``."""
        if webhook.method != "POST":
            raise WebhookRejected(405, f"the provider sends POST, not {webhook.method}")
        given = webhook.header(TOKEN_HEADER)
        if given is None:
            raise WebhookRejected(401, f"the {TOKEN_HEADER} header is missing")
        if not hmac.compare_digest(given.encode("utf-8"), secret("webhookToken").encode("utf-8")):
            raise WebhookRejected(401, f"the {TOKEN_HEADER} header does not match the webhook token")
        body = webhook.json()
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise WebhookRejected(400, "the body is not a JSON object with a string `id`")
        return accept(body["id"])

    def handle_incoming(self, webhook):
        """The message the webhook carries."""
        body = webhook.json()
        sender = body.get("from") or {}
        if not isinstance(sender, dict) or not isinstance(sender.get("address"), str):
            raise PluginError(f"webhook {body.get('id')}: `from` has no `address`")
        return [
            message_event(
                provider_message_id=body.get("message_id") or body["id"],
                sender=participant(sender["address"], sender.get("name")),
                text=body.get("text") or "",
                sent_at=body.get("sent_at") or webhook.received_at,
                conversation_id=body.get("conversation_id"),
                raw=body,
            )
        ]

    def send_message(self, message):
        """Sends ``message`` with ``POST {baseUrl}/messages``."""
        base_url = config_url(config(), "baseUrl", DEFAULT_BASE_URL)
        answer = request(
            "POST",
            f"{base_url}/messages",
            headers={"idempotency-key": message["id"]},
            json={
                "conversation_id": message.get("conversation_id"),
                "to": [recipient["address"] for recipient in message.get("recipients", [])],
                "text": message["text"],
            },
            auth=bearer("apiToken"),
        ).ensure_ok().json()
        if not isinstance(answer, dict) or answer.get("id") is None:
            raise PluginError(f"POST /messages answered without an `id`: {answer!r:.200}")
        return sent_message(
            message["id"],
            str(answer["id"]),
            answer.get("status") or "sent",
            answer.get("sent_at") or utc_now(),
        )
