// JSON text and times crossing the boundary, with errors that say which value was wrong.

import { PluginError } from './errors';

/** `text` parsed; `PluginError` naming `what` when it is not JSON. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PluginError(`unreadable ${what} ${JSON.stringify(text.slice(0, 200))}: ${(error as Error).message}`);
  }
}

/** `value` as JSON text; `PluginError` naming `what` when it has no JSON form (a BigInt, a cycle). */
export function dumpJson(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new PluginError(`${what} is not JSON: ${(error as Error).message}`);
  }
  if (text === undefined) throw new PluginError(`${what} is not JSON: ${typeof value} has no JSON form`);
  return text;
}

/** An RFC 3339 date-time with a time zone, as the host reads it. */
const RFC_3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * `text` as RFC 3339: as it is when it is RFC 3339 already, else any time `Date.parse` reads
 * (such as an RFC 2822 date) converted to UTC; `PluginError` naming `what` otherwise.
 */
export function normalizeTime(text: unknown, what: string): string {
  if (typeof text === 'string' && RFC_3339.test(text)) return text;
  const ms = typeof text === 'string' ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new PluginError(`${what} must be an RFC 3339 time, found ${JSON.stringify(text)}`);
  return new Date(ms).toISOString();
}
