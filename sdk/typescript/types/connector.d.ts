// Generated from proto/wit (world `connector`) by `jco guest-types` through sdk/typescript/scripts/generate-types.mjs; do not edit.
/// <reference path="./interfaces/tributary-plugin-host.d.ts" />
/// <reference path="./interfaces/tributary-plugin-sync.d.ts" />
/// <reference path="./interfaces/tributary-plugin-types.d.ts" />
declare module 'tributary:plugin/connector@0.1.0' {
  export type * as TributaryPluginHost010 from 'tributary:plugin/host@0.1.0'; // import tributary:plugin/host@0.1.0
  export type * as TributaryPluginTypes010 from 'tributary:plugin/types@0.1.0'; // import tributary:plugin/types@0.1.0
  export * as sync from 'tributary:plugin/sync@0.1.0'; // export tributary:plugin/sync@0.1.0
}
