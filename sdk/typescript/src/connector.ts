// The `sync` export of the `connector` world, from a definition in plain values.
//
// In `src/index.ts`:
//
//   export const sync = defineConnector({
//     async nextPage(request, token) {
//       …
//       return { items: [upsert('documents', id, modifiedAt, { title })], checkpoint: { since }, next: null };
//     },
//   });
//
// The host calls `nextPage` once per page. `defineConnector` turns the host's JSON text into
// values (`request.cursor`, `token`) and back (`checkpoint`, `next`, each item's `data` and
// `raw`), checks the items, and hands any error to the host as its WIT case: a `PluginError`
// as its own, any other thrown value as `other`, saying what was thrown where.

import type { Item as WitItem, Page as WitPage, SyncMode, SyncRequest as WitSyncRequest } from 'tributary:plugin/sync@0.1.0';
import type { PluginError as WitPluginError } from 'tributary:plugin/types@0.1.0';

import { PluginError, toPluginError } from './errors';
import { ENTITY_TYPES } from './items';
import type { Item, Page } from './items';
import { dumpJson, normalizeTime, parseJson } from './json';

export type { SyncMode };

/** How the host asked for this sync. */
export interface SyncRequest<C = unknown> {
  /**
   * `full` (read everything; the cursor is not handed over), `incremental` (continue from
   * the cursor) or `backfill` (everything modified since `since`).
   */
  mode: SyncMode;
  /** For a backfill: how far back, RFC 3339; else null. */
  since: string | null;
  /** The last checkpoint stored for the instance (the value a page's `checkpoint` was), or null. */
  cursor: C | null;
}

/** What a connector plugin defines: `T` is its page token's type, `C` its checkpoint's. */
export interface ConnectorDefinition<T = unknown, C = unknown> {
  /**
   * The next page of the sync `request`. `token` is null on the first call of a sync and
   * then the `next` of the page before. Ask `cancelled()` in a long loop.
   */
  nextPage(request: SyncRequest<C>, token: T | null): Page<T, C> | Promise<Page<T, C>>;
}

/** A WIT `result` as componentize-js takes it from an export. */
export type WitResult<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };

/** The `sync` interface as the component exports it. */
export interface SyncExport {
  /** `sync.next-page`: the WIT record in, the WIT result out. */
  nextPage(request: WitSyncRequest, token: string | undefined): Promise<WitResult<WitPage, WitPluginError>>;
}

/** Item `index` of a page in the WIT shape, checked. */
function witItem(item: Item, index: number): WitItem {
  if (item === null || typeof item !== 'object') {
    throw new PluginError(`item ${index} of the page is ${JSON.stringify(item)}, not an item (use upsert() or remove())`);
  }
  const name = `item ${index} (${String(item.entityType)} \`${String(item.externalId)}\`)`;
  if (!(ENTITY_TYPES as readonly string[]).includes(item.entityType)) {
    throw new PluginError(`${name}: the entity type must be one of ${ENTITY_TYPES.join(', ')}`);
  }
  if (typeof item.externalId !== 'string' || item.externalId === '') {
    throw new PluginError(`${name}: the external id must be a non-empty string`);
  }
  const operation = item.operation ?? 'upsert';
  if (operation !== 'upsert' && operation !== 'delete') {
    throw new PluginError(`${name}: the operation must be upsert or delete, found ${JSON.stringify(operation)}`);
  }
  const data = item.data ?? {};
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new PluginError(`${name}: data must be an object of the entity's fields`);
  }
  return {
    entityType: item.entityType,
    externalId: item.externalId,
    operation,
    sourceModifiedAt: normalizeTime(item.sourceModifiedAt, `${name}: sourceModifiedAt`),
    data: dumpJson(data, `${name}'s data`),
    raw: dumpJson(item.raw ?? null, `${name}'s raw payload`),
  };
}

/** A page in the WIT shape, checked. */
function witPage(page: Page<unknown, unknown>): WitPage {
  if (page === null || typeof page !== 'object' || !Array.isArray(page.items)) {
    throw new PluginError('nextPage must answer a page: {items: [...], checkpoint?, next?}');
  }
  const { checkpoint, next } = page;
  return {
    items: page.items.map(witItem),
    checkpoint: checkpoint === undefined || checkpoint === null ? undefined : dumpJson(checkpoint, 'the checkpoint'),
    next: next === undefined || next === null ? undefined : dumpJson(next, "the next page's token"),
  };
}

/**
 * The `sync` export of a connector: `export const sync = defineConnector({ nextPage })`.
 * See `ConnectorDefinition` for what `nextPage` gets and answers.
 */
export function defineConnector<T = unknown, C = unknown>(definition: ConnectorDefinition<T, C>): SyncExport {
  return {
    async nextPage(request, token) {
      try {
        const parsed: SyncRequest<C> = {
          mode: request.mode,
          since: request.since ?? null,
          cursor: request.cursor === undefined ? null : (parseJson(request.cursor, 'stored checkpoint') as C),
        };
        const parsedToken = token === undefined ? null : (parseJson(token, 'page token') as T);
        return { tag: 'ok', val: witPage(await definition.nextPage(parsed, parsedToken)) };
      } catch (error) {
        return { tag: 'err', val: toPluginError(error).toWit() };
      }
    },
  };
}
