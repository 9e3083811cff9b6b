// The instance's configuration and secrets, and checks that name the field that is wrong.

import { config as hostConfig, secret as hostSecret } from 'tributary:plugin/host@0.1.0';

import { ConfigError, PluginError, callHost } from './errors';

/**
 * The instance's configuration, parsed, without its secret (`writeOnly`) fields; give the
 * type of your configSchema as `S` (`config<{ baseUrl?: string }>()`; it is not checked here,
 * the host checked the config against the schema).
 *
 * Read a secret with `secret(field)`, or better have the host attach it to a request
 * (`request({ …, auth: bearer("apiToken") })`) so the plugin never holds it.
 */
export function config<S extends object = Record<string, unknown>>(): S {
  let value: unknown;
  try {
    value = JSON.parse(hostConfig());
  } catch (error) {
    throw new PluginError(`the host's config is not JSON: ${(error as Error).message}`);
  }
  return (value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {}) as S;
}

/**
 * The value of the secret config field `field`: an explicit read, which the host logs.
 * Throws `ConfigError` when it is not set and `PermissionDenied` when `field` is not a
 * `writeOnly` property of the plugin's configSchema.
 */
export function secret(field: string): string {
  return callHost(hostSecret, field);
}

/** Whether a config value counts as given: not undefined, null or the empty string. */
function given(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/**
 * `settings[key]`, or `ConfigError(key, "is required")` when it is missing, null or empty:
 * `const team = requireConfig(settings, "team")`.
 */
export function requireConfig<S extends object, K extends keyof S & string>(settings: S, key: K): NonNullable<S[K]> {
  const value = settings[key];
  if (!given(value)) throw new ConfigError(key, 'is required');
  return value as NonNullable<S[K]>;
}

/** The text in `settings[key]` (or `fallback`); `ConfigError` naming `key` when it is missing or not a string. */
export function configString(settings: object, key: string, fallback?: string): string {
  const raw = (settings as Record<string, unknown>)[key];
  const value = given(raw) ? raw : fallback;
  if (!given(value)) throw new ConfigError(key, 'is required');
  if (typeof value !== 'string') throw new ConfigError(key, `must be a string, found ${JSON.stringify(value)}`);
  return value;
}

/**
 * The http(s) URL in `settings[key]` (or `fallback`) without a trailing slash; `ConfigError`
 * naming `key` when it is missing or not an http or https URL with a host.
 */
export function configUrl(settings: object, key: string, fallback?: string): string {
  const value = configString(settings, key, fallback);
  const match = /^https?:\/\/([^/?#]*)/i.exec(value);
  if (match === null) throw new ConfigError(key, `must be an http or https URL, found ${JSON.stringify(value)}`);
  if (match[1] === '') throw new ConfigError(key, `must name a host, found ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, '');
}

/**
 * The whole number in `settings[key]` (or `fallback`), from `minimum` to `maximum`;
 * `ConfigError` naming `key` otherwise.
 */
export function configInt(settings: object, key: string, fallback: number, minimum: number, maximum: number): number {
  const raw = (settings as Record<string, unknown>)[key];
  const value = raw === undefined || raw === null ? fallback : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    throw new ConfigError(key, `must be a whole number from ${minimum} to ${maximum}, found ${JSON.stringify(value)}`);
  }
  return value;
}
