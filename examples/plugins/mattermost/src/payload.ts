// What a Mattermost outgoing webhook POSTs, and the message it becomes.
//
// Mattermost sends these fields as a form (`application/x-www-form-urlencoded`, the default)
// or as a JSON object (when the webhook's Content Type is `application/json`):
//
//   token, team_id, team_domain, channel_id, channel_name, timestamp (ms since the epoch),
//   user_id, user_name, post_id, text, trigger_word, file_ids (comma-separated)
//
// In a form every value is a string; in JSON `timestamp` is a number.

import { messageEvent, participant, safeEqual, type MessageEvent } from '@tributary/plugin';

/** A payload's fields, as the body gave them. */
export type Payload = Record<string, unknown>;

/** Why a body cannot be read as a payload (the webhook answers 400 with the message). */
export class PayloadError extends Error {
  /** Creates the error; `message` says what is wrong. */
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}

/** The media type of a Content-Type value, lower-case and without parameters. */
function essence(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/** The body read as JSON or as a form, as its Content-Type says (a form when it says nothing). */
export function readPayload(body: Uint8Array, contentType: string | undefined): Payload {
  const type = essence(contentType);
  const text = new TextDecoder().decode(body);
  if (type === 'application/json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new PayloadError(`the body is not JSON: ${(e as Error).message}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new PayloadError('the body is not a JSON object');
    return value as Payload;
  }
  if (type === 'application/x-www-form-urlencoded' || type === '') {
    const payload: Payload = {};
    for (const [key, value] of new URLSearchParams(text)) {
      if (!(key in payload)) payload[key] = value;
    }
    return payload;
  }
  throw new PayloadError(`the body is ${type}, and Mattermost sends application/x-www-form-urlencoded or application/json`);
}

/** The field `name` as text (a number as its digits), or undefined when it is absent or empty. */
export function field(payload: Payload, name: string): string | undefined {
  const value = payload[name];
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Whether `given` is one of the tokens in `configured`: one token, or several separated by
 * commas or whitespace (one per outgoing webhook sending to this instance). Every token is
 * compared, each in constant time, so the time taken tells neither which one matched nor how
 * much of one did.
 */
export function tokenMatches(given: string, configured: string): boolean {
  let matched = false;
  for (const token of configured.split(/[\s,]+/)) {
    if (token !== '' && safeEqual(given, token)) matched = true;
  }
  return matched;
}

/** `ms` since the epoch as RFC 3339, without a fraction when it has whole seconds. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/**
 * The message a verified payload carries: the post's id, its channel (by name, which is what
 * an incoming webhook sends to), its author by username, its text and time. `receivedAt`
 * (RFC 3339) stands in for a missing `timestamp`. The `token` is left out of `raw`: kept with
 * the message, it would let whoever reads messages forge deliveries.
 */
export function messageOf(payload: Payload, receivedAt: string): MessageEvent {
  const required = (name: string): string => {
    const value = field(payload, name);
    if (value === undefined) throw new PayloadError(`the payload has no \`${name}\``);
    return value;
  };
  const postId = required('post_id');
  const channelName = required('channel_name');
  const sender = field(payload, 'user_name') ?? required('user_id');
  const timestamp = Number(field(payload, 'timestamp'));
  const raw: Payload = { ...payload };
  delete raw.token;
  return messageEvent({
    provider_message_id: postId,
    conversation_id: channelName,
    conversation_title: channelName,
    sender: participant(sender),
    text: typeof payload.text === 'string' ? payload.text : '',
    sent_at: Number.isSafeInteger(timestamp) && timestamp > 0 ? rfc3339(timestamp) : receivedAt,
    raw,
  });
}
