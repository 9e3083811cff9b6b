// The `messaging` export of the `channel` world, from a definition in plain values.
//
// In `src/index.ts`:
//
//   export const messaging = defineChannel({
//     verifyWebhook(webhook) { …; return accept(deliveryId); },   // or throw new WebhookRejected(401, '…')
//     headersToKeep: ['content-type'],
//     handleIncoming(webhook) { return [messageEvent({ … })]; },
//     async sendMessage(message) { …; return sentMessage({ … }); },
//   });
//
// The JSON shapes are the Rust plugin SDK's (plugins/sdk/src/traits.rs): `IncomingEvent`,
// `OutboundMessage`, `SentMessage`, `Participant`, with snake_case fields.

import type {
  IncomingWebhook,
  WebhookRejection,
  WebhookVerdict,
} from 'tributary:plugin/messaging@0.1.0';
import type { PluginError as WitPluginError } from 'tributary:plugin/types@0.1.0';

import type { WitResult } from './connector';
import { ConfigError, PluginError, describeException, toPluginError } from './errors';
import { log } from './host';
import { dumpJson, normalizeTime, parseJson } from './json';

export type { WebhookVerdict };

/** A request the service received on the instance's webhook route. */
export class Webhook {
  /** The webhook as the host handed it over. */
  constructor(
    /** The HTTP method. */
    readonly method: string,
    /** The URL the provider called, as it saw it. */
    readonly url: string,
    /** The query string without `?`, or null. */
    readonly query: string | null,
    /** The headers as [lower-case name, value] pairs, in the order received. */
    readonly headers: [string, string][],
    /** The body exactly as received (verify signatures over these bytes). */
    readonly body: Uint8Array,
    /** When the service received it, RFC 3339. */
    readonly receivedAt: string,
  ) {}

  /** The webhook of the WIT record `request`. */
  static fromWit(request: IncomingWebhook): Webhook {
    return new Webhook(
      request.method.toUpperCase(),
      request.url,
      request.query ?? null,
      request.headers.map((h) => [h.name.toLowerCase(), h.value]),
      request.body,
      request.receivedAt,
    );
  }

  /** The first value of the header `name` (any case), or undefined. */
  header(name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.headers.find(([key]) => key === wanted)?.[1];
  }

  /** The query parameters (the first value of each name). */
  queryParams(): Record<string, string> {
    const params: Record<string, string> = {};
    for (const [name, value] of new URLSearchParams(this.query ?? '')) if (!(name in params)) params[name] = value;
    return params;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON; `WebhookRejected` 400 when it is not JSON (so a bad request is answered, not stored). */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (error) {
      throw new WebhookRejected(400, `the body is not JSON: ${(error as Error).message}`);
    }
  }
}

/**
 * Thrown by `verifyWebhook`: the service answers `status` with `reason` and stores nothing.
 * 401 for a signature or token that does not verify, 400 for a request that cannot be read,
 * 403 for a handshake with the wrong token, 405 for a method the provider never sends. The
 * reason is shown to the caller: name the problem, never a secret.
 */
export class WebhookRejected extends Error {
  /** A rejection answered with `status` and `reason`. */
  constructor(
    /** The HTTP status to answer. */
    readonly status: number,
    /** What is wrong. */
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'WebhookRejected';
  }
}

/**
 * The verdict storing the webhook, answering 2xx and handling it later; `deliveryId` is the
 * provider's id of this delivery, the same across its retries (a second is dropped).
 */
export function accept(deliveryId: string | number): WebhookVerdict {
  return { tag: 'accept', val: String(deliveryId) };
}

/** The verdict answering `status` with `body` and storing nothing (a URL-verification handshake). */
export function respond(status: number, body: string | Uint8Array = '', contentType = 'text/plain; charset=utf-8'): WebhookVerdict {
  return {
    tag: 'respond',
    val: { status, contentType, body: typeof body === 'string' ? new TextEncoder().encode(body) : body },
  };
}

/** A sender or recipient, in the provider's addressing (a phone number, a user id). */
export interface Participant {
  /** The provider's address. */
  address: string;
  /** The name shown for it, if the provider gave one. */
  display_name?: string;
}

