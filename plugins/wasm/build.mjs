// Componentizes the JavaScript guest plugins with componentize-js. Run by
// scripts/build-wasm-guests, which installs the tools and decides where things go:
//
//   node build.mjs --npm <dir with node_modules> --wit <proto/wit> --out <dir> <plugin dir>...
//
// Each plugin directory holds plugin.json (type connector or channel, entrypoint
// `wasm:<name>.wasm`) and src/index.js. Into <out>/<plugin id>/ go the component and a copy of
// plugin.json with `sha256` (hex SHA-256 of the component) filled in. A directory may hold more
// manifests of the same component, `plugin.<variant>.json` (another id, other limits: the
// hostile connector's patient twin); the component is built once and each gets its own
// <out>/<plugin id>/.

import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * The engine features each world keeps. A feature left on makes the component import the WASI
 * interfaces it is built on, which the host must then link; so only the connector keeps `http`,
 * for fetch(). Clocks and random come from the host (`now-ms`, `random-bytes`), logs go
 * through `log`.
 */
const DISABLED_FEATURES = {
  connector: ['random', 'stdio', 'clocks', 'fetch-event'],
  channel: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
};

const { values, positionals } = parseArgs({
  options: { npm: { type: 'string' }, wit: { type: 'string' }, out: { type: 'string' } },
  allowPositionals: true,
});
for (const name of ['npm', 'wit', 'out']) {
  if (!values[name]) throw new Error(`--${name} is required`);
}
if (positionals.length === 0) throw new Error('name at least one plugin directory');
// componentize-js resolves a relative WIT path against its own working directory.
const witPath = resolve(values.wit);

const { componentize } = await import(
  pathToFileURL(join(values.npm, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')).href
);

/** Reads and checks the manifest `path`; answers it with the component's file name. */
async function readManifest(path) {
  const manifest = JSON.parse(await readFile(path, 'utf8'));
  if (!DISABLED_FEATURES[manifest.type]) throw new Error(`${path}: type ${JSON.stringify(manifest.type)} is neither connector nor channel`);
  const wasmName = manifest.entrypoint?.startsWith('wasm:') ? manifest.entrypoint.slice('wasm:'.length) : undefined;
  if (!wasmName || isAbsolute(wasmName) || wasmName.includes('/') || !wasmName.endsWith('.wasm')) {
    throw new Error(`${path}: the entrypoint must be wasm:<name>.wasm, found ${JSON.stringify(manifest.entrypoint)}`);
  }
  if ('sha256' in manifest) throw new Error(`${path}: leave sha256 out, the build fills it in`);
  return { manifest, wasmName };
}

/** The manifests of the plugin directory `dir`: plugin.json first, then its variants. */
async function manifestsOf(dir) {
  const variants = (await readdir(dir)).filter((name) => /^plugin\.[^.]+\.json$/.test(name)).sort();
  const manifests = [];
  for (const name of ['plugin.json', ...variants]) manifests.push({ path: join(dir, name), ...(await readManifest(join(dir, name))) });
  const [first] = manifests;
  for (const other of manifests.slice(1)) {
    if (other.manifest.type !== first.manifest.type || other.manifest.entrypoint !== first.manifest.entrypoint) {
      throw new Error(`${other.path}: a variant must have the type and entrypoint of ${first.path}`);
    }
  }
  return manifests;
}

/** Builds the plugin in `dir` into `<out>/<id>/`, once per manifest; answers what it did, for the log. */
async function build(dir) {
  const manifests = await manifestsOf(dir);
  const { manifest, wasmName } = manifests[0];

  const started = performance.now();
  const { component } = await componentize({
    sourcePath: resolve(dir, 'src/index.js'),
    witPath,
    worldName: manifest.type,
    disableFeatures: DISABLED_FEATURES[manifest.type],
  });
  const seconds = (performance.now() - started) / 1000;

  const sha256 = createHash('sha256').update(component).digest('hex');
  for (const { manifest } of manifests) {
    const built = {};
    for (const [key, value] of Object.entries(manifest)) {
      built[key] = value;
      if (key === 'entrypoint') built.sha256 = sha256;
    }
    const outDir = join(values.out, manifest.id);
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, wasmName), component);
    await writeFile(join(outDir, 'plugin.json'), `${JSON.stringify(built, null, 2)}\n`);
  }
  const ids = manifests.map((m) => m.manifest.id).join(' and ');
  return `${ids}: ${wasmName}, ${(component.length / 1e6).toFixed(1)} MB, sha256 ${sha256}, componentized in ${seconds.toFixed(1)} s`;
}

// Two at a time: componentizing is mostly one process each (Wizer), and CI has two cores.
const PARALLEL = 2;
const results = new Array(positionals.length);
let taken = 0;
async function worker() {
  while (taken < positionals.length) {
    const i = taken++;
    results[i] = await build(positionals[i]).then(
      (value) => ({ status: 'fulfilled', value }),
      (reason) => ({ status: 'rejected', reason }),
    );
  }
}
await Promise.all(Array.from({ length: PARALLEL }, worker));
let failed = false;
for (const [i, r] of results.entries()) {
  if (r.status === 'fulfilled') {
    console.log(`build: ${r.value}`);
  } else {
    failed = true;
    console.error(`build: ${positionals[i]} failed: ${r.reason?.stack ?? r.reason}`);
  }
}
if (failed) process.exit(1);
