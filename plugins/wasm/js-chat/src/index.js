// com.example.js-chat: an example third-party channel in JavaScript, componentized against the
// `channel` world of proto/wit (tributary:plugin@0.1.0), for a fictional chat provider:
//
// - Webhooks: a JSON body signed with the hex HMAC-SHA256 of its exact bytes under the
//   instance's signing secret, in header `x-signature`. The body's `id` names the delivery.
//     {"id": "d-1", "type": "message", "message_id": "m-1", "conversation_id": "c-1",
//      "conversation_title": "Ops", "from": "alice" | {"address": "alice", "name": "Alice"},
//      "to": ["bot"], "text": "Hello", "sent_at": "2026-01-01T09:00:00Z"}
//     {"id": "d-2", "type": "status", "message_id": "p-7", "status": "delivered",
//      "error": "…", "at": "2026-01-01T09:00:05Z"}
//   A `GET ?challenge=<x>` (the provider checking the URL) is answered 200 with <x>.
// - Sending: POST <apiBase>/messages {"client_id", "conversation_id", "to", "text", "subject",
//   "in_reply_to"} with the API token attached by the host as a bearer token (the plugin never
//   reads it); the provider answers {"id", "status", "sent_at"}.
//
// WIT in JavaScript (componentize-js): records are objects with camelCase fields, variants are
// `{tag, val}`, `option` is the value or undefined, `list<u8>` is a Uint8Array, `u64` a BigInt,
// `json` a string; a `result` export returns its ok value and throws its err value; an import
// that answers err throws an Error whose `payload` is the plugin-error, which an export that lets
// it through hands back to the host unchanged.

import { config, log, nowMs, secret, httpFetch } from 'tributary:plugin/host@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The signing key, imported once per secret value (a warm instance verifies many webhooks). */
let signing = { secret: undefined, key: undefined };

/** A webhook rejection: answered with `status` and `reason`, nothing stored. */
function reject(status, reason) {
  return { status, reason };
}

/** A plugin-error of the `other` case. */
function otherError(message) {
  return { tag: 'other', val: message };
}

/** The first header named `name` (lower-case), or undefined. */
function header(request, name) {
  return request.headers.find((h) => h.name === name)?.value;
}

/** The query parameter `name` of the request, or null. */
function queryParam(request, name) {
  return request.query == null ? null : new URLSearchParams(request.query).get(name);
}

/** Now, RFC 3339, from the host's clock. */
function now() {
  return new Date(Number(nowMs())).toISOString();
}

