// @tributary/plugin: the TypeScript guest SDK for Tributary plugins (WebAssembly components
// built with componentize-js against proto/wit's `connector` and `channel` worlds).
//
// A connector exports `sync = defineConnector({ nextPage })`, a channel `messaging =
// defineChannel({ verifyWebhook, headersToKeep, handleIncoming, sendMessage })`. The helpers
// reach the host (config, secrets, logs, HTTP with host-attached secrets, time, the
// instance's store) and report errors as the host's own `plugin-error` cases.
// sdk/typescript/README.md has the whole API with examples.

/// <reference path="../types/index.d.ts" />

export * from './errors';
export * from './config';
export * from './host';
export * from './http';
export * from './paging';
export * from './items';
export * from './connector';
export * from './channel';
export * from './crypto';
export type * from './model';
