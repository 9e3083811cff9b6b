// Items of the unified model, as a connector hands them to the host.

import type { EntityType, FieldsOf } from './model';

/**
 * The entity types an item may have; each needs `data:write:<type>` in the manifest.
 * (`ENTITY_TYPES_COMPLETE` below fails to compile when the model gains one this lacks.)
 */
export const ENTITY_TYPES = [
  'persons',
  'organizations',
  'conversations',
  'messages',
  'calendar_events',
  'documents',
] as const satisfies readonly EntityType[];

/** True exactly when `ENTITY_TYPES` names every entity type of the model. */
const ENTITY_TYPES_COMPLETE: Exclude<EntityType, (typeof ENTITY_TYPES)[number]> extends never ? true : never = true;
void ENTITY_TYPES_COMPLETE;

/** Upsert (create or update) or tombstone. */
export type ItemOperation = 'upsert' | 'delete';

/** What every item has. */
interface ItemBase<E extends EntityType> {
  /** Which entity of the unified model it is. */
  entityType: E;
  /** The source's own id for it. */
  externalId: string;
  /** The source's version, RFC 3339 (a late older version never overwrites a newer one). */
  sourceModifiedAt: string;
  /** The payload as the source returned it (any JSON value; null when left out). */
  raw?: unknown;
}

/** An item creating or updating an entity with `data`, its fields (`DocumentFields`, …). */
export interface UpsertItem<E extends EntityType = EntityType> extends ItemBase<E> {
  /** `upsert`, the default. */
  operation?: 'upsert';
  /** The entity's fields. */
  data: FieldsOf[E];
}

/** A tombstone: the entity was deleted at the source. */
export interface DeleteItem<E extends EntityType = EntityType> extends ItemBase<E> {
  /** `delete`. */
  operation: 'delete';
  /** Whatever fields are still known (usually none). */
  data?: Partial<FieldsOf[E]>;
}

/** One item: an upsert or a tombstone of one entity; `data` is typed by `entityType`. */
export type Item<E extends EntityType = EntityType> = { [K in E]: UpsertItem<K> | DeleteItem<K> }[E];

/** An item creating or updating the entity `externalId` of `entityType` with `data`. */
export function upsert<E extends EntityType>(
  entityType: E,
  externalId: string | number,
  modifiedAt: string,
  data: FieldsOf[E],
  raw?: unknown,
): UpsertItem<E> {
  return { entityType, externalId: String(externalId), operation: 'upsert', sourceModifiedAt: modifiedAt, data, raw };
}

/** A tombstone: the entity `externalId` of `entityType` was deleted at the source at `modifiedAt`. */
export function remove<E extends EntityType>(
  entityType: E,
  externalId: string | number,
  modifiedAt: string,
  raw?: unknown,
): DeleteItem<E> {
  return { entityType, externalId: String(externalId), operation: 'delete', sourceModifiedAt: modifiedAt, data: {}, raw };
}

/**
 * What `nextPage` answers: items, an optional checkpoint, an optional next token.
 *
 * `checkpoint` (any JSON value; null or left out for none) is stored by the host once every
 * item up to here is published, and handed back as `request.cursor` on the next sync and
 * after a crash. `next` (any JSON value) is handed back as `token` for the next page; null or
 * left out ends the sync.
 */
export interface Page<T = unknown, C = unknown> {
  /** The items of this page. */
  items: Item[];
  /** The cursor to store once these items are published. */
  checkpoint?: C | null;
  /** The token of the next page; none when this is the last. */
  next?: T | null;
}