/** A message someone sent, as `handleIncoming` answers it. */
export interface MessageEvent {
  /** Always `message`. */
  kind: 'message';
  /** The provider's id of the message; makes a redelivered webhook idempotent. */
  provider_message_id: string;
  /** The provider's conversation or thread; without one, the service files the message by its participants. */
  conversation_id?: string;
  /** The conversation's title, if the provider names it. */
  conversation_title?: string;
  /** Who sent it. */
  sender: Participant;
  /** Who it was sent to. */
  recipients: Participant[];
  /** Its text. */
  text: string;
  /** When the provider says it was sent, RFC 3339. */
  sent_at: string;
  /** The provider's payload for it, kept for re-processing. */
  raw: unknown;
}

/** A new delivery status of a message sent through the channel. */
export interface DeliveryStatusEvent {
  /** Always `delivery_status`. */
  kind: 'delivery_status';
  /** The provider's id of the sent message (`SentMessage.provider_message_id`). */
  provider_message_id: string;
  /** The provider's status word (`sent`, `delivered`, `undelivered`, `failed`, `read`). */
  status: string;
  /** The provider's error, when delivery failed. */
  error?: string;
  /** When the provider reported it, RFC 3339. */
  at: string;
}

/** What one webhook carried. */
export type IncomingEvent = MessageEvent | DeliveryStatusEvent;

/** A message the service asks the channel to send. */
export interface OutboundMessage {
  /** Tributary's id of the message (a UUID); the same id sent twice is the same message. */
  id: string;
  /** The provider's conversation or thread to send in, if any. */
  conversation_id?: string;
  /** Who to send it to. */
  recipients: Participant[];
  /** A subject line, for channels that have one. */
  subject?: string;
  /** Its text. */
  text: string;
  /** The provider's id of the message this replies to, if any. */
  in_reply_to?: string;
  /** The instance's public webhook URL, for providers that report statuses to a URL given with each message. */
  status_callback_url?: string;
}

/** What the provider said about a message it accepted: `sendMessage`'s answer. */
export interface SentMessage {
  /** Tributary's id of the message (`OutboundMessage.id`). */
  id: string;
  /** The provider's id for it. */
  provider_message_id: string;
  /** The provider's status word for it now (`queued`, `sent`, `accepted`). */
  status: string;
  /** Who the provider shows as its sender, if the channel knows. */
  sender?: Participant;
  /** When the provider accepted it, RFC 3339. */
  sent_at: string;
}

/** A participant known by `address`, shown as `displayName` when given. */
export function participant(address: string, displayName?: string): Participant {
  return displayName === undefined ? { address } : { address, display_name: displayName };
}

/** An incoming message event: `kind` filled in, `recipients` empty and `raw` null when left out. */
export function messageEvent(
  fields: Omit<MessageEvent, 'kind' | 'recipients' | 'raw'> & Partial<Pick<MessageEvent, 'recipients' | 'raw'>>,
): MessageEvent {
  return { kind: 'message', ...fields, recipients: fields.recipients ?? [], raw: fields.raw ?? null };
}

/** A delivery status event, `kind` filled in. */
export function deliveryStatusEvent(fields: Omit<DeliveryStatusEvent, 'kind'>): DeliveryStatusEvent {
  return { kind: 'delivery_status', ...fields };
}

/** What `sendMessage` answers, checked for its required fields when the definition returns it. */
export function sentMessage(fields: SentMessage): SentMessage {
  return { ...fields };
}

/** What a channel plugin defines. */
export interface ChannelDefinition {
  /**
   * Checks that `webhook` comes from the provider (its signature or token) and names the
   * delivery: `accept(id)`, or `respond(status, body)` for a handshake; throws
   * `WebhookRejected` otherwise. Runs on the request path, before anything is stored: quick,
   * and with no network.
   */
  verifyWebhook(webhook: Webhook): WebhookVerdict | Promise<WebhookVerdict>;
  /** The headers (any case) `handleIncoming` reads, kept when a webhook is stored; none when left out. */
  headersToKeep?: string[];
  /** The events of a verified webhook (it may run again for the same delivery after a crash). */
  handleIncoming(webhook: Webhook): IncomingEvent[] | Promise<IncomingEvent[]>;
  /** Sends `message` through the provider; left out, the channel only receives. */
  sendMessage?(message: OutboundMessage): SentMessage | Promise<SentMessage>;
}

/** The `messaging` interface as the component exports it. */
export interface MessagingExport {
  /** `messaging.verify-webhook`. */
  verifyWebhook(request: IncomingWebhook): Promise<WitResult<WebhookVerdict, WebhookRejection>>;
  /** `messaging.headers-to-keep`. */
  headersToKeep(): string[];
  /** `messaging.handle-incoming`. */
  handleIncoming(request: IncomingWebhook): Promise<WitResult<string, WitPluginError>>;
  /** `messaging.send-message`. */
  sendMessage(message: string): Promise<WitResult<string, WitPluginError>>;
}

