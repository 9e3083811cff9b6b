// Generated from proto/wit (world `connector`) by `jco guest-types` through sdk/typescript/scripts/generate-types.mjs; do not edit.
/// <reference path="./tributary-plugin-types.d.ts" />
declare module 'tributary:plugin/sync@0.1.0' {
  /**
   * The next page of a sync. The first call has `token` none; each later one gets the
   * page before's `next`. The host asks for a page only when it has published the one
   * before (that is the backpressure).
   */
  export function nextPage(request: SyncRequest, token: Json | undefined): Page;
  export type Json = import('tributary:plugin/types@0.1.0').Json;
  export type PluginError = import('tributary:plugin/types@0.1.0').PluginError;
  /**
   * How a sync was asked to run.
   * # Variants
   * 
   * ## `"incremental"`
   * 
   * ## `"full"`
   * 
   * ## `"backfill"`
   */
  export type SyncMode = 'incremental' | 'full' | 'backfill';
  /**
   * The sync the host runs.
   */
  export interface SyncRequest {
    mode: SyncMode,
    /**
     * For a backfill: how far back, RFC 3339.
     */
    since?: string,
    /**
     * The last checkpoint stored for the instance (none on a first or full sync).
     */
    cursor?: Json,
  }
  /**
   * Upsert or tombstone.
   * # Variants
   * 
   * ## `"upsert"`
   * 
   * ## `"delete"`
   */
  export type ItemOperation = 'upsert' | 'delete';
  /**
   * One item of the unified model, as the connector mapped it.
   */
  export interface Item {
    /**
     * `persons`, `organizations`, `conversations`, `messages`, `calendar_events` or
     * `documents`.
     */
    entityType: string,
    /**
     * The source's own id for it.
     */
    externalId: string,
    operation: ItemOperation,
    /**
     * The source's version, RFC 3339.
     */
    sourceModifiedAt: string,
    /**
     * The entity's fields (the contract's `PersonFields`, `DocumentFields`, …).
     */
    data: Json,
    /**
     * The payload as the source returned it.
     */
    raw: Json,
  }
  /**
   * One page of a sync.
   */
  export interface Page {
    items: Array<Item>,
    /**
     * Every item up to here was handed over: the host stores this cursor and resumes
     * from it after a crash.
     */
    checkpoint?: Json,
    /**
     * The guest's own continuation for the next page; none ends the sync.
     */
    next?: Json,
  }
}
