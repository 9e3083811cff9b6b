// A stand-in for the host's `tributary:plugin/host@0.1.0` imports, for the SDK's tests under
// node: scripts/test.mjs bundles the tests with this module in the import's place. `state`
// holds what the host answers and records what the guest asked.

import type { HttpRequest, HttpResponse, LogLevel } from 'tributary:plugin/host@0.1.0';
import type { PluginError } from 'tributary:plugin/types@0.1.0';

/** What the stub host answers, and what it was asked. */
export const state = {
  /** The instance's configuration without secrets. */
  config: {} as Record<string, unknown>,
  /** The secret fields' values. */
  secrets: {} as Record<string, string>,
  /** Answers an http-fetch; undefined refuses it as the host refuses an ungranted host. */
  fetch: undefined as ((request: HttpRequest) => HttpResponse) | undefined,
  /** The requests asked for, in order. */
  requests: [] as HttpRequest[],
  /** The log lines written, `level: message`. */
  logs: [] as string[],
  /** The host's clock in ms; every nowMs() moves it on by `tickMs`. */
  now: Date.UTC(2026, 0, 10, 12),
  /** How far each nowMs() moves the clock. */
  tickMs: 1,
  /** What cancelled() answers. */
  cancelled: false,
};

/** Puts the stub back as it started, with `config`, `secrets` and `fetch`. */
export function reset(setup: { config?: Record<string, unknown>; secrets?: Record<string, string>; fetch?: (request: HttpRequest) => HttpResponse } = {}): void {
  state.config = setup.config ?? {};
  state.secrets = setup.secrets ?? {};
  state.fetch = setup.fetch;
  state.requests = [];
  state.logs = [];
  state.now = Date.UTC(2026, 0, 10, 12);
  state.tickMs = 1;
  state.cancelled = false;
}

/** An `err` of an import, thrown the way componentize-js throws it: an Error whose own `payload` is the plugin-error. */
export function hostError(payload: PluginError): Error {
  const error = new Error(`${JSON.stringify(payload)} (see error.payload)`);
  Object.defineProperty(error, 'payload', { value: payload, enumerable: true });
  return error;
}

/** An answer of `status` with a JSON or text body and `headers`. */
export function answer(status: number, body: unknown = '', headers: Record<string, string> = {}): HttpResponse {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return { status, headers: Object.entries(headers).map(([name, value]) => ({ name, value })), body: new TextEncoder().encode(text) };
}

export const pluginId = (): string => 'com.example.test';
export const instanceId = (): string => 'test-1';
export const config = (): string => JSON.stringify(state.config);
export function secret(field: string): string {
  if (!(field in state.secrets)) throw hostError({ tag: 'config', val: { field, message: 'is not set' } });
  return state.secrets[field];
}
export function log(level: LogLevel, message: string): void {
  state.logs.push(`${level}: ${message}`);
}
export function httpFetch(request: HttpRequest): HttpResponse {
  state.requests.push(request);
  if (state.fetch === undefined) throw hostError({ tag: 'denied', val: `network:outbound:${new URL(request.url).hostname}` });
  return state.fetch(request);
}
export function emitEvent(subject: string): void {
  throw hostError({ tag: 'denied', val: `event:publish:${subject}` });
}
export const dataGet = (): string | undefined => undefined;
export const kvGet = (): Uint8Array | undefined => undefined;
export const kvSet = (): void => {};
export const kvDelete = (): void => {};
export function nowMs(): bigint {
  state.now += state.tickMs;
  return BigInt(state.now);
}
export const randomBytes = (len: number): Uint8Array => new Uint8Array(len);
export const cancelled = (): boolean => state.cancelled;
