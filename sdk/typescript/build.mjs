// Builds a TypeScript or JavaScript Tributary plugin into a WebAssembly component:
//
//   node sdk/typescript/build.mjs --toolchain <dir holding node_modules> --wit <proto/wit dir> \
//        --sdk <sdk/typescript dir> --plugin <plugin dir> --out <file.wasm>
//
// 1. type check: src/index.ts (or src/index.js, which is not checked) and the files the
//    plugin's tsconfig.json includes, with the TypeScript compiler API; the diagnostics are
//    listed as file:line:col message and fail the build;
// 2. bundle: esbuild, one ES module, `@tributary/plugin` resolved to --sdk, `tributary:*` and
//    `wasi:*` imports left to the component;
// 3. componentize: componentize-js against the world plugin.json's `type` names, with the
//    engine features that world's host links (a connector keeps `http`, so fetch() works).
//
// The component goes to --out, and its hex SHA-256 into plugin.json's `sha256` (the value
// edited in place, or a line added after `entrypoint`). stdout is one JSON line,
// {"checkMs","bundleMs","componentizeMs","bytes"}; everything else goes to stderr; a failure
// exits 1 with a message saying what.
// The toolchain is `npm ci` of sdk/typescript/toolchain/ (see sdk/typescript/README.md).

import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * The engine features each world leaves out. A feature left on makes the component import
 * the WASI interfaces it is built on, which the host must then link; so only the connector
 * keeps `http`, for fetch(). Clocks and random come from the host (`now-ms`,
 * `random-bytes`), logs go through `log`. The same as plugins/wasm/build.mjs.
 */
const DISABLED_FEATURES = {
  connector: ['random', 'stdio', 'clocks', 'fetch-event'],
  channel: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],
};

/** What each world's module must export, and how a plugin writes it. */
const EXPORTS = {
  connector: { name: 'sync', example: 'export const sync = defineConnector({ async nextPage(request, token) { … } })' },
  channel: { name: 'messaging', example: 'export const messaging = defineChannel({ verifyWebhook, headersToKeep, handleIncoming, sendMessage })' },
};

/** The compiler options a plugin gets unless its tsconfig.json says otherwise. */
const DEFAULT_OPTIONS = {
  strict: true,
  target: 'ES2022',
  module: 'ES2022',
  moduleResolution: 'bundler',
  lib: ['ES2022', 'WebWorker', 'WebWorker.Iterable', 'WebWorker.AsyncIterable'],
  isolatedModules: true,
};

/** A failure the build reports as its one message. */
class BuildError extends Error {}

// Everything but the final JSON line goes to stderr, including what the tools log.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const { values } = parseArgs({
  options: {
    toolchain: { type: 'string' },
    wit: { type: 'string' },
    sdk: { type: 'string' },
    plugin: { type: 'string' },
    out: { type: 'string' },
  },
});

try {
  const timings = await build(values);
  process.stdout.write(`${JSON.stringify(timings)}\n`);
  process.exit(0);
} catch (error) {
  console.error(`build: ${error instanceof BuildError ? error.message : (error?.stack ?? error)}`);
  process.exit(1);
}

