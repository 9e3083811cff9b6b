// Generated from proto/wit (world `channel`) by `jco guest-types` through sdk/typescript/scripts/generate-types.mjs; do not edit.
/// <reference path="./tributary-plugin-types.d.ts" />
declare module 'tributary:plugin/messaging@0.1.0' {
  /**
   * Checks that `request` comes from the provider. Runs on the request path, before
   * anything is stored: quick, and with no network.
   */
  export function verifyWebhook(request: IncomingWebhook): WebhookVerdict;
  /**
   * The headers (lower-case) `handle-incoming` reads, kept when a webhook is stored.
   */
  export function headersToKeep(): Array<string>;
  /**
   * What a verified webhook carries: a JSON array of incoming events
   * (`{"kind": "message", …}` or `{"kind": "delivery_status", …}`).
   */
  export function handleIncoming(request: IncomingWebhook): Json;
  /**
   * Sends a message (an outbound-message as JSON); answers the sent-message as JSON.
   */
  export function sendMessage(message: Json): Json;
  export type Json = import('tributary:plugin/types@0.1.0').Json;
  export type PluginError = import('tributary:plugin/types@0.1.0').PluginError;
  export type Header = import('tributary:plugin/types@0.1.0').Header;
  /**
   * A request the service received on the instance's webhook route.
   */
  export interface IncomingWebhook {
    method: string,
    /**
     * The URL the provider called, as it saw it.
     */
    url: string,
    query?: string,
    /**
     * In the order received, names lower-case.
     */
    headers: Array<Header>,
    /**
     * Exactly as received.
     */
    body: Uint8Array,
    /**
     * RFC 3339.
     */
    receivedAt: string,
  }
  /**
   * An answer the channel gives itself (a verification handshake).
   */
  export interface WebhookResponse {
    status: number,
    contentType: string,
    body: Uint8Array,
  }
  /**
   * What to do with a webhook whose signature checked out.
   */
  export type WebhookVerdict = WebhookVerdictAccept | WebhookVerdictRespond;
  /**
   * Store it, answer 2xx, handle it later; the provider's id of this delivery.
   */
  export interface WebhookVerdictAccept {
    tag: 'accept',
    val: string,
  }
  /**
   * Answer with this and store nothing.
   */
  export interface WebhookVerdictRespond {
    tag: 'respond',
    val: WebhookResponse,
  }
  /**
   * Why a webhook was refused: answered with `status` and `reason`, nothing stored.
   */
  export interface WebhookRejection {
    status: number,
    reason: string,
  }
}
