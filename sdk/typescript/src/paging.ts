// Following a cursor chain, and retrying work that may pass.

import { HttpError, PluginError, TransientError, toPluginError } from './errors';
import { cancelled, log, sleepMs } from './host';

/** What one step of `paginate` answers: the page, and the cursor of the next (none ends the chain). */
export interface Step<P, C> {
  /** The page read. */
  page: P;
  /** The cursor of the next page; undefined or null when this page is the last. */
  next: C | null | undefined;
}

/**
 * The pages of a cursor chain: `fetch(cursor)` answers `{page, next}`; the first call gets
 * `first`, each later one the `next` before it; a `next` of null or undefined ends the chain.
 *
 * ```ts
 * for await (const comments of paginate(`${url}/comments`, async (pageUrl) => {
 *   const response = (await request({ url: pageUrl, auth: bearer('apiToken') })).ensureOk();
 *   return { page: response.json<Comment[]>(), next: response.links().next };
 * })) { … }
 * ```
 *
 * For walking a short chain inside one call (the comments of an issue, say). A connector's
 * own pages go through `nextPage`'s `next` token instead, so that the host publishes and
 * checkpoints each before asking for the next. Stops with `TransientError` when the host
 * cancels the call, and with `PluginError` when a cursor repeats the one before it (a chain
 * that would never end).
 */
export async function* paginate<P, C>(
  first: C,
  fetch: (cursor: C) => Step<P, C> | Promise<Step<P, C>>,
): AsyncGenerator<P, void, undefined> {
  let cursor = first;
  for (;;) {
    if (cancelled()) throw new TransientError('the call was cancelled');
    const { page, next } = await fetch(cursor);
    yield page;
    if (next === null || next === undefined) return;
    if (JSON.stringify(next) === JSON.stringify(cursor)) {
      throw new PluginError(`the cursor chain does not move on: ${JSON.stringify(next)} came back`);
    }
    cursor = next;
  }
}

/**
 * Whether `withRetry` tries again after `error` by default: a `TransientError`, or an
 * `HttpError` with status 429 or 5xx.
 */
export function isRetryable(error: PluginError): boolean {
  if (error instanceof TransientError) return true;
  return error instanceof HttpError && (error.status === 429 || error.status >= 500);
}

/** How `withRetry` retries. */
export interface RetryOptions {
  /** How many times to run the work in all (3 when left out). */
  attempts?: number;
  /** The first wait when the error asks for none, doubled each time (500 ms when left out). */
  baseMs?: number;
  /** The longest wait made (2000 ms when left out); an error asking for longer is thrown at once. */
  maxWaitMs?: number;
  /** Which errors to retry (`isRetryable` when left out). */
  retryIf?: (error: PluginError) => boolean;
}

/**
 * Runs `work()` up to `attempts` times while it throws an error `retryIf` accepts (by default
 * transient errors and 429/5xx `HttpError`), and answers what it returns.
 *
 * Between attempts it waits what the error asked for (`HttpError.retryAfterMs`, from
 * `Retry-After` in seconds or as an HTTP date) or else `baseMs` doubled each time (at most
 * `maxWaitMs`). A wait asked for over `maxWaitMs` is not made: the error is thrown at once, so
 * a sync fails (and the next resumes from its checkpoint) rather than asking a server again
 * before it said to.
 *
 * The host already retries 429 and 5xx answers inside `http-fetch` honouring `Retry-After`:
 * this helper is for guest-level work, such as a service that signals its rate limit with
 * another status (GitHub's 403), or several requests that must succeed together. A wait
 * watches the host's clock (`sleepMs`), so it counts against the call's CPU limit
 * (`limits.callCpuMs`, 5 s by default).
 *
 * ```ts
 * const issues = await withRetry(() => requestJson<Issue[]>({ url, auth: bearer('token') }),
 *   { retryIf: (e) => isRetryable(e) || (e instanceof HttpError && e.status === 403) });
 * ```
 */
export async function withRetry<T>(work: () => T | Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { attempts = 3, baseMs = 500, maxWaitMs = 2000, retryIf = isRetryable } = options;
  if (!Number.isSafeInteger(attempts) || attempts < 1) {
    throw new PluginError(`withRetry: attempts must be a whole number of at least 1, found ${attempts}`);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (thrown) {
      const error = toPluginError(thrown);
      if (attempt >= attempts || !retryIf(error)) throw error;
      const asked = error instanceof HttpError ? error.retryAfterMs : undefined;
      if (asked !== undefined && asked > maxWaitMs) throw error;
      const wait = asked ?? Math.min(maxWaitMs, baseMs * 2 ** (attempt - 1));
      log.warn(`Retrying after ${wait} ms (attempt ${attempt} of ${attempts}): ${error.message}`);
      sleepMs(wait);
    }
  }
}
