// Sending: a POST to the instance's incoming webhook, `<serverUrl>/hooks/<incomingWebhookId>`,
// with `{"text", "channel"?, "username"?, "icon_url"?}`. Mattermost answers 200 `ok` and no id.
//
// The webhook's key is a secret that sits in the URL's path, and the host's HTTP client names a
// failed request by method, host and path: so every error that leaves here has the key
// replaced by `<incomingWebhookId>`.

import {
  ConfigError,
  HttpError,
  LimitExceeded,
  PermissionDenied,
  PluginError,
  TransientError,
  config,
  configUrl,
  log,
  participant,
  request,
  secret,
  sentMessage,
  toPluginError,
  utcNow,
  type OutboundMessage,
  type SentMessage,
} from '@tributary/plugin';

/** The instance's settings for sending (configSchema in plugin.json), secrets aside. */
interface SendSettings {
  /** The server's URL; posts go to `<serverUrl>/hooks/<key>`. */
  serverUrl?: string;
  /** The name posts are shown under. */
  username?: string;
  /** The picture posts are shown with. */
  iconUrl?: string;
}

/** What stands in for the webhook's key wherever it would have appeared. */
const REDACTED = '<incomingWebhookId>';

/** `error` with `key` taken out of its message; its case kept. */
export function redacted(error: unknown, key: string): PluginError {
  const e = toPluginError(error);
  if (key === '' || !e.message.includes(key)) return e;
  const clean = e.message.split(key).join(REDACTED);
  if (e instanceof HttpError) return new HttpError(e.status, clean, e.retryAfterMs);
  if (e instanceof TransientError) return new TransientError(clean);
  if (e instanceof LimitExceeded) return new LimitExceeded(clean);
  if (e instanceof PermissionDenied || e instanceof ConfigError) return e;
  return new PluginError(clean);
}

/**
 * The webhook's key: the secret `incomingWebhookId`, which may also hold the whole webhook URL
 * (`https://chat.example.com/hooks/xxx`; only its key is used, and the host is `serverUrl`'s).
 */
function webhookKey(): string {
  const value = secret('incomingWebhookId').trim();
  const key = /\/hooks\/([^/?#]+)\/?$/.exec(value)?.[1] ?? value;
  if (!/^[A-Za-z0-9_-]+$/.test(key)) {
    throw new ConfigError('incomingWebhookId', 'must be the key at the end of the incoming webhook URL (letters and digits), or that URL');
  }
  return key;
}

/**
 * Where the post goes (the webhook's `channel`): the message's conversation (a channel name);
 * else its one recipient (`alice` or `@alice`: a direct message; `~town-square`: a channel);
 * else nothing, and the webhook posts to its own channel.
 */
export function channelOf(message: OutboundMessage): string | undefined {
  if (message.conversation_id !== undefined && message.conversation_id !== '') return message.conversation_id.replace(/^~/, '');
  const recipients = message.recipients ?? [];
  if (recipients.length > 1) {
    throw new PluginError(`a Mattermost post goes to one channel or one person, and the message names ${recipients.length} recipients and no conversation`);
  }
  if (recipients.length === 0) return undefined;
  const address = recipients[0].address.trim();
  if (address.startsWith('~')) return address.slice(1);
  return `@${address.replace(/^@/, '')}`;
}

/** The post's text: the subject (Mattermost has none) as a bold first line, then the text. */
export function postText(message: OutboundMessage): string {
  const subject = message.subject?.trim();
  const text = subject ? `**${subject}**\n\n${message.text ?? ''}` : message.text ?? '';
  if (text.trim() === '') throw new PluginError('the message has no text, and a Mattermost post needs some');
  return text;
}

/** The start of Mattermost's answer to a refused post: its `message` when it answered JSON. */
function refusal(body: string): string {
  try {
    const answer = JSON.parse(body) as { message?: unknown; id?: unknown };
    if (typeof answer.message === 'string') return typeof answer.id === 'string' ? `${answer.message} (${answer.id})` : answer.message;
  } catch {
    // Not JSON: the text itself.
  }
  return body.slice(0, 200);
}

/** Sends `message` through the incoming webhook; answers the sent message. */
export async function send(message: OutboundMessage): Promise<SentMessage> {
  const settings = config<SendSettings>();
  const server = configUrl(settings, 'serverUrl');
  const text = postText(message);
  const post: Record<string, string> = { text };
  const channel = channelOf(message);
  if (channel !== undefined) post.channel = channel;
  if (settings.username) post.username = settings.username;
  if (settings.iconUrl) post.icon_url = settings.iconUrl;

  const key = webhookKey();
  const what = `POST ${new URL(server).host}/hooks/${REDACTED}`;
  try {
    const response = await request({ method: 'POST', url: `${server}/hooks/${key}`, json: post, headers: { accept: 'application/json' } });
    if (!response.ok) throw new HttpError(response.status, `${what} answered ${response.status}: ${refusal(response.text())}`, response.retryAfterMs());
  } catch (error) {
    throw redacted(error, key);
  }
  log.info(`Sent message ${message.id}${channel === undefined ? " to the webhook's channel" : ` to ${channel}`}.`);
  return sentMessage({
    id: message.id,
    // The incoming webhook answers `ok` and no post id: the message's own id stands in.
    provider_message_id: `webhook:${message.id}`,
    status: 'sent',
    sent_at: utcNow(),
    ...(settings.username ? { sender: participant(settings.username) } : {}),
  });
}
