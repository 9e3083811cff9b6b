// Written by sdk/typescript/scripts/generate-types.mjs; do not edit.
// Every world of proto/wit, for the SDK and for a tsconfig's `types: ["@tributary/plugin/wit"]`.
/// <reference path="./connector.d.ts" />
/// <reference path="./channel.d.ts" />
