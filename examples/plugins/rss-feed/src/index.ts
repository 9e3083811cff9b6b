// com.example.rss-feed: RSS 2.0, RSS 1.0 and Atom 1.0 feeds as documents.
//
// One page per feed: `feedUrl` first, then each of `moreFeeds` (on the same host, which the
// one grant `network:outbound:${feedUrl}` covers). Each page fetches its feed — conditionally
// on an incremental sync, with the ETag and Last-Modified stored for it, so an unchanged feed
// costs a 304 — and hands over the entries that are new or changed since the checkpoint. An
// entry that leaves the feed is not deleted (src/state.ts says why).

import {
  ConfigError,
  PluginError,
  TransientError,
  cancelled,
  config,
  defineConnector,
  describeRequest,
  log,
  nowMs,
  request,
  upsert,
  type SyncRequest,
} from '@tributary/plugin';

import { CharsetError, decodeFeed } from './charset';
import { entryDocument } from './document';
import { FeedError, parseFeed } from './feed';
import { changes, emptyCheckpoint, readCheckpoint, type Checkpoint, type FeedState } from './state';

/** The instance's configuration (configSchema in plugin.json). */
interface Settings {
  /** The first feed's URL. */
  feedUrl?: unknown;
  /** More feeds on its host. */
  moreFeeds?: unknown;
}

/** One feed of the instance: where it is and its key in the checkpoint (path and query). */
interface FeedSource {
  /** The absolute URL fetched. */
  url: string;
  /** The path and query, which key the feed's state in the checkpoint. */
  key: string;
}

/** The token of the next page: which feed, and the checkpoint so far. */
interface Token {
  /** The index of the feed to read next. */
  feed: number;
  /** The checkpoint with every feed read so far. */
  checkpoint: Checkpoint;
}

/** What the connector asks for: feeds first, any XML after. */
const ACCEPT = 'application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1';

/** `value` as an http(s) URL, or a ConfigError naming `field`. */
function httpUrl(value: unknown, field: string, base?: string): URL {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(field, 'is required');
  let url: URL;
  try {
    url = new URL(value.trim(), base);
  } catch {
    throw new ConfigError(field, `is not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(field, `must be an http or https URL, found ${JSON.stringify(value)}`);
  if (url.hostname === '') throw new ConfigError(field, `must name a host, found ${JSON.stringify(value)}`);
  url.hash = '';
  return url;
}

/** The instance's feeds, checked: `feedUrl`, then `moreFeeds` (resolved against it, on its host). */
function feedsOf(settings: Settings): FeedSource[] {
  const first = httpUrl(settings.feedUrl, 'feedUrl');
  const urls = [first];
  const more = settings.moreFeeds ?? [];
  if (!Array.isArray(more)) throw new ConfigError('moreFeeds', 'must be a list of feed URLs (or paths on the host of feedUrl)');
  more.forEach((value, i) => {
    const url = httpUrl(value, `moreFeeds[${i}]`, first.href);
    if (url.hostname.toLowerCase() !== first.hostname.toLowerCase()) {
      throw new ConfigError(
        `moreFeeds[${i}]`,
        `is on ${url.hostname}, and the instance may reach only the host of feedUrl (${first.hostname}); install another instance for that feed`,
      );
    }
    urls.push(url);
  });
  const feeds: FeedSource[] = [];
  for (const [i, url] of urls.entries()) {
    const key = `${url.pathname}${url.search}`;
    const earlier = feeds.findIndex((f) => f.key === key);
    if (earlier !== -1) {
      const name = (n: number) => (n === 0 ? 'feedUrl' : `moreFeeds[${n - 1}]`);
      throw new ConfigError(name(i), `names the same feed as ${name(earlier)} (${key})`);
    }
    feeds.push({ url: url.href, key });
  }
  return feeds;
}

/** The checkpoint a sync starts from: the stored one on an incremental sync or a backfill, of the configured feeds only. */
function startingCheckpoint(syncRequest: SyncRequest<unknown>, feeds: FeedSource[]): Checkpoint {
  if (syncRequest.mode === 'full') return emptyCheckpoint();
  let stored: Checkpoint;
  try {
    stored = readCheckpoint(syncRequest.cursor);
  } catch (error) {
    throw new PluginError((error as Error).message);
  }
  const kept = emptyCheckpoint();
  for (const { key } of feeds) if (stored.feeds[key] !== undefined) kept.feeds[key] = stored.feeds[key];
  return kept;
}

/** Fetches and reads one feed; answers its items and its state afterwards. */
async function syncFeed(source: FeedSource, previous: FeedState | undefined, syncRequest: SyncRequest<unknown>) {
  const what = describeRequest('GET', source.url);
  const conditional = syncRequest.mode === 'incremental' && previous !== undefined;
  const headers: [string, string][] = [['accept', ACCEPT]];
  if (conditional && previous.etag !== undefined) headers.push(['if-none-match', previous.etag]);
  if (conditional && previous.lastModified !== undefined) headers.push(['if-modified-since', previous.lastModified]);

  const response = await request({ url: source.url, headers });
  if (response.status === 304) {
    if (!conditional) throw new PluginError(`${what} answered 304 Not Modified to a request that was not conditional`);
    log.info(`${source.key}: not modified`);
    return { items: [], state: previous };
  }
  response.ensureOk();

  let feed;
  try {
    feed = parseFeed(decodeFeed(response.body, response.header('content-type')), source.url);
  } catch (error) {
    if (error instanceof FeedError || error instanceof CharsetError) {
      throw new PluginError(`${what} answered something that is not a feed this connector reads: ${error.message}`);
    }
    throw error;
  }
  const sinceMs = syncRequest.since === null ? undefined : Date.parse(syncRequest.since);
  const { changed, entries } = await changes(feed, previous, syncRequest.mode, sinceMs, nowMs());
  // A backfill skips older entries, so the feed's validators stay those of the last full read.
  const validators = syncRequest.mode === 'backfill' ? previous : { etag: response.header('etag'), lastModified: response.header('last-modified') };
  const state: FeedState = { entries };
  if (validators?.etag !== undefined) state.etag = validators.etag;
  if (validators?.lastModified !== undefined) state.lastModified = validators.lastModified;
  log.info(`${source.key}: ${changed.length} of ${feed.entries.length} entries new or changed`);
  const items = changed.map(({ entry, version }) =>
    upsert('documents', entry.id, version, entryDocument(feed, entry), { format: feed.format, xml: entry.xml }),
  );
  return { items, state };
}

/** The `sync` export: one page per feed of the instance. */
export const sync = defineConnector<Token, unknown>({
  async nextPage(syncRequest, token) {
    if (cancelled()) throw new TransientError('the sync was cancelled');
    const feeds = feedsOf(config<Settings>());
    const index = token?.feed ?? 0;
    const checkpoint = token?.checkpoint ?? startingCheckpoint(syncRequest, feeds);
    const source = feeds[index];
    if (source === undefined) throw new PluginError(`the page token names feed ${index}, and the instance has ${feeds.length}`);

    const { items, state } = await syncFeed(source, checkpoint.feeds[source.key], syncRequest);
    checkpoint.feeds[source.key] = state;
    const next = index + 1 < feeds.length ? { feed: index + 1, checkpoint } : null;
    return { items, checkpoint, next };
  },
});
