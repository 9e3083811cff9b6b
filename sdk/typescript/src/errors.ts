// Errors the host understands: the WIT `plugin-error` variant as JavaScript errors.
//
// Throw one of these from a connector's `nextPage` or a channel's `handleIncoming` /
// `sendMessage` and the host sees the matching case:
//
//   class               WIT case                    when
//   PermissionDenied    denied(permission)          the host refused a call
//   LimitExceeded       limit(what)                 a sandbox limit was reached
//   ConfigError         config{field, message}      a config field is missing or wrong
//   HttpError           http{status, message}       the remote service answered an error
//   TransientError      transient(message)          it may pass: a timeout, a refused connection
//   PluginError         other(message)              anything else
//
// An error a host call answers (`secret`, `http-fetch`, `emit-event` …) arrives as the
// matching class, so a refusal caught and thrown again keeps its `denied` case and the
// permission text the host gave.

import type { PluginError as WitPluginError } from 'tributary:plugin/types@0.1.0';

/** The WIT cases of `plugin-error`: `denied`, `limit`, `config`, `http`, `transient`, `other`. */
export type PluginErrorKind = WitPluginError['tag'];

/**
 * A failure the host records as the sync's or the call's error. Thrown as it is, it is the
 * `other` case; its subclasses are the other cases.
 *
 * Each instance has an own `payload` property holding its WIT value, which is how
 * componentize-js recognises a thrown value as a result's `err`: even thrown straight out of
 * a hand-written export, it reaches the host as its case rather than as a trap.
 */
export class PluginError extends Error {
  /** The WIT case this error stands for. */
  readonly kind: PluginErrorKind = 'other';

  /** An error of the `other` case saying `message`. */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
    Object.defineProperty(this, 'payload', { get: () => this.toWit(), enumerable: false });
  }

  /** This error as the WIT `plugin-error` value. */
  toWit(): WitPluginError {
    return { tag: 'other', val: this.message };
  }
}

/** The manifest does not grant a call; `permission` (the message) names the permission. */
export class PermissionDenied extends PluginError {
  override readonly kind = 'denied';

  /** The host's refusal, naming the permission (`network:outbound:api.example.com`). */
  constructor(readonly permission: string) {
    super(permission);
  }

  /** This error as `plugin-error.denied`, with the permission text unchanged. */
  override toWit(): WitPluginError {
    return { tag: 'denied', val: this.permission };
  }
}

/** A limit of the sandbox was reached; the message names it. */
export class LimitExceeded extends PluginError {
  override readonly kind = 'limit';

  /** This error as `plugin-error.limit`. */
  override toWit(): WitPluginError {
    return { tag: 'limit', val: this.message };
  }
}

/** The configuration field `field` is missing or wrong; `problem` says how. */
export class ConfigError extends PluginError {
  override readonly kind = 'config';

  /** `new ConfigError("baseUrl", "must be an https URL")`: "config field `baseUrl` must be an https URL". */
  constructor(
    /** The field's path, such as `baseUrl` or `auth.user`. */
    readonly field: string,
    /** What is wrong with it, such as `is required`. */
    readonly problem: string,
  ) {
    super(`config field \`${field}\` ${problem}`);
  }

  /** This error as `plugin-error.config`. */
  override toWit(): WitPluginError {
    return { tag: 'config', val: { field: this.field, message: this.problem } };
  }
}

/**
 * The remote service answered with the error status `status`. The message says what was
 * asked (method, host, path) and starts the answer's body; `retryAfterMs` is the wait the
 * answer asked for (`Retry-After`), when it gave one.
 */
export class HttpError extends PluginError {
  override readonly kind = 'http';

  /** An error status `status` described by `message`, asking to wait `retryAfterMs`. */
  constructor(
    /** The HTTP status. */
    readonly status: number,
    message: string,
    /** The wait the answer asked for in milliseconds, or undefined. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** This error as `plugin-error.http`. */
  override toWit(): WitPluginError {
    return { tag: 'http', val: { status: this.status, message: this.message } };
  }
}

/** A condition that may pass (a timeout, a refused connection, a rate limit). */
export class TransientError extends PluginError {
  override readonly kind = 'transient';

  /** This error as `plugin-error.transient`. */
  override toWit(): WitPluginError {
    return { tag: 'transient', val: this.message };
  }
}

/** A `ConfigError` for `field`: `throw configError("baseUrl", "must be an https URL")`. */
export function configError(field: string, problem: string): ConfigError {
  return new ConfigError(field, problem);
}

/** The error class for a `plugin-error` value a host call answered. */
export function fromWit(error: WitPluginError): PluginError {
  switch (error.tag) {
    case 'denied':
      return new PermissionDenied(error.val);
    case 'limit':
      return new LimitExceeded(error.val);
    case 'config':
      return new ConfigError(error.val.field, error.val.message);
    case 'http':
      return new HttpError(error.val.status, error.val.message);
    case 'transient':
      return new TransientError(error.val);
    case 'other':
      return new PluginError(error.val);
  }
  return new PluginError(`the host answered an error the SDK does not know: ${JSON.stringify(error)}`);
}

/** Whether `value` is a WIT `plugin-error` (`{tag, val}` of one of its cases). */
function isWitPluginError(value: unknown): value is WitPluginError {
  if (value === null || typeof value !== 'object' || !('tag' in value) || !('val' in value)) return false;
  return ['denied', 'limit', 'config', 'http', 'transient', 'other'].includes(String(value.tag));
}

/**
 * A bug's error as one line: its name, its text and where it was thrown (the first frame of
 * its stack, when it has one).
 */
export function describeException(error: unknown): string {
  if (!(error instanceof Error)) return `a thrown ${typeof error}: ${String(error)}`;
  let text = `${error.name}: ${error.message}`;
  // SpiderMonkey's frames read `name@file:line:col`, V8's `at name (file:line:col)`.
  const frame = (error.stack ?? '').split('\n').find((line) => /:\d+:\d+\)?\s*$/.test(line));
  if (frame !== undefined) text += ` (at ${frame.trim().replace(/^at /, '')})`;
  return text;
}

/**
 * Any thrown value as a `PluginError`: a `PluginError` as it is; an error a host call threw
 * (componentize-js hands its `plugin-error` over as `payload`) as its case, so `denied` stays
 * `denied` with the host's text; anything else (a bug) as `other`, saying what was thrown
 * where (a bug would otherwise trap, and the host would show only that the plugin trapped).
 */
export function toPluginError(error: unknown): PluginError {
  if (error instanceof PluginError) return error;
  if (error !== null && typeof error === 'object' && 'payload' in error && isWitPluginError(error.payload)) {
    return fromWit(error.payload);
  }
  if (isWitPluginError(error)) return fromWit(error);
  return new PluginError(`the plugin failed: ${describeException(error)}`);
}

/** Calls the host import `fn` with `args`; an `err` it answers is thrown as a `PluginError`. */
export function callHost<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
  try {
    return fn(...args);
  } catch (error) {
    throw toPluginError(error);
  }
}