/** Bytes of a hex string of exactly `length` bytes, or undefined when it is not one. */
function fromHex(text, length) {
  if (text.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = parseInt(text.substr(i * 2, 2), 16);
  return bytes;
}

/** Whether `a` and `b` hold the same bytes, in time that does not depend on where they differ. */
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** The HMAC-SHA256 of `body` under the instance's signing secret. */
async function hmac(body) {
  let value;
  try {
    value = secret('signingSecret');
  } catch {
    return undefined;
  }
  if (signing.secret !== value) {
    const key = await crypto.subtle.importKey(
      'raw',
      encoder.encode(value),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    signing = { secret: value, key };
  }
  return new Uint8Array(await crypto.subtle.sign('HMAC', signing.key, body));
}

/** The body as JSON, or undefined. */
function jsonBody(request) {
  try {
    return JSON.parse(decoder.decode(request.body));
  } catch {
    return undefined;
  }
}

/** A participant of the unified shape from `"address"` or `{"address", "name"}`. */
function participant(value, where) {
  if (typeof value === 'string' && value !== '') return { address: value };
  if (value !== null && typeof value === 'object' && typeof value.address === 'string' && value.address !== '') {
    return typeof value.name === 'string' ? { address: value.address, display_name: value.name } : { address: value.address };
  }
  throw otherError(`the webhook's \`${where}\` is neither an address nor {"address", "name"}`);
}

/** The string field `field` of `body`; `required` ones must be there and non-empty. */
function text(body, field, required) {
  const value = body[field];
  if (value == null && !required) return undefined;
  if (typeof value !== 'string' || (required && value === '')) {
    throw otherError(`the webhook's \`${field}\` is missing or not a string`);
  }
  return value;
}

/** An RFC 3339 time field of `body`, or now when it has none. */
function time(body, field) {
  const value = text(body, field, false);
  if (value === undefined) return now();
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw otherError(`the webhook's \`${field}\` is not an RFC 3339 time: ${JSON.stringify(value)}`);
  return new Date(ms).toISOString();
}

/** The incoming events (the Rust SDK's `IncomingEvent` shapes) one webhook body carries. */
function eventsOf(body) {
  const type = body.type ?? 'message';
  if (type === 'message') {
    const to = body.to ?? [];
    if (!Array.isArray(to)) throw otherError("the webhook's `to` is not a list");
    const event = {
      kind: 'message',
      provider_message_id: text(body, 'message_id', false) ?? String(body.id),
      sender: participant(body.from, 'from'),
      recipients: to.map((r, i) => participant(r, `to[${i}]`)),
      text: text(body, 'text', false) ?? '',
      sent_at: time(body, 'sent_at'),
      raw: body,
    };
    const conversation = text(body, 'conversation_id', false);
    if (conversation !== undefined) event.conversation_id = conversation;
    const title = text(body, 'conversation_title', false);
    if (title !== undefined) event.conversation_title = title;
    return [event];
  }
  if (type === 'status') {
    const event = {
      kind: 'delivery_status',
      provider_message_id: text(body, 'message_id', true),
      status: text(body, 'status', true),
      at: time(body, 'at'),
    };
    const error = text(body, 'error', false);
    if (error !== undefined) event.error = error;
    return [event];
  }
  log('debug', `Ignored a webhook of type ${JSON.stringify(type)}.`);
  return [];
}

/** The instance's `apiBase`, without a trailing slash. */
function apiBase() {
  let raw;
  try {
    raw = JSON.parse(config());
  } catch (e) {
    throw otherError(`the host's config is not JSON: ${e.message}`);
  }
  if (raw.apiBase == null) {
    throw { tag: 'config', val: { field: 'apiBase', message: 'is required to send messages' } };
  }
  if (typeof raw.apiBase !== 'string' || !/^https?:\/\/[^/]/.test(raw.apiBase)) {
    throw { tag: 'config', val: { field: 'apiBase', message: `must be an http or https URL, found ${JSON.stringify(raw.apiBase)}` } };
  }
  return raw.apiBase.replace(/\/+$/, '');
}

/** The `messaging` interface of the `channel` world. */
export const messaging = {
  /** Checks the signature and names the delivery; on the request path, with no network. */
  async verifyWebhook(request) {
    if (request.method === 'GET') {
      const challenge = queryParam(request, 'challenge');
      if (challenge === null) throw reject(400, 'a GET must carry the `challenge` query parameter');
      return {
        tag: 'respond',
        val: { status: 200, contentType: 'text/plain; charset=utf-8', body: encoder.encode(challenge) },
      };
    }
    if (request.method !== 'POST') throw reject(405, `the provider sends webhooks with POST, not ${request.method}`);

    const signature = header(request, 'x-signature');
    if (signature === undefined) throw reject(401, 'the `x-signature` header is missing');
    const given = fromHex(signature.trim(), 32);
    if (given === undefined) throw reject(401, 'the `x-signature` header is not a hex HMAC-SHA256 (64 hex digits)');
    const expected = await hmac(request.body);
    if (expected === undefined) {
      throw reject(500, 'the channel instance is misconfigured (config field `signingSecret`)');
    }
    if (!sameBytes(given, expected)) {
      throw reject(401, 'the `x-signature` header does not match the HMAC-SHA256 of the body under the signing secret');
    }

    const body = jsonBody(request);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw reject(400, 'the body is not a JSON object');
    const id = body.id;
    if (!((typeof id === 'string' && id !== '') || Number.isSafeInteger(id))) {
      throw reject(400, 'the body has no `id` (a non-empty string or a whole number) to name the delivery');
    }
    return { tag: 'accept', val: String(id) };
  },

  /** Only the body's type is read later; signatures are for verification alone. */
  headersToKeep() {
    return ['content-type'];
  },

  /** The events of a verified webhook, as a JSON array. */
  handleIncoming(request) {
    const body = jsonBody(request);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw otherError('the webhook body is not a JSON object');
    return JSON.stringify(eventsOf(body));
  },

  /** Sends an outbound message (JSON) through the provider; answers the sent message (JSON). */
  sendMessage(message) {
    let msg;
    try {
      msg = JSON.parse(message);
    } catch (e) {
      throw otherError(`the outbound message is not JSON: ${e.message}`);
    }
    if (typeof msg?.id !== 'string' || !Array.isArray(msg.recipients) || typeof msg.text !== 'string') {
      throw otherError('the outbound message needs an `id`, a `recipients` list and a `text`');
    }
    const url = `${apiBase()}/messages`;
    const payload = {
      client_id: msg.id,
      conversation_id: msg.conversation_id ?? null,
      to: msg.recipients.map((r) => r.address),
      text: msg.text,
    };
    if (msg.subject != null) payload.subject = msg.subject;
    if (msg.in_reply_to != null) payload.in_reply_to = msg.in_reply_to;

    // An error of the host (a denied host, a timeout) is thrown as an Error carrying the
    // plugin-error as its payload, and reaches the host unchanged.
    const response = httpFetch({
      method: 'POST',
      url,
      headers: [
        { name: 'content-type', value: 'application/json' },
        { name: 'accept', value: 'application/json' },
        { name: 'idempotency-key', value: msg.id },
      ],
      body: encoder.encode(JSON.stringify(payload)),
      auth: { tag: 'bearer', val: 'apiToken' },
      timeoutMs: undefined,
    });
    const answer = decoder.decode(response.body);
    if (response.status < 200 || response.status > 299) {
      throw { tag: 'http', val: { status: response.status, message: `POST /messages answered ${response.status}: ${answer.slice(0, 200)}` } };
    }
    let sent;
    try {
      sent = JSON.parse(answer);
    } catch (e) {
      throw otherError(`POST /messages answered something that is not JSON: ${e.message}`);
    }
    if (typeof sent?.id !== 'string' || sent.id === '') {
      throw otherError('POST /messages answered no `id` for the message');
    }
    const result = {
      id: msg.id,
      provider_message_id: sent.id,
      status: typeof sent.status === 'string' ? sent.status : 'sent',
      sent_at: typeof sent.sent_at === 'string' && !Number.isNaN(Date.parse(sent.sent_at)) ? new Date(Date.parse(sent.sent_at)).toISOString() : now(),
    };
    if (typeof sent.from === 'string' && sent.from !== '') result.sender = { address: sent.from };
    log('info', `Sent message ${msg.id} as ${sent.id}.`);
    return JSON.stringify(result);
  },
};
