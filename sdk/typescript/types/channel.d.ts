// Generated from proto/wit (world `channel`) by `jco guest-types` through sdk/typescript/scripts/generate-types.mjs; do not edit.
/// <reference path="./interfaces/tributary-plugin-host.d.ts" />
/// <reference path="./interfaces/tributary-plugin-messaging.d.ts" />
/// <reference path="./interfaces/tributary-plugin-types.d.ts" />
declare module 'tributary:plugin/channel@0.1.0' {
  export type * as TributaryPluginHost010 from 'tributary:plugin/host@0.1.0'; // import tributary:plugin/host@0.1.0
  export type * as TributaryPluginTypes010 from 'tributary:plugin/types@0.1.0'; // import tributary:plugin/types@0.1.0
  export * as messaging from 'tributary:plugin/messaging@0.1.0'; // export tributary:plugin/messaging@0.1.0
}
