// What the connector remembers of each feed between syncs (the checkpoint), and which entries
// of a freshly fetched feed that makes worth handing over.
//
// Per feed: its validators for a conditional GET (ETag, Last-Modified) and, for each entry now
// in the feed, the version handed over and a hash of its XML (the first 64 bits of its SHA-256:
// Web Crypto runs natively, where a hash written in JavaScript is interpreted and took seconds
// on a 1 MB feed). An entry is handed over when its
// id is new or its XML changed; an entry that left the feed is forgotten, and not deleted: a
// feed is a window on the latest entries, so leaving it is what every entry does in time.

import { sha256, toHex } from '@tributary/plugin';

import { rfc3339 } from './dates';
import type { Feed, FeedEntry } from './feed';

/** What was handed over of one entry. */
export interface EntryRecord {
  /** Its version (`source_modified_at`), RFC 3339. */
  v: string;
  /** The hash of its XML: 16 hex digits, the start of its SHA-256. */
  h: string;
}

/** What the connector knows of one feed. */
export interface FeedState {
  /** The ETag it last answered with, for If-None-Match. */
  etag?: string;
  /** The Last-Modified it last answered with, for If-Modified-Since. */
  lastModified?: string;
  /** The entries in the feed when it was last read, by id. */
  entries: Record<string, EntryRecord>;
}

/** The checkpoint: every feed of the instance by its key (its path and query). */
export interface Checkpoint {
  /** The shape's version. */
  v: 1;
  /** The feeds, by key. */
  feeds: Record<string, FeedState>;
}

/** How a sync was asked to run. */
export type SyncMode = 'incremental' | 'full' | 'backfill';

/** An entry to hand over, with its version. */
export interface Change {
  /** The entry. */
  entry: FeedEntry;
  /** Its `source_modified_at`, RFC 3339. */
  version: string;
}

/** A checkpoint of the wrong shape: a full sync rebuilds it. */
export class CheckpointError extends Error {
  /** Creates the error; `problem` says what is wrong. */
  constructor(problem: string) {
    super(`unreadable checkpoint (${problem}); a full sync rebuilds it`);
    this.name = 'CheckpointError';
  }
}

/** An empty checkpoint. */
export function emptyCheckpoint(): Checkpoint {
  return { v: 1, feeds: {} };
}

/** `cursor` (the stored checkpoint, parsed) checked; an empty one when there is none. */
export function readCheckpoint(cursor: unknown): Checkpoint {
  if (cursor === null || cursor === undefined) return emptyCheckpoint();
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(cursor) || cursor.v !== 1 || !isObject(cursor.feeds)) throw new CheckpointError('expected {"v": 1, "feeds": {…}}');
  for (const [key, feed] of Object.entries(cursor.feeds)) {
    if (!isObject(feed) || !isObject(feed.entries)) throw new CheckpointError(`feed ${JSON.stringify(key)} has no entries`);
    for (const field of ['etag', 'lastModified'] as const) {
      if (feed[field] !== undefined && typeof feed[field] !== 'string') throw new CheckpointError(`feed ${JSON.stringify(key)}: ${field} is not a string`);
    }
    for (const [id, record] of Object.entries(feed.entries)) {
      if (!isObject(record) || typeof record.v !== 'string' || typeof record.h !== 'string') {
        throw new CheckpointError(`feed ${JSON.stringify(key)}: entry ${JSON.stringify(id)} is not {"v", "h"}`);
      }
    }
  }
  return cursor as unknown as Checkpoint;
}

/** The hash of an entry's XML that tells whether it changed. */
export async function entryHash(entry: FeedEntry): Promise<string> {
  return toHex((await sha256(entry.xml)).subarray(0, 8));
}

/** The entry's own date: when it last changed, else when it was published; NaN when it has neither. */
function ownDate(entry: FeedEntry): number {
  return Date.parse(entry.updated ?? entry.published ?? '');
}

/**
 * Which entries of `feed` to hand over, and the feed's state afterwards.
 *
 * - `incremental`: those whose id is new or whose XML changed since `previous`.
 * - `full`: all of them.
 * - `backfill`: those whose own date is at or after `sinceMs`, and those without a date.
 *
 * An entry's version is its own date (updated, else published); an entry with neither keeps the
 * version it was first handed over with while it is unchanged, and takes `nowMs` when it changes.
 * The state keeps the entries now in the feed (`previous`'s records of those not handed over
 * in a backfill) and nothing of those that left it.
 */
export async function changes(
  feed: Feed,
  previous: FeedState | undefined,
  mode: SyncMode,
  sinceMs: number | undefined,
  nowMs: number,
): Promise<{ changed: Change[]; entries: Record<string, EntryRecord> }> {
  const changed: Change[] = [];
  const entries: Record<string, EntryRecord> = {};
  for (const entry of feed.entries) {
    const h = await entryHash(entry);
    const before = previous?.entries[entry.id];
    const own = ownDate(entry);
    const version = !Number.isNaN(own) ? rfc3339(own) : before && before.h === h ? before.v : rfc3339(nowMs);
    let wanted: boolean;
    if (mode === 'incremental') wanted = before === undefined || before.h !== h;
    else if (mode === 'full') wanted = true;
    else wanted = Number.isNaN(own) || sinceMs === undefined || own >= sinceMs;
    if (wanted) {
      changed.push({ entry, version });
      entries[entry.id] = { v: version, h };
    } else if (before !== undefined) {
      entries[entry.id] = before;
    }
  }
  return { changed, entries };
}
