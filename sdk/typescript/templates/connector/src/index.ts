// The connector: the notes of a JSON notes API as documents.
//
// The API (change this to yours):
//   GET <baseUrl>/notes[?updated_since=<RFC 3339>][&cursor=<next_cursor>]
//   Authorization: Bearer <apiToken>
//   → {"notes": [{"id", "title", "body"?, "tags"?, "updated_at", "deleted"?}], "next_cursor": "…" | null}
// Notes come oldest change first; `updated_since` is inclusive; a note with `"deleted": true`
// was deleted.
//
// The host calls `nextPage` once per page and publishes its items before asking for the next:
// the first call reads the first page (`token` null), each later one the page the token names.
// Each page's checkpoint, `{since}`, is the newest `updated_at` handed over so far; the host
// stores it, and the next incremental sync reads only the notes updated since.

import { PluginError, bearer, config, configUrl, defineConnector, log, remove, requestJson, upsert } from '@tributary/plugin';
import type { Item } from '@tributary/plugin';

/** The instance's configuration, as plugin.json's configSchema describes it (`apiToken` is a secret the host keeps). */
interface Settings {
  baseUrl?: string;
}

/** A note, as the API answers it. */
interface Note {
  id: string;
  title: string;
  body?: string;
  tags?: string[];
  updated_at: string;
  deleted?: boolean;
}

/** One page of the API's answer. */
interface NotesPage {
  notes: Note[];
  next_cursor?: string | null;
}

/** What the host stores between syncs: the newest `updated_at` handed over. */
interface Checkpoint {
  since: string;
}

/** Where the next page of this sync starts, and what the sync has seen so far. */
interface Token {
  /** The API's cursor of the next page. */
  cursor: string;
  /** The `updated_since` of this sync's requests, or null for all notes. */
  since: string | null;
  /** The newest `updated_at` handed over so far, or null. */
  newest: string | null;
}

/** The later of two RFC 3339 times (either may be null). */
function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/** The item of `note`: a document, or a tombstone when the note was deleted. */
function itemOf(note: Note, where: string): Item {
  if (typeof note?.id !== 'string' || typeof note.title !== 'string' || Number.isNaN(Date.parse(note.updated_at))) {
    throw new PluginError(`${where} is not a note: it needs an "id", a "title" and an RFC 3339 "updated_at"`);
  }
  if (note.deleted === true) return remove('documents', note.id, note.updated_at, note);
  return upsert(
    'documents',
    note.id,
    note.updated_at,
    {
      title: note.title,
      content: note.body ?? '',
      path: `notes/${note.id}`,
      mime_type: 'text/markdown',
      modified_at: note.updated_at,
      extra: { tags: note.tags ?? [] },
    },
    note,
  );
}

/** The `sync` export of the `connector` world. */
export const sync = defineConnector<Token, Checkpoint>({
  async nextPage(request, token) {
    const baseUrl = configUrl(config<Settings>(), 'baseUrl');
    const stored = request.cursor?.since ?? null;
    // A full sync reads every note; an incremental one the notes updated since the
    // checkpoint; a backfill those updated since the time it was asked for.
    let since: string | null = null;
    if (request.mode === 'incremental') since = stored;
    if (request.mode === 'backfill') since = request.since;
    if (token !== null) since = token.since;
    if (token === null) log.info(`Syncing notes from ${baseUrl} (${request.mode})${since ? ` updated since ${since}` : ''}.`);

    const answer = await requestJson<NotesPage>({
      url: `${baseUrl}/notes`,
      query: { updated_since: since, cursor: token?.cursor },
      auth: bearer('apiToken'),
    });
    if (!Array.isArray(answer?.notes)) throw new PluginError(`GET ${baseUrl}/notes answered JSON without a "notes" list`);

    let newest = token?.newest ?? (request.mode === 'full' ? null : stored);
    const items = answer.notes.map((note, i) => {
      const item = itemOf(note, `note ${i} of the page`);
      newest = later(newest, note.updated_at);
      return item;
    });
    // A backfill that starts after the stored checkpoint has not read what lies between: it
    // leaves the checkpoint where it was (the next incremental sync reads from there).
    const gap = request.mode === 'backfill' && stored !== null && since !== null && Date.parse(since) > Date.parse(stored);
    const checkpoint = gap ? request.cursor : newest === null ? null : { since: newest };
    const next = answer.next_cursor ? { cursor: answer.next_cursor, since, newest } : null;
    return { items, checkpoint, next };
  },
});