/**
 * The rejection for an error `verifyWebhook` threw: a `WebhookRejected` as it is; a config
 * error as 500 naming the field; anything else as 500 saying only what kind of failure it
 * was (its text may quote the request; the instance's log has all of it).
 */
function rejectionOf(error: unknown): WebhookRejection {
  if (error instanceof WebhookRejected) return { status: error.status, reason: error.reason };
  const known = error instanceof PluginError || (error !== null && typeof error === 'object' && 'payload' in error);
  if (!known) {
    log.error(`verifyWebhook failed: ${describeException(error)}`);
    return { status: 500, reason: `the channel plugin failed: ${error instanceof Error ? error.name : typeof error}` };
  }
  const failure = toPluginError(error);
  log.error(`verifyWebhook failed: ${failure.message}`);
  if (failure instanceof ConfigError) {
    return { status: 500, reason: `the channel instance is misconfigured (config field \`${failure.field}\`)` };
  }
  return { status: 500, reason: 'the channel instance is misconfigured' };
}

/** Any error of `handleIncoming` or `sendMessage` as a plugin-error (a rejection's reason as `other`). */
function witError(error: unknown): WitPluginError {
  return (error instanceof WebhookRejected ? new PluginError(error.reason) : toPluginError(error)).toWit();
}

/** Event `index` of `handleIncoming`'s answer, checked and with its times in RFC 3339. */
function checkedEvent(event: IncomingEvent, index: number): IncomingEvent {
  const name = `event ${index} of handleIncoming`;
  if (event?.kind === 'message') {
    if (typeof event.provider_message_id !== 'string' || event.provider_message_id === '') {
      throw new PluginError(`${name}: provider_message_id must be a non-empty string`);
    }
    if (typeof event.sender?.address !== 'string') throw new PluginError(`${name}: sender must be a participant ({address})`);
    return { ...event, sent_at: normalizeTime(event.sent_at, `${name}: sent_at`) };
  }
  if (event?.kind === 'delivery_status') {
    return { ...event, at: normalizeTime(event.at, `${name}: at`) };
  }
  throw new PluginError(`${name} has kind ${JSON.stringify((event as { kind?: unknown })?.kind)}, not "message" or "delivery_status"`);
}

/** `sendMessage`'s answer, checked, with `sent_at` in RFC 3339. */
function checkedSent(sent: SentMessage): SentMessage {
  if (sent === null || typeof sent !== 'object') throw new PluginError('sendMessage must answer a sent message');
  for (const field of ['id', 'provider_message_id', 'status'] as const) {
    if (typeof sent[field] !== 'string' || sent[field] === '') {
      throw new PluginError(`sendMessage's answer needs ${field} (a non-empty string)`);
    }
  }
  return { ...sent, sent_at: normalizeTime(sent.sent_at, "sendMessage's sent_at") };
}

/**
 * The `messaging` export of a channel: `export const messaging = defineChannel({ … })`. See
 * `ChannelDefinition` for what each function gets and answers.
 */
export function defineChannel(definition: ChannelDefinition): MessagingExport {
  const keep = (definition.headersToKeep ?? []).map((name) => name.toLowerCase());
  return {
    async verifyWebhook(request) {
      try {
        return { tag: 'ok', val: await definition.verifyWebhook(Webhook.fromWit(request)) };
      } catch (error) {
        return { tag: 'err', val: rejectionOf(error) };
      }
    },
    headersToKeep() {
      return keep;
    },
    async handleIncoming(request) {
      try {
        const events = await definition.handleIncoming(Webhook.fromWit(request));
        if (!Array.isArray(events)) throw new PluginError('handleIncoming must answer a list of events');
        return { tag: 'ok', val: dumpJson(events.map(checkedEvent), 'the events') };
      } catch (error) {
        return { tag: 'err', val: witError(error) };
      }
    },
    async sendMessage(message) {
      try {
        if (definition.sendMessage === undefined) throw new PluginError('this channel only receives; it sends no messages');
        const outbound = parseJson(message, 'outbound message') as OutboundMessage;
        return { tag: 'ok', val: dumpJson(checkedSent(await definition.sendMessage(outbound)), 'the sent message') };
      } catch (error) {
        return { tag: 'err', val: witError(error) };
      }
    },
  };
}
