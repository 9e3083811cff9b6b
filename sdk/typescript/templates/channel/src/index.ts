// The channel: a chat service's webhooks in, its API out.
//
// The service (change this to yours):
// - Webhooks: POST, a JSON body, and the instance's shared token in the `x-webhook-token`
//   header (compared in constant time; a missing or wrong token is refused with 401):
//     {"event_id": "evt-1", "type": "message.created",
//      "message": {"id": "m-1", "conversation_id": "c-1", "conversation_title": "Support"?,
//                  "from": {"id": "u-1", "name": "Alice"?}, "text": "Hello",
//                  "created_at": "2026-01-01T10:00:00Z"}}
//   Other event types are accepted and carry no message.
// - Sending: POST <baseUrl>/messages with the API token attached by the host as a bearer token
//   (the plugin never reads it):
//     {"client_id": "<Tributary's id>", "conversation_id": "c-1"?, "to": ["u-1"], "text": "…"}
//   → 2xx {"id": "p-1", "status": "sent"?, "created_at"?}

import {
  PluginError,
  WebhookRejected,
  accept,
  bearer,
  config,
  configUrl,
  defineChannel,
  log,
  messageEvent,
  participant,
  requestJson,
  safeEqual,
  secret,
  sentMessage,
  utcNow,
} from '@tributary/plugin';

/** The instance's configuration, as plugin.json's configSchema describes it (the tokens are secrets the host keeps). */
interface Settings {
  baseUrl?: string;
}

/** A webhook body, as the service sends it. */
interface WebhookBody {
  event_id?: string;
  type?: string;
  message?: {
    id: string;
    conversation_id?: string;
    conversation_title?: string;
    from: { id: string; name?: string };
    text?: string;
    created_at?: string;
  };
}

/** What the service answers to a send. */
interface SendAnswer {
  id?: string;
  status?: string;
  created_at?: string;
}

/** The `messaging` export of the `channel` world. */
export const messaging = defineChannel({
  verifyWebhook(webhook) {
    if (webhook.method !== 'POST') throw new WebhookRejected(405, `the service sends webhooks with POST, not ${webhook.method}`);
    const given = webhook.header('x-webhook-token');
    if (given === undefined) throw new WebhookRejected(401, 'the `x-webhook-token` header is missing');
    // `secret` throws a ConfigError when the token is not set: answered 500, naming the field.
    if (!safeEqual(given, secret('webhookToken'))) {
      throw new WebhookRejected(401, 'the `x-webhook-token` header does not match the instance\'s webhook token');
    }
    const body = webhook.json<WebhookBody>();
    if (typeof body?.event_id !== 'string' || body.event_id === '') {
      throw new WebhookRejected(400, 'the body has no `event_id` to name the delivery');
    }
    return accept(body.event_id);
  },

  headersToKeep: ['content-type'],

  handleIncoming(webhook) {
    const body = webhook.json<WebhookBody>();
    if (body.type !== 'message.created') {
      log.debug(`Ignored a webhook of type ${JSON.stringify(body.type)}.`);
      return [];
    }
    const message = body.message;
    if (typeof message?.id !== 'string' || typeof message.from?.id !== 'string') {
      throw new PluginError('a message.created webhook needs `message.id` and `message.from.id`');
    }
    return [
      messageEvent({
        provider_message_id: message.id,
        conversation_id: message.conversation_id,
        conversation_title: message.conversation_title,
        sender: participant(message.from.id, message.from.name),
        text: message.text ?? '',
        sent_at: message.created_at ?? webhook.receivedAt,
        raw: body,
      }),
    ];
  },

  async sendMessage(message) {
    const baseUrl = configUrl(config<Settings>(), 'baseUrl');
    const answer = await requestJson<SendAnswer>({
      method: 'POST',
      url: `${baseUrl}/messages`,
      headers: { 'idempotency-key': message.id },
      json: {
        client_id: message.id,
        conversation_id: message.conversation_id ?? null,
        to: message.recipients.map((r) => r.address),
        text: message.text,
      },
      auth: bearer('apiToken'),
    });
    if (typeof answer?.id !== 'string' || answer.id === '') {
      throw new PluginError(`POST ${baseUrl}/messages answered no \`id\` for the message`);
    }
    log.info(`Sent message ${message.id} as ${answer.id}.`);
    return sentMessage({
      id: message.id,
      provider_message_id: answer.id,
      status: answer.status ?? 'sent',
      sent_at: answer.created_at ?? utcNow(),
    });
  },
});
