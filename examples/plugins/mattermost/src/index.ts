// com.example.mattermost: a Mattermost channel.
//
// In: a Mattermost outgoing webhook POSTs each matching post to the instance's webhook route,
// as a form or as JSON, with the webhook's `token`; the token is compared in constant time with
// the secret `outgoingWebhookToken` before anything is stored, and the post becomes a message
// (its delivery id: `post_id`). Out: `src/send.ts`, through an incoming webhook.

import { PluginError, WebhookRejected, accept, defineChannel, secret } from '@tributary/plugin';

import { PayloadError, field, messageOf, readPayload, tokenMatches } from './payload';
import { send } from './send';

/** The `messaging` export of the channel. */
export const messaging = defineChannel({
  /** Checks the token and names the delivery by the post's id; quick, with no network. */
  verifyWebhook(webhook) {
    if (webhook.method !== 'POST') throw new WebhookRejected(405, `Mattermost sends outgoing webhooks with POST, not ${webhook.method}`);
    let payload;
    try {
      payload = readPayload(webhook.body, webhook.header('content-type'));
    } catch (error) {
      if (error instanceof PayloadError) throw new WebhookRejected(400, error.message);
      throw error;
    }
    const token = field(payload, 'token');
    if (token === undefined) throw new WebhookRejected(401, 'the payload has no `token`');
    // A missing secret is a ConfigError: the SDK answers 500 naming the field, and Mattermost
    // does not retry, so the post is lost until the instance is configured; see the README.
    if (!tokenMatches(token, secret('outgoingWebhookToken'))) {
      throw new WebhookRejected(401, "the payload's `token` is not the outgoing webhook's token");
    }
    const postId = field(payload, 'post_id');
    if (postId === undefined) throw new WebhookRejected(400, 'the payload has no `post_id`');
    return accept(postId);
  },

  /** The body is read again when the webhook is handled; nothing else is. */
  headersToKeep: ['content-type'],

  /** The one message a verified webhook carries. */
  handleIncoming(webhook) {
    try {
      return [messageOf(readPayload(webhook.body, webhook.header('content-type')), webhook.receivedAt)];
    } catch (error) {
      if (error instanceof PayloadError) throw new PluginError(error.message);
      throw error;
    }
  },

  sendMessage: send,
});
