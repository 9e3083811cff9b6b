// HTTP through the host's `http-fetch`: the host checks the URL against the manifest's
// `network:outbound` grants (and every redirect again), retries 429 and 5xx honouring
// `Retry-After`, applies the instance's rate limit, and attaches secrets the plugin never
// reads (`auth: bearer("apiToken")`).
//
// The standard `fetch()` works in connectors too (checked against the same grants), but it
// cannot attach a secret without reading it: use `request` for anything authenticated, and in
// channels, whose components have no `fetch()`.

import { httpFetch } from 'tributary:plugin/host@0.1.0';
import type { SecretAuth } from 'tributary:plugin/host@0.1.0';

import { HttpError, PluginError, TransientError, toPluginError } from './errors';
import { nowMs } from './host';

export type { SecretAuth };

/** `Authorization: Bearer <the secret field `field`>`, attached by the host. */
export function bearer(field: string): SecretAuth {
  return { tag: 'bearer', val: field };
}

/** `Authorization: Basic` of `user` and the secret field `passwordField`, attached by the host. */
export function basic(user: string, passwordField: string): SecretAuth {
  return { tag: 'basic', val: { user, passwordField } };
}

/** The header `name` carrying the secret field `field`'s value, attached by the host. */
export function header(name: string, field: string): SecretAuth {
  return { tag: 'header', val: { name, field } };
}

/** `GET api.example.com/notes`: method, host and path, without the query (it may hold a key). */
export function describeRequest(method: string, url: string): string {
  try {
    const parsed = new URL(url);
    return `${method.toUpperCase()} ${parsed.host}${parsed.pathname || '/'}`;
  } catch {
    return `${method.toUpperCase()} ${url.replace(/[?#].*$/, '')}`;
  }
}

/** An answer of any status: `status`, `headers` (names lower-case, in order), the body. */
export class Response {
  /** The answer to `method url`, as the host handed it over. */
  constructor(
    /** The request's method. */
    readonly method: string,
    /** The request's URL. */
    readonly url: string,
    /** The HTTP status. */
    readonly status: number,
    /** The headers as [lower-case name, value] pairs, in the order received. */
    readonly headers: [string, string][],
    /** The body as received. */
    readonly body: Uint8Array,
  ) {}

  /** Whether the status is 2xx. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The first value of the header `name` (any case), or undefined. */
  header(name: string): string | undefined {
    const wanted = name.toLowerCase();
    return this.headers.find(([key]) => key === wanted)?.[1];
  }

  /** The body as UTF-8 text (undecodable bytes replaced). */
  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON; `PluginError` naming the request when it is not JSON. */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (error) {
      throw new PluginError(
        `${describeRequest(this.method, this.url)} answered something that is not JSON: ${(error as Error).message}`,
      );
    }
  }

  /** The `Link` header's URLs by relation: `{next: "https://…?page=2", last: …}`. */
  links(): Record<string, string> {
    return parseLinkHeader(this.header('link') ?? '');
  }

  /** The wait `Retry-After` asks for, in milliseconds (seconds or an HTTP date), or undefined. */
  retryAfterMs(): number | undefined {
    const value = this.header('retry-after');
    return value === undefined ? undefined : parseRetryAfterMs(value, nowMs());
  }

  /**
   * This response if its status is 2xx; otherwise `HttpError` with the status, naming method,
   * host and path, starting the body, and carrying `Retry-After` for `withRetry`.
   */
  ensureOk(): this {
    if (this.ok) return this;
    const start = this.text().slice(0, 200);
    throw new HttpError(
      this.status,
      `${describeRequest(this.method, this.url)} answered ${this.status}: ${start}`,
      this.retryAfterMs(),
    );
  }
}

/** A query parameter's value; undefined and null leave the parameter out. */
export type QueryValue = string | number | boolean | undefined | null;

/** What `request` sends. */
export interface RequestOptions {
  /** `GET` when left out. */
  method?: string;
  /** The absolute URL; its host must be granted by a `network:outbound` permission. */
  url: string;
  /** Query parameters added to the URL (encoded here), in order. */
  query?: Record<string, QueryValue>;
  /** Request headers, as an object or as [name, value] pairs. */
  headers?: Record<string, string> | [string, string][];
  /** The body, as text (sent as UTF-8) or bytes. */
  body?: string | Uint8Array;
  /** A value to send as JSON, with `content-type: application/json` unless a header says otherwise. */
  json?: unknown;
  /** A secret the host attaches: `bearer(field)`, `basic(user, field)` or `header(name, field)`. */
  auth?: SecretAuth;
  /** The whole exchange's timeout; the instance's default when left out. */
  timeoutMs?: number;
}

