// A feed entry as a document of the unified model.

import type { DocumentFields } from '@tributary/plugin';

import type { Feed, FeedEntry } from './feed';

/**
 * The document for `entry` of `feed`: its title, link (`path`), body (`content`, HTML or plain
 * text as `mime_type` says: the ETL turns HTML into text for search) and date; the rest of
 * what the feed says of it in `extra`.
 */
export function entryDocument(feed: Feed, entry: FeedEntry): DocumentFields {
  const extra: Record<string, unknown> = {
    entry_id: entry.id,
    feed: { title: feed.title, link: feed.link, format: feed.format },
  };
  if (entry.published !== null) extra.published = entry.published;
  if (entry.updated !== null) extra.updated = entry.updated;
  if (entry.authors.length > 0) extra.authors = entry.authors;
  if (entry.categories.length > 0) extra.categories = entry.categories;
  if (entry.enclosures.length > 0) extra.enclosures = entry.enclosures;
  if (entry.summary !== null) extra.summary = entry.summary;
  if (entry.contentSource !== null) extra.content_src = entry.contentSource;
  return {
    title: entry.title,
    path: entry.link,
    mime_type: entry.contentType,
    content: entry.content,
    modified_at: entry.updated ?? entry.published,
    extra,
  };
}
