// Writes sdk/typescript/types/ from proto/wit: the guest-side TypeScript declarations of the
// `connector` and `channel` worlds, as `jco guest-types` generates them, so a plugin's
// `import { config, secret, log } from 'tributary:plugin/host@0.1.0'` type-checks.
//
//   node sdk/typescript/scripts/generate-types.mjs --toolchain <dir holding node_modules> [--check]
//
// The toolchain is the npm ci of sdk/typescript/toolchain/. With --check nothing is written: it
// exits 1, naming the files, when types/ differs from what proto/wit generates now.
//
// Both worlds go into the one directory: their `host` and `types` interfaces are the same
// files (checked here), and a program that declared those modules twice would fail with
// duplicate identifiers, while the SDK needs both worlds' exports at once.
//
//   types/connector.d.ts, types/channel.d.ts    the worlds
//   types/interfaces/tributary-plugin-*.d.ts    host, types, sync, messaging
//   types/index.d.ts                            references both worlds (written here)

import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** The worlds of proto/wit a plugin can be. */
const WORLDS = ['connector', 'channel'];

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const witDir = resolve(sdkDir, '../../proto/wit');
const typesDir = join(sdkDir, 'types');

const { values } = parseArgs({ options: { toolchain: { type: 'string' }, check: { type: 'boolean' } } });
if (!values.toolchain) {
  console.error('usage: node generate-types.mjs --toolchain <dir holding node_modules> [--check]');
  process.exit(2);
}
const transpileDir = join(resolve(values.toolchain), 'node_modules/@bytecodealliance/jco-transpile');

// jco's type generator is a component reading the WIT through WASI; the shim it is linked
// with gives it no directory unless told (`jco types` on the command line fails with "failed
// to read path for WIT"), so it gets the root.
const shimRequire = createRequire(join(transpileDir, 'package.json'));
const filesystem = await import(pathToFileURL(shimRequire.resolve('@bytecodealliance/preview2-shim/filesystem')).href);
filesystem._setPreopens({ '/': '/' });
const { generateGuestTypes } = await import(pathToFileURL(join(transpileDir, 'dist/typegen.js')).href);

/** The generated declarations, by path relative to types/, with the worlds that declare each. */
const generated = new Map();
for (const world of WORLDS) {
  for (const [name, bytes] of Object.entries(await generateGuestTypes(witDir, { worldName: world, outDir: '' }))) {
    const text = new TextDecoder().decode(bytes);
    const seen = generated.get(name);
    if (seen !== undefined && seen.text !== text) {
      throw new Error(`the worlds declare ${name} differently; the SDK expects one declaration of it`);
    }
    if (seen === undefined) generated.set(name, { text, worlds: [world] });
    else seen.worlds.push(world);
  }
}
/** The files to write, by path relative to types/. */
const files = new Map();
for (const [name, { text, worlds }] of generated) {
  const of = worlds.map((w) => `\`${w}\``).join(' and ');
  files.set(name, `// Generated from proto/wit (world${worlds.length > 1 ? "s" : ""} ${of}) by \`jco guest-types\` through sdk/typescript/scripts/generate-types.mjs; do not edit.\n${text}`);
}
files.set(
  'index.d.ts',
  '// Written by sdk/typescript/scripts/generate-types.mjs; do not edit.\n' +
    '// Every world of proto/wit, for the SDK and for a tsconfig\'s `types: ["@tributary/plugin/wit"]`.\n' +
    WORLDS.map((w) => `/// <reference path="./${w}.d.ts" />\n`).join(''),
);

/** Every file under `dir`, relative to it. */
async function listFiles(dir) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) found.push(relative(dir, join(entry.parentPath ?? entry.path, entry.name)));
  }
  return found.sort();
}

if (values.check) {
  const stale = [];
  for (const [name, text] of files) {
    const current = await readFile(join(typesDir, name), 'utf8').catch(() => undefined);
    if (current !== text) stale.push(current === undefined ? `${name} (missing)` : name);
  }
  for (const name of await listFiles(typesDir)) if (!files.has(name)) stale.push(`${name} (not generated)`);
  if (stale.length > 0) {
    console.error(
      `sdk/typescript/types/ is stale against proto/wit: ${stale.join(', ')}.\n` +
        'Regenerate it: node sdk/typescript/scripts/generate-types.mjs --toolchain <toolchain dir>',
    );
    process.exit(1);
  }
  console.error(`sdk/typescript/types/ matches proto/wit (${files.size} files).`);
} else {
  await rm(typesDir, { recursive: true, force: true });
  for (const [name, text] of files) {
    await mkdir(dirname(join(typesDir, name)), { recursive: true });
    await writeFile(join(typesDir, name), text);
  }
  console.error(`wrote ${files.size} files to ${relative(process.cwd(), typesDir) || '.'}`);
}