/** `url` with the parameters of `query` added. */
function withQuery(url: string, query: Record<string, QueryValue> | undefined): string {
  if (query === undefined) return url;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.append(name, String(value));
  }
  const text = params.toString();
  if (text === '') return url;
  const [base, fragment] = url.split('#', 2);
  const joined = `${base}${base.includes('?') ? '&' : '?'}${text}`;
  return fragment === undefined ? joined : `${joined}#${fragment}`;
}

/**
 * Sends an HTTP request through the host and answers its response, whatever its status
 * (`.ensureOk()` turns an error status into `HttpError`; `requestJson` does both).
 *
 * A refusal throws `PermissionDenied` naming the permission; no answer at all throws
 * `TransientError` naming the request; a limit reached throws `LimitExceeded`.
 */
export async function request(options: RequestOptions): Promise<Response> {
  const method = (options.method ?? 'GET').toUpperCase();
  const url = withQuery(options.url, options.query);
  const headers: [string, string][] = Array.isArray(options.headers)
    ? [...options.headers]
    : Object.entries(options.headers ?? {});
  let body = options.body;
  if (options.json !== undefined) {
    if (body !== undefined) throw new PluginError('request: give `body` or `json`, not both');
    body = JSON.stringify(options.json);
    if (!headers.some(([name]) => name.toLowerCase() === 'content-type')) {
      headers.push(['content-type', 'application/json']);
    }
  }
  let answer;
  try {
    answer = httpFetch({
      method,
      url,
      headers: headers.map(([name, value]) => ({ name, value })),
      body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
      auth: options.auth,
      timeoutMs: options.timeoutMs,
    });
  } catch (thrown) {
    const error = toPluginError(thrown);
    if (error instanceof TransientError) {
      throw new TransientError(`${describeRequest(method, url)} got no answer: ${error.message}`);
    }
    throw error;
  }
  const received: [string, string][] = answer.headers.map((h) => [h.name.toLowerCase(), h.value]);
  return new Response(method, url, answer.status, received, answer.body);
}

/** `request(options)`, checked with `ensureOk()`, its body parsed as JSON. */
export async function requestJson<T = unknown>(options: RequestOptions): Promise<T> {
  const headers = Array.isArray(options.headers) ? options.headers : Object.entries(options.headers ?? {});
  const accepts = headers.some(([name]) => name.toLowerCase() === 'accept');
  const withAccept = accepts ? headers : [...headers, ['accept', 'application/json'] as [string, string]];
  return (await request({ ...options, headers: withAccept })).ensureOk().json<T>();
}

/** `<url>; rel="next"` and its parameters, one link of a `Link` header each. */
const LINK = /<([^>]*)>\s*((?:;\s*[^;,]*)*)/g;
/** One `name=value` or `name="value"` parameter of a link. */
const LINK_PARAM = /;\s*([A-Za-z0-9!#$&+.^_`|~-]+)\s*=\s*(?:"([^"]*)"|([^;,\s]*))/g;

/** The URLs of an RFC 8288 `Link` header by relation (a `rel` naming several counts for each; the first link of a relation wins). */
export function parseLinkHeader(value: string): Record<string, string> {
  const links: Record<string, string> = {};
  for (const [, target, params] of value.matchAll(LINK)) {
    for (const [, name, quoted, bare] of params.matchAll(LINK_PARAM)) {
      if (name.toLowerCase() !== 'rel') continue;
      for (const rel of (quoted ?? bare ?? '').split(/\s+/)) {
        if (rel !== '' && !(rel.toLowerCase() in links)) links[rel.toLowerCase()] = target;
      }
    }
  }
  return links;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/** An IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`) or its obsolete RFC 850 form. */
const HTTP_DATE = /^\s*(?:[A-Za-z]{3,9},\s*)?(\d{1,2})[ -]([A-Za-z]{3})[ -](\d{2,4})\s+(\d{2}):(\d{2}):(\d{2})\s*(?:GMT|UTC)?\s*$/;

/**
 * The wait `Retry-After: value` asks for at `now` (ms since the epoch), in milliseconds:
 * delay seconds or an HTTP date (a date past is no wait); undefined when it is neither.
 */
export function parseRetryAfterMs(value: string, now: number): number | undefined {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const match = HTTP_DATE.exec(text);
  if (match === null) return undefined;
  const [, day, monthName, yearText, hour, minute, second] = match;
  const month = MONTHS.indexOf(monthName.toLowerCase());
  if (month < 0) return undefined;
  let year = Number(yearText);
  if (year < 100) year += year < 70 ? 2000 : 1900;
  const at = Date.UTC(year, month, Number(day), Number(hour), Number(minute), Number(second));
  if (new Date(at).getUTCDate() !== Number(day)) return undefined;
  return Math.max(0, at - now);
}
