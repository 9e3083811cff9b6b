// Checks that types/ matches proto/wit, type-checks the SDK and runs its tests
// (test/*.test.mjs) under node, with test/stub-host.ts in the place of the host's
// `tributary:plugin/host@0.1.0` imports:
//
//   node sdk/typescript/scripts/test.mjs --toolchain <dir holding node_modules>
//
// The toolchain is the npm ci of sdk/typescript/toolchain/. Exits as node's test runner does.

import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { toolchain: { type: 'string' } } });
if (!values.toolchain) {
  console.error('usage: node scripts/test.mjs --toolchain <dir holding node_modules>');
  process.exit(2);
}
const toolchain = resolve(values.toolchain);
const require = createRequire(join(toolchain, 'node_modules', '.toolchain.cjs'));

// The WIT declarations must be what proto/wit generates now.
const types = spawnSync(process.execPath, [join(sdkDir, 'scripts/generate-types.mjs'), '--toolchain', toolchain, '--check'], { stdio: 'inherit' });
if (types.status !== 0) process.exit(1);

// The SDK's own type check, with its tsconfig.json (strict, unused locals refused).
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(sdkDir, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('the SDK does not type-check');
  process.exit(1);
}

const esbuild = require('esbuild');
const work = await mkdtemp(join(tmpdir(), 'tributary-sdk-test-'));
try {
  const tests = (await readdir(join(sdkDir, 'test'))).filter((name) => name.endsWith('.test.mjs'));
  const stubHost = {
    name: 'stub-host',
    setup(build) {
      build.onResolve({ filter: /^tributary:plugin\/host@/ }, () => ({ path: join(sdkDir, 'test/stub-host.ts') }));
    },
  };
  await esbuild.build({
    entryPoints: tests.map((name) => join(sdkDir, 'test', name)),
    outdir: work,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    plugins: [stubHost],
    logLevel: 'warning',
  });
  const run = spawnSync(process.execPath, ['--test', ...tests.map((name) => join(work, name))], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
