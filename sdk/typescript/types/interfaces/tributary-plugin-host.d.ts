// Generated from proto/wit (worlds `connector` and `channel`) by `jco guest-types` through sdk/typescript/scripts/generate-types.mjs; do not edit.
/// <reference path="./tributary-plugin-types.d.ts" />
declare module 'tributary:plugin/host@0.1.0' {
  /**
   * The plugin's id, such as `com.example.tasks`.
   */
  export function pluginId(): string;
  /**
   * The instance's id.
   */
  export function instanceId(): string;
  /**
   * The instance's configuration without its secrets (`writeOnly` fields are left out;
   * read one with `secret`, or attach one to a request with `secret-auth`).
   */
  export function config(): Json;
  /**
   * The value of the secret configuration field `field`. An explicit read, logged.
   */
  export function secret(field: string): string;
  /**
   * Logs `message`, tagged with the plugin and the instance. Lines longer than the limit
   * are cut; lines over the rate limit are dropped and counted.
   */
  export function log(level: LogLevel, message: string): void;
  /**
   * Sends `request`. An answer of any status is `ok`; `err` is a refusal or a failure to
   * get an answer.
   */
  export function httpFetch(request: HttpRequest): HttpResponse;
  /**
   * Publishes `payload` on `subject`, if an `event:publish` permission covers it.
   */
  export function emitEvent(subject: string, payload: Json): void;
  /**
   * The entity `id` of type `entity` (`persons`, `messages`, …) of the unified model, if
   * `data:read:<entity>` is granted.
   */
  export function dataGet(entity: string, id: string): Json | undefined;
  /**
   * The value stored under `key` in the instance's own store.
   */
  export function kvGet(key: string): Uint8Array | undefined;
  /**
   * Stores `value` under `key` in the instance's own store.
   */
  export function kvSet(key: string, value: Uint8Array): void;
  /**
   * Forgets `key`.
   */
  export function kvDelete(key: string): void;
  /**
   * Milliseconds since the Unix epoch.
   */
  export function nowMs(): bigint;
  /**
   * `len` random bytes (at most 1024).
   */
  export function randomBytes(len: number): Uint8Array;
  /**
   * Whether the host asked the running call to stop (`connector.cancel`, a shutdown);
   * a guest in a long loop should check it and return. The host stops it anyway.
   */
  export function cancelled(): boolean;
  export type Json = import('tributary:plugin/types@0.1.0').Json;
  export type PluginError = import('tributary:plugin/types@0.1.0').PluginError;
  export type Header = import('tributary:plugin/types@0.1.0').Header;
  /**
   * How loud a log line is.
   * # Variants
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
  /**
   * Basic authentication: the user, and the secret field holding the password.
   */
  export interface BasicAuth {
    user: string,
    passwordField: string,
  }
  /**
   * A header whose value is a secret field's.
   */
  export interface SecretHeader {
    name: string,
    field: string,
  }
  /**
   * A secret configuration field attached to a request by the host; the guest never
   * reads its value.
   */
  export type SecretAuth = SecretAuthBearer | SecretAuthBasic | SecretAuthHeader;
  /**
   * `Authorization: Bearer <field>`.
   */
  export interface SecretAuthBearer {
    tag: 'bearer',
    val: string,
  }
  /**
   * `Authorization: Basic` of a user (plain text) and a secret password field.
   */
  export interface SecretAuthBasic {
    tag: 'basic',
    val: BasicAuth,
  }
  /**
   * A header carrying the secret field's value.
   */
  export interface SecretAuthHeader {
    tag: 'header',
    val: SecretHeader,
  }
  /**
   * An HTTP request through the instance's client: its host must be granted by
   * `network:outbound`, redirects are checked again, 429 and 5xx are retried honouring
   * `Retry-After`, and the instance's rate limit applies.
   */
  export interface HttpRequest {
    method: string,
    url: string,
    headers: Array<Header>,
    body?: Uint8Array,
    auth?: SecretAuth,
    /**
     * The whole exchange's timeout; the instance's default when none.
     */
    timeoutMs?: number,
  }
  /**
   * The answer, whatever its status.
   */
  export interface HttpResponse {
    status: number,
    headers: Array<Header>,
    body: Uint8Array,
  }
}
