// The rest of the instance's context: logs, ids, time, randomness, the instance's store,
// events and the unified model. Every call goes through the host, which checks it against
// the permissions accepted for the instance; a refusal throws `PermissionDenied` naming the
// permission.

import {
  cancelled as hostCancelled,
  dataGet as hostDataGet,
  emitEvent as hostEmitEvent,
  instanceId as hostInstanceId,
  kvDelete as hostKvDelete,
  kvGet as hostKvGet,
  kvSet as hostKvSet,
  log as hostLog,
  nowMs as hostNowMs,
  pluginId as hostPluginId,
  randomBytes as hostRandomBytes,
} from 'tributary:plugin/host@0.1.0';

import { PluginError, TransientError, callHost } from './errors';
import type { EntityType } from './model';

/**
 * Log lines tagged with the plugin and the instance. Lines longer than the instance's limit
 * are cut, lines over its rate limit dropped and counted. `console.log` goes nowhere in a
 * component: use these.
 */
export const log = {
  /** Logs `message` at debug level. */
  debug(message: string): void {
    hostLog('debug', message);
  },
  /** Logs `message` at info level. */
  info(message: string): void {
    hostLog('info', message);
  },
  /** Logs `message` at warn level. */
  warn(message: string): void {
    hostLog('warn', message);
  },
  /** Logs `message` at error level. */
  error(message: string): void {
    hostLog('error', message);
  },
};

/** The plugin's id, such as `com.example.notes`. */
export function pluginId(): string {
  return hostPluginId();
}

/** The instance's id. */
export function instanceId(): string {
  return hostInstanceId();
}

/**
 * Milliseconds since the Unix epoch, from the host's clock. A component has no clock of its
 * own: `Date.now()` and `new Date()` there do not tell the time, so use this.
 */
export function nowMs(): number {
  return Number(hostNowMs());
}

/** Now, RFC 3339 in UTC (`2026-01-02T03:04:05.000Z`), from the host's clock. */
export function utcNow(): string {
  return formatTimeMs(nowMs());
}

/** `ms` since the epoch as RFC 3339 in UTC. */
export function formatTimeMs(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Milliseconds since the epoch of the time `text` (RFC 3339, or any form `Date.parse`
 * reads, such as an RFC 2822 date); `PluginError` naming `what` when it is not a time.
 */
export function parseTimeMs(text: string, what = 'the time'): number {
  const ms = typeof text === 'string' ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new PluginError(`${what} is not a time: ${JSON.stringify(text)}`);
  return ms;
}

/** Whether the host asked the running call to stop; a long loop should check it and return. */
export function cancelled(): boolean {
  return hostCancelled();
}

/**
 * Waits `ms` milliseconds, throwing `TransientError` if the host cancels the call.
 *
 * A component has no timer to sleep on (`setTimeout` traps): this watches the host's clock,
 * so the wait counts against the call's CPU limit (`limits.callCpuMs`, 5 s by default). Keep
 * waits short; `withRetry` caps them with `maxWaitMs`.
 */
export function sleepMs(ms: number): void {
  const until = nowMs() + Math.max(0, ms);
  while (nowMs() < until) {
    if (hostCancelled()) throw new TransientError('the call was cancelled while waiting');
  }
}

/**
 * `count` random bytes from the host (at most 1024). `Math.random` and
 * `crypto.getRandomValues` in a component are seeded when it is built, so they repeat: use
 * this where it matters.
 */
export function randomBytes(count: number): Uint8Array {
  return hostRandomBytes(count);
}

/** The value stored under `key` in the instance's own store, or undefined. */
export function kvGet(key: string): Uint8Array | undefined {
  return callHost(hostKvGet, key);
}

/** Stores `value` (bytes, or text stored as UTF-8) under `key` in the instance's own store. */
export function kvSet(key: string, value: Uint8Array | string): void {
  callHost(hostKvSet, key, typeof value === 'string' ? new TextEncoder().encode(value) : value);
}

/** Forgets `key` in the instance's own store. */
export function kvDelete(key: string): void {
  callHost(hostKvDelete, key);
}

/** Publishes `payload` (any JSON value) on `subject`, if an `event:publish` permission covers it. */
export function emitEvent(subject: string, payload: unknown): void {
  callHost(hostEmitEvent, subject, JSON.stringify(payload ?? null));
}

/**
 * The stored entity `id` (a UUID) of type `entity` of the unified model, as JSON, or
 * undefined when there is none; needs `data:read:<entity>`.
 */
export function dataGet(entity: EntityType, id: string): Record<string, unknown> | undefined {
  const text = callHost(hostDataGet, entity, id);
  return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
}