/** Runs the three steps; answers the timings and the component's size. */
async function build(args) {
  for (const name of ['toolchain', 'wit', 'sdk', 'plugin', 'out']) {
    if (!args[name]) {
      throw new BuildError(
        `--${name} is required: node build.mjs --toolchain <dir> --wit <proto/wit> --sdk <sdk/typescript> --plugin <dir> --out <file.wasm>`,
      );
    }
  }
  const pluginDir = resolve(args.plugin);
  const sdkDir = resolve(args.sdk);
  const witDir = resolve(args.wit);
  const out = resolve(args.out);
  const tools = await loadToolchain(resolve(args.toolchain));
  const { manifest, manifestPath, manifestText } = await readManifest(pluginDir);
  const world = manifest.type;
  const entry = await entryOf(pluginDir);

  let started = performance.now();
  if (entry.endsWith('.ts')) typeCheck(tools.ts, pluginDir, sdkDir, entry);
  const checkMs = Math.round(performance.now() - started);

  const work = await mkdtemp(join(tmpdir(), 'tributary-ts-build-'));
  try {
    started = performance.now();
    const bundle = join(work, 'plugin.js');
    await bundleWith(tools.esbuild, pluginDir, sdkDir, entry, bundle, world);
    const bundleMs = Math.round(performance.now() - started);

    started = performance.now();
    let component;
    try {
      ({ component } = await tools.componentize({
        sourcePath: bundle,
        witPath: witDir,
        worldName: world,
        disableFeatures: DISABLED_FEATURES[world],
      }));
    } catch (error) {
      throw new BuildError(`componentize-js failed on the bundle of ${relative(process.cwd(), entry)}: ${error?.message ?? error}`);
    }
    const componentizeMs = Math.round(performance.now() - started);

    await writeFile(out, component);
    await writeSha256(manifestPath, manifestText, manifest, createHash('sha256').update(component).digest('hex'));
    return { checkMs, bundleMs, componentizeMs, bytes: component.length };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The TypeScript compiler, esbuild and componentize-js of the toolchain directory `dir`. */
async function loadToolchain(dir) {
  const require = createRequire(join(dir, 'node_modules', '.toolchain.cjs'));
  const load = (name) => {
    try {
      return require(name);
    } catch (error) {
      throw new BuildError(
        `the toolchain at ${dir} has no ${name} (${error.code ?? error.message}); install it: ` +
          `npm ci in a copy of sdk/typescript/toolchain/ (package.json and package-lock.json)`,
      );
    }
  };
  const ts = load('typescript');
  const esbuild = load('esbuild');
  const componentizePath = join(dir, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js');
  try {
    await stat(componentizePath);
  } catch {
    throw new BuildError(`the toolchain at ${dir} has no @bytecodealliance/componentize-js; install it: npm ci of sdk/typescript/toolchain/`);
  }
  const { componentize } = await import(pathToFileURL(componentizePath).href);
  return { ts, esbuild, componentize };
}

/** plugin.json of `dir`, checked: a connector or channel with a `wasm:<name>.wasm` entrypoint. */
async function readManifest(dir) {
  const manifestPath = join(dir, 'plugin.json');
  let manifestText;
  try {
    manifestText = await readFile(manifestPath, 'utf8');
  } catch {
    throw new BuildError(`${manifestPath} is missing: a plugin directory holds plugin.json and src/index.ts`);
  }
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch (error) {
    throw new BuildError(`${manifestPath} is not JSON: ${error.message}`);
  }
  if (!DISABLED_FEATURES[manifest?.type]) {
    throw new BuildError(`${manifestPath}: "type" must be "connector" or "channel", found ${JSON.stringify(manifest?.type)}`);
  }
  const name = typeof manifest.entrypoint === 'string' && manifest.entrypoint.startsWith('wasm:') ? manifest.entrypoint.slice(5) : '';
  if (!/^[^/\\]+\.wasm$/.test(name)) {
    throw new BuildError(`${manifestPath}: "entrypoint" must be "wasm:<name>.wasm", found ${JSON.stringify(manifest.entrypoint)}`);
  }
  return { manifest, manifestPath, manifestText };
}

/** src/index.ts or src/index.js of the plugin in `dir`. */
async function entryOf(dir) {
  for (const name of ['src/index.ts', 'src/index.js']) {
    const path = join(dir, name);
    if (await stat(path).then((s) => s.isFile(), () => false)) return path;
  }
  throw new BuildError(`${dir} has neither src/index.ts nor src/index.js`);
}

/** `path` as shown in messages: relative to the plugin when inside it. */
function shown(pluginDir, path) {
  const rel = relative(pluginDir, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/**
 * Type-checks the plugin: its tsconfig.json's files (or every .ts under src/) with its
 * options over the defaults, always without emitting, with `@tributary/plugin` and the WIT
 * declarations taken from `sdkDir`. Throws the diagnostics, file:line:col message each; those
 * inside the SDK are left out (the SDK is checked on its own, and a plugin's stricter options
 * are for its own code).
 */
function typeCheck(ts, pluginDir, sdkDir, entry) {
  const configPath = join(pluginDir, 'tsconfig.json');
  let options = {};
  let fileNames = ts.sys.readDirectory(join(pluginDir, 'src'), ['.ts', '.mts', '.cts']);
  const configDiagnostics = [];
  if (ts.sys.fileExists(configPath)) {
    const read = ts.readConfigFile(configPath, ts.sys.readFile);
    if (read.error) configDiagnostics.push(read.error);
    const parsed = ts.parseJsonConfigFileContent(read.config ?? {}, ts.sys, pluginDir, undefined, configPath);
    configDiagnostics.push(...parsed.errors.filter((d) => d.code !== 18003)); // 18003: no inputs (src/ is added below)
    options = parsed.options;
    fileNames = parsed.fileNames;
  }
  const defaults = ts.convertCompilerOptionsFromJson(DEFAULT_OPTIONS, pluginDir).options;
  const sdkEntry = join(sdkDir, 'src/index.ts');
  const witTypes = join(sdkDir, 'types/index.d.ts');
  const compilerOptions = {
    ...defaults,
    ...options,
    noEmit: true,
    types: [],
    paths: { '@tributary/plugin': [sdkEntry], '@tributary/plugin/wit': [witTypes] },
  };
  const inside = (dir) => (file) => !relative(dir, file).startsWith('..');
  const roots = [...new Set([entry, ...fileNames.filter((f) => !f.split(sep).includes('node_modules')), witTypes])];
  const program = ts.createProgram({ rootNames: roots, options: compilerOptions });
  const diagnostics = [...configDiagnostics, ...ts.getPreEmitDiagnostics(program)].filter(
    (d) => d.file === undefined || !inside(sdkDir)(resolve(d.file.fileName)),
  );
  if (diagnostics.length === 0) return;
  const lines = diagnostics.map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
    if (d.file === undefined || d.start === undefined) return `${message} (TS${d.code})`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${shown(pluginDir, resolve(d.file.fileName))}:${line + 1}:${character + 1} ${message} (TS${d.code})`;
  });
  throw new BuildError(`the type check found ${lines.length} problem${lines.length === 1 ? '' : 's'}:\n${lines.join('\n')}`);
}

/** Bundles `entry` into the one ES module `outfile`, checking it exports what `world` needs. */
async function bundleWith(esbuild, pluginDir, sdkDir, entry, outfile, world) {
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['module', 'main'],
      external: ['tributary:*', 'wasi:*'],
      alias: { '@tributary/plugin': join(sdkDir, 'src/index.ts') },
      absWorkingDir: pluginDir,
      metafile: true,
      logLevel: 'silent',
    });
  } catch (error) {
    const lines = (error.errors ?? []).map((e) =>
      e.location ? `${e.location.file}:${e.location.line}:${e.location.column + 1} ${e.text}` : e.text,
    );
    throw new BuildError(`esbuild could not bundle ${shown(pluginDir, entry)}:\n${lines.join('\n') || error.message}`);
  }
  const [output] = Object.values(result.metafile.outputs);
  const wanted = EXPORTS[world];
  if (!output.exports.includes(wanted.name)) {
    throw new BuildError(
      `${shown(pluginDir, entry)} must export \`${wanted.name}\` for a ${world} (it exports ${output.exports.map((e) => `\`${e}\``).join(', ') || 'nothing'}): ${wanted.example}`,
    );
  }
}

/**
 * Writes `sha256` into the manifest at `path`, keeping the file as its author wrote it: the
 * value replaced, or one member added after `entrypoint` (the whole file rewritten only when
 * neither edit gives the manifest with that `sha256`).
 */
async function writeSha256(path, text, manifest, sha256) {
  if (manifest.sha256 === sha256) return;
  const edited = /"sha256"\s*:\s*"[^"]*"/.test(text)
    ? text.replace(/("sha256"\s*:\s*)"[^"]*"/, `$1"${sha256}"`)
    : text.replace(/^([ \t]*)("entrypoint"\s*:\s*"[^"]*")(\s*,)?/m, (_, indent, member, comma) =>
        `${indent}${member},\n${indent}"sha256": "${sha256}"${comma ? ',' : ''}`,
      );
  let ok = false;
  try {
    const parsed = JSON.parse(edited);
    ok = parsed.sha256 === sha256 && JSON.stringify({ ...parsed, sha256: undefined }) === JSON.stringify({ ...manifest, sha256: undefined });
  } catch {
    ok = false;
  }
  if (ok) {
    await writeFile(path, edited);
    return;
  }
  const built = {};
  for (const [key, value] of Object.entries(manifest)) {
    if (key === 'sha256') continue;
    built[key] = value;
    if (key === 'entrypoint') built.sha256 = sha256;
  }
  await writeFile(path, `${JSON.stringify(built, null, 2)}\n`);
}
