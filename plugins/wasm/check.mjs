// Checks the components build.mjs made, outside Tributary: each one's manifest names its
// SHA-256, it imports exactly what the host is known to link, and, transpiled by jco and run
// under node with stub host imports, it behaves: the connector hands over valid pages with
// their checkpoints in every mode (synthetic tasks, and a JSON API served from a worker thread
// through fetch() and wasi:http), the channel accepts a correctly signed webhook and refuses a
// wrong one, and sends through `http-fetch` with the token attached by the host; the hostile
// plugins misbehave as their config asks (those of their behaviours that node survives).
//
//   node check.mjs --npm <dir with node_modules> <built plugins dir>
//
// Run by scripts/build-wasm-guests right after a build (a cached build was checked when made).

import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

/**
 * What each world's component imports, as `jco wit` prints it: the host must link all of them
 * (plugins/wasm/README.md). A toolchain upgrade that changes them fails here first.
 */
const EXPECTED_IMPORTS = {
  connector: [
    'tributary:plugin/types@0.1.0',
    'tributary:plugin/host@0.1.0',
    'wasi:io/poll@0.2.12',
    'wasi:io/error@0.2.12',
    'wasi:io/streams@0.2.12',
    'wasi:http/types@0.2.10',
    'wasi:http/outgoing-handler@0.2.10',
  ],
  channel: ['tributary:plugin/types@0.1.0', 'tributary:plugin/host@0.1.0'],
};

/** The fields the unified model allows (proto/src/model.rs, deny_unknown_fields). */
const DOCUMENT_FIELDS = ['title', 'path', 'mime_type', 'content', 'modified_at', 'content_hash', 'extra'];
const PERSON_FIELDS = ['display_name', 'given_name', 'family_name', 'emails', 'phones', 'organization', 'title', 'extra'];

const { values, positionals } = parseArgs({ options: { npm: { type: 'string' } }, allowPositionals: true });
if (!values.npm || positionals.length !== 1) throw new Error('usage: node check.mjs --npm <dir> <built plugins dir>');
const npmRequire = createRequire(join(values.npm, 'node_modules/@bytecodealliance/jco/package.json'));
const jco = await import(pathToFileURL(join(values.npm, 'node_modules/@bytecodealliance/jco/dist/api.js')).href);
const wasi = await import(pathToFileURL(npmRequire.resolve('@bytecodealliance/preview2-shim')).href);

/** A host of stub imports: `config` and `secrets` as given; records logs, secret reads and requests. */
function stubHost({ config = {}, secrets = {}, fetch } = {}) {
  const calls = { logs: [], secrets: [], requests: [] };
  const host = {
    pluginId: () => 'com.example.check',
    instanceId: () => 'check',
    config: () => JSON.stringify(config),
    secret(field) {
      calls.secrets.push(field);
      if (!(field in secrets)) throw { tag: 'config', val: { field, message: 'is not set' } };
      return secrets[field];
    },
    log: (level, message) => calls.logs.push({ level, message }),
    httpFetch(request) {
      calls.requests.push(request);
      if (!fetch) throw { tag: 'denied', val: 'no network in this check' };
      return fetch(request);
    },
    emitEvent: () => {
      throw { tag: 'denied', val: 'event:publish' };
    },
    dataGet: () => {
      throw { tag: 'denied', val: 'data:read' };
    },
    kvGet: () => undefined,
    kvSet: () => {},
    kvDelete: () => {},
    nowMs: () => BigInt(Date.UTC(2026, 5, 1, 12)),
    randomBytes: (len) => new Uint8Array(len),
    cancelled: () => false,
  };
  return { host, calls };
}

/** The transpiled component's `instantiate`, and a function making an instance over a stub host. */
async function load(wasm, workDir) {
  const { files } = await jco.transpile(wasm, { name: 'guest', instantiation: { tag: 'async' }, quiet: true });
  for (const [name, bytes] of Object.entries(files)) {
    await mkdir(dirname(join(workDir, name)), { recursive: true });
    await writeFile(join(workDir, name), bytes);
  }
  const { instantiate } = await import(pathToFileURL(join(workDir, 'guest.js')).href);
  const getCoreModule = async (path) => WebAssembly.compile(await readFile(join(workDir, path)));
  return async (stub) =>
    instantiate(getCoreModule, {
      'tributary:plugin/host': stub.host,
      'tributary:plugin/types': {},
      'wasi:io/error': wasi.io.error,
      'wasi:io/poll': wasi.io.poll,
      'wasi:io/streams': wasi.io.streams,
      'wasi:http/types': wasi.http.types,
      'wasi:http/outgoing-handler': wasi.http.outgoingHandler,
    });
}

/** The plugin-error or rejection an export answered with `err`, or a failure if it answered ok. */
async function errOf(call) {
  try {
    await call();
  } catch (e) {
    assert.ok(e && 'payload' in e, `expected an err result, got ${e?.stack ?? e}`);
    return e.payload;
  }
  assert.fail('expected an err result, got ok');
}

/** The imports `jco wit` finds in the component, in its order. */
async function importsOf(wasm) {
  const wit = await jco.componentWit(wasm);
  return [...wit.matchAll(/^\s*import ([^;]+);$/gm)].map((m) => m[1]);
}

// ---------- the connector ----------

const TASK_MS = (i) => Date.UTC(2026, 0, 1) + i * 60_000;

/** Runs a whole sync, page after page, as the host would; answers the pages. */
async function runSync(sync, request, limit = 100) {
  const pages = [];
  let token;
  do {
    const page = await sync.nextPage(request, token);
    pages.push(page);
    token = page.next;
    assert.ok(pages.length <= limit, 'the sync does not end');
  } while (token !== undefined);
  return pages;
}

/** Checks that `item` is synthetic task `i` as a document. */
function checkTaskItem(item, i) {
  assert.equal(item.entityType, 'documents');
  assert.equal(item.externalId, `task-${i}`);
  assert.equal(item.operation, 'upsert');
  assert.equal(Date.parse(item.sourceModifiedAt), TASK_MS(i), `task-${i}'s version`);
  const data = JSON.parse(item.data);
  for (const key of Object.keys(data)) assert.ok(DOCUMENT_FIELDS.includes(key), `documents have no field ${key}`);
  assert.equal(typeof data.title, 'string');
  assert.ok(data.title.includes(`task ${i}`), data.title);
  assert.equal(JSON.parse(item.raw).id, `task-${i}`);
}

const cursor = (next) => JSON.stringify({ v: 1, next });
const checkpointOf = (page) => (page.checkpoint === undefined ? undefined : JSON.parse(page.checkpoint));

/** Starts a tasks API in a worker thread (the shim's fetch blocks this one); answers its URL. */
async function startTasksApi() {
  const worker = new Worker(
    `
    const { createServer } = require('node:http');
    const { parentPort } = require('node:worker_threads');
    const tasks = [1, 2, 3, 4, 5].map((n) => ({
      id: 'api-' + n, title: 'API task ' + n, status: 'open',
      updated_at: new Date(Date.UTC(2026, 2, n)).toISOString(), deleted: n === 5,
    }));
    const seen = [];
    const server = createServer((req, res) => {
      const url = new URL(req.url, 'http://x');
      seen.push(url.pathname + url.search);
      if (url.pathname !== '/tasks') { res.writeHead(500).end('no such route'); return; }
      const since = url.searchParams.get('since');
      const matching = tasks.filter((t) => !since || t.updated_at >= since);
      const page = Number(url.searchParams.get('page'));
      const slice = matching.slice((page - 1) * 2, page * 2);
      const next = page * 2 < matching.length ? page + 1 : null;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tasks: slice, next }));
    });
    parentPort.on('message', () => parentPort.postMessage({ seen }));
    server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
    `,
    { eval: true },
  );
  const port = await new Promise((resolve, reject) => {
    worker.once('message', (m) => resolve(m.port));
    worker.once('error', reject);
  });
  /** The paths and queries the API was asked for, in order. */
  const seen = () =>
    new Promise((resolve) => {
      worker.once('message', (m) => resolve(m.seen));
      worker.postMessage('seen');
    });
  return { url: `http://127.0.0.1:${port}`, seen, stop: () => worker.terminate() };
}

async function checkConnector(instantiate) {
  const synthetic = { count: 250, pageSize: 100 };
  const { sync } = await instantiate(stubHost({ config: synthetic }));

  // A full sync: every task once, in pages of pageSize, each page's checkpoint covering it.
  const full = await runSync(sync, { mode: 'full' });
  assert.deepEqual(full.map((p) => p.items.length), [100, 100, 50]);
  assert.deepEqual(full.map((p) => checkpointOf(p).next), [100, 200, 250]);
  full.flatMap((p) => p.items).forEach(checkTaskItem);

  // Incremental from a checkpoint: only what comes after it.
  const rest = await runSync(sync, { mode: 'incremental', cursor: cursor(200) });
  assert.deepEqual(rest.flatMap((p) => p.items.map((i) => i.externalId)), Array.from({ length: 50 }, (_, n) => `task-${200 + n}`));
  assert.equal(checkpointOf(rest.at(-1)).next, 250);
  const nothing = await runSync(sync, { mode: 'incremental', cursor: cursor(250) });
  assert.deepEqual(nothing.map((p) => [p.items.length, checkpointOf(p).next]), [[0, 250]]);

  // A backfill from task 120's time: tasks 120 on, and the cursor stays where it was.
  const back = await runSync(sync, { mode: 'backfill', since: new Date(TASK_MS(120)).toISOString(), cursor: cursor(250) });
  const backItems = back.flatMap((p) => p.items);
  assert.equal(backItems[0].externalId, 'task-120');
  assert.equal(backItems.length, 130);
  backItems.forEach((item, n) => checkTaskItem(item, 120 + n));
  assert.deepEqual(back.map((p) => checkpointOf(p).next), [250, 250]);
  // One that starts after the cursor must not move it past what it skipped.
  const gap = await runSync(sync, { mode: 'backfill', since: new Date(TASK_MS(130)).toISOString(), cursor: cursor(100) });
  assert.ok(gap.every((p) => checkpointOf(p).next === 100), 'a backfill past the cursor moved it');

  // Refusals name their problem.
  const unreadable = await errOf(() => sync.nextPage({ mode: 'incremental', cursor: '{"since":"x"}' }, undefined));
  assert.equal(unreadable.tag, 'other');
  assert.match(unreadable.val, /unreadable cursor/);
  const bad = await instantiate(stubHost({ config: { count: -1 } }));
  const config = await errOf(() => bad.sync.nextPage({ mode: 'full' }, undefined));
  assert.deepEqual([config.tag, config.val.field], ['config', 'count']);

  // Persons have the person fields.
  const persons = await instantiate(stubHost({ config: { count: 3, entityType: 'persons' } }));
  const [page] = await runSync(persons.sync, { mode: 'full' });
  for (const item of page.items) {
    assert.equal(item.entityType, 'persons');
    const data = JSON.parse(item.data);
    for (const key of Object.keys(data)) assert.ok(PERSON_FIELDS.includes(key), `persons have no field ${key}`);
    assert.equal(typeof data.display_name, 'string');
  }

  // A JSON API through fetch(): every page, the checkpoint its newest task, a deletion.
  const api = await startTasksApi();
  try {
    const stub = stubHost({ config: { baseUrl: `${api.url}/` } });
    const viaApi = (await instantiate(stub)).sync;
    const pages = await runSync(viaApi, { mode: 'full' });
    assert.deepEqual(pages.map((p) => p.items.map((i) => i.externalId)), [['api-1', 'api-2'], ['api-3', 'api-4'], ['api-5']]);
    assert.equal(pages[2].items[0].operation, 'delete');
    assert.deepEqual(pages.map((p) => checkpointOf(p).since), [2, 4, 5].map((d) => new Date(Date.UTC(2026, 2, d)).toISOString()));
    const since = new Date(Date.UTC(2026, 2, 4)).toISOString();
    const later = await runSync(viaApi, { mode: 'incremental', cursor: JSON.stringify({ v: 1, since }) });
    assert.deepEqual(later.flatMap((p) => p.items.map((i) => i.externalId)), ['api-4', 'api-5']);
    const asked = await api.seen();
    assert.ok(asked.includes(`/tasks?page=1&since=${encodeURIComponent(since)}`), asked.join(', '));

    const wrong = (await instantiate(stubHost({ config: { baseUrl: `${api.url}/nowhere` } }))).sync;
    const status = await errOf(() => wrong.nextPage({ mode: 'full' }, undefined));
    assert.deepEqual([status.tag, status.val.status], ['http', 500]);
  } finally {
    await api.stop();
  }
}

// ---------- the channel ----------

const SECRET = 'check-signing-secret';
const webhook = (body, headers = [], method = 'POST', query) => ({
  method,
  url: 'https://hub.example/webhooks/js-chat/check',
  query,
  headers: [{ name: 'content-type', value: 'application/json' }, ...headers],
  body: new TextEncoder().encode(body),
  receivedAt: '2026-06-01T12:00:00Z',
});
const signed = (body, secret = SECRET) =>
  webhook(body, [{ name: 'x-signature', value: createHmac('sha256', secret).update(body).digest('hex') }]);

async function checkChannel(instantiate) {
  const stub = stubHost({ config: { apiBase: 'http://127.0.0.1:9/api/' }, secrets: { signingSecret: SECRET, apiToken: 'never-read' } });
  const { messaging } = await instantiate(stub);
  const body = JSON.stringify({ id: 'd-1', message_id: 'm-1', conversation_id: 'c-1', from: { address: 'alice', name: 'Alice' }, to: ['bot'], text: 'Hello', sent_at: '2026-06-01T11:59:00+02:00' });

  // A correctly signed body is accepted under its id, again and again on a warm instance.
  for (let n = 0; n < 3; n++) assert.deepEqual(await messaging.verifyWebhook(signed(body)), { tag: 'accept', val: 'd-1' });
  // A wrong, missing or malformed signature is refused with 401 and says which.
  const wrong = await errOf(() => messaging.verifyWebhook(signed(body, 'another-secret')));
  assert.equal(wrong.status, 401);
  assert.match(wrong.reason, /does not match/);
  const tampered = await errOf(() => messaging.verifyWebhook({ ...signed(body), body: new TextEncoder().encode(body.replace('Hello', 'Hellp')) }));
  assert.equal(tampered.status, 401);
  const missing = await errOf(() => messaging.verifyWebhook(webhook(body)));
  assert.deepEqual([missing.status, /missing/.test(missing.reason)], [401, true]);
  const malformed = await errOf(() => messaging.verifyWebhook(webhook(body, [{ name: 'x-signature', value: 'abc' }])));
  assert.deepEqual([malformed.status, /not a hex/.test(malformed.reason)], [401, true]);
  const noId = await errOf(() => messaging.verifyWebhook(signed('{"text":"hi"}')));
  assert.deepEqual([noId.status, /`id`/.test(noId.reason)], [400, true]);
  // The URL check is answered with its challenge.
  const challenge = await messaging.verifyWebhook(webhook('', [], 'GET', 'challenge=abc%20123'));
  assert.equal(challenge.tag, 'respond');
  assert.equal(challenge.val.status, 200);
  assert.equal(new TextDecoder().decode(challenge.val.body), 'abc 123');
  // Without its secret the instance is misconfigured, naming the field and nothing else.
  const unset = await instantiate(stubHost({}));
  const misconfigured = await errOf(() => unset.messaging.verifyWebhook(signed(body)));
  assert.deepEqual([misconfigured.status, /signingSecret/.test(misconfigured.reason)], [500, true]);

  assert.deepEqual(messaging.headersToKeep(), ['content-type']);

  // The events of a webhook, in the Rust SDK's IncomingEvent shape.
  const [message] = JSON.parse(await messaging.handleIncoming(signed(body)));
  assert.deepEqual(message, {
    kind: 'message',
    provider_message_id: 'm-1',
    conversation_id: 'c-1',
    sender: { address: 'alice', display_name: 'Alice' },
    recipients: [{ address: 'bot' }],
    text: 'Hello',
    sent_at: '2026-06-01T09:59:00.000Z',
    raw: JSON.parse(body),
  });
  const [status] = JSON.parse(await messaging.handleIncoming(signed('{"id":"d-2","type":"status","message_id":"p-7","status":"delivered"}')));
  assert.deepEqual(status, { kind: 'delivery_status', provider_message_id: 'p-7', status: 'delivered', at: '2026-06-01T12:00:00.000Z' });

  // A send: POST <apiBase>/messages with the token attached by the host, never read.
  stub.calls.secrets.length = 0;
  const sender = stubHost({
    config: { apiBase: 'http://127.0.0.1:9/api/' },
    secrets: { signingSecret: SECRET, apiToken: 'never-read' },
    fetch: () => ({ status: 201, headers: [], body: new TextEncoder().encode('{"id":"p-9","status":"queued"}') }),
  });
  const out = (await instantiate(sender)).messaging;
  const outbound = JSON.stringify({ id: '0190f3a0-0000-7000-8000-000000000001', recipients: [{ address: 'alice' }], text: 'Hi' });
  const sent = JSON.parse(await out.sendMessage(outbound));
  assert.deepEqual(sent, { id: '0190f3a0-0000-7000-8000-000000000001', provider_message_id: 'p-9', status: 'queued', sent_at: '2026-06-01T12:00:00.000Z' });
  const [request] = sender.calls.requests;
  assert.deepEqual([request.method, request.url], ['POST', 'http://127.0.0.1:9/api/messages']);
  assert.deepEqual(request.auth, { tag: 'bearer', val: 'apiToken' });
  assert.deepEqual(JSON.parse(new TextDecoder().decode(request.body)).to, ['alice']);
  assert.deepEqual(sender.calls.secrets, [], 'the channel read a secret to send');
  // The provider's error status, and the host's refusal passed through unchanged.
  const failing = stubHost({ config: { apiBase: 'http://127.0.0.1:9' }, fetch: () => ({ status: 503, headers: [], body: new TextEncoder().encode('down') }) });
  const unavailable = await errOf(async () => (await instantiate(failing)).messaging.sendMessage(outbound));
  assert.deepEqual([unavailable.tag, unavailable.val.status], ['http', 503]);
  const denied = await errOf(async () => (await instantiate(stubHost({ config: { apiBase: 'http://127.0.0.1:9' } }))).messaging.sendMessage(outbound));
  assert.deepEqual(denied, { tag: 'denied', val: 'no network in this check' });
}

// ---------- the hostile plugins ----------
// What can be run outside the host without hanging or exhausting node: the behaviours that
// spin or allocate for ever, and the fetches of hosts not granted, are the hostile-plugin
// suite's (services/connector and services/channel tests), against the real host.

async function checkHostileConnector(instantiate, manifest) {
  const run = async (settings, stub = stubHost({ config: settings })) => (await instantiate(stub)).sync.nextPage({ mode: 'full' }, undefined);

  const quiet = await run({ behaviour: 'well-behaved', count: 3 });
  assert.deepEqual(quiet.items.map((i) => i.externalId), ['doc-0', 'doc-1', 'doc-2']);
  for (const item of quiet.items) {
    assert.equal(item.entityType, 'documents');
    for (const key of Object.keys(JSON.parse(item.data))) assert.ok(DOCUMENT_FIELDS.includes(key), `documents have no field ${key}`);
  }
  assert.deepEqual([JSON.parse(quiet.checkpoint), quiet.next], [{ done: 3 }, undefined]);

  const unknown = await errOf(() => run({ behaviour: 'sulk' }));
  assert.deepEqual([unknown.tag, unknown.val.field], ['config', 'behaviour']);

  // The host's refusal of an event comes back out of the export as it was.
  const stub = stubHost({ config: { behaviour: 'emit-ungranted' } });
  const subjects = [];
  const refuse = stub.host.emitEvent;
  stub.host.emitEvent = (subject, payload) => {
    subjects.push(subject);
    return refuse(subject, payload);
  };
  const denied = await errOf(() => run({}, stub));
  assert.deepEqual([denied, subjects], [{ tag: 'denied', val: 'event:publish' }, ['hostile.forbidden']]);

  const [person] = (await run({ behaviour: 'entity-ungranted' })).items;
  assert.equal(person.entityType, 'persons');
  assert.ok(!manifest.permissions.includes('data:write:persons'), 'the manifest must not grant the entity type it yields');

  const [big] = (await run({ behaviour: 'big-item' })).items;
  assert.ok(big.data.length > manifest.limits.itemBytes, `the big item has ${big.data.length} bytes, the limit is ${manifest.limits.itemBytes}`);

  // A plain Error is no plugin-error: the guest traps.
  await assert.rejects(() => run({ behaviour: 'trap' }), (e) => !(e && 'payload' in e));

  const leaked = await errOf(() => run({ behaviour: 'leak-config', count: 7 }));
  assert.equal(leaked.tag, 'other');
  assert.match(leaked.val, /"count":7/);

  const flood = stubHost({ config: { behaviour: 'log-flood', lines: 1000, count: 2 } });
  const afterFlood = await run({}, flood);
  assert.equal(flood.calls.logs.length, 1000);
  assert.equal(afterFlood.items.length, 2);
}

async function checkHostileChannel(instantiate) {
  const messaging = async (behaviour) => (await instantiate(stubHost({ config: { behaviour } }))).messaging;
  await assert.rejects(async () => (await messaging('trap')).verifyWebhook(webhook('{}')), (e) => !(e && 'payload' in e));
  const misconfigured = await errOf(async () => (await messaging('sulk')).verifyWebhook(webhook('{}')));
  assert.deepEqual([misconfigured.status, /behaviour/.test(misconfigured.reason)], [500, true]);
  assert.deepEqual((await messaging('loop')).headersToKeep(), ['content-type']);
}

// ---------- every built plugin ----------

const CHECKS = { connector: checkConnector, channel: checkChannel };
/** Plugins whose behaviour is not their world's example's. */
const CHECKS_BY_ID = {
  'com.example.js-hostile': checkHostileConnector,
  'com.example.js-hostile-patient': checkHostileConnector,
  'com.example.js-hostile-chat': checkHostileChannel,
};
const root = positionals[0];
const workRoot = await mkdtemp(join(tmpdir(), 'tributary-guest-check-'));
let failed = false;
try {
  for (const id of (await readdir(root)).sort()) {
    const started = performance.now();
    try {
      const manifest = JSON.parse(await readFile(join(root, id, 'plugin.json'), 'utf8'));
      assert.equal(manifest.id, id);
      const wasm = await readFile(join(root, id, manifest.entrypoint.slice('wasm:'.length)));
      assert.equal(manifest.sha256, createHash('sha256').update(wasm).digest('hex'), 'the manifest names another sha256');
      assert.deepEqual(await importsOf(wasm), EXPECTED_IMPORTS[manifest.type], 'its imports changed: update check.mjs, README.md and tell the host');
      const instantiate = await load(wasm, join(workRoot, id));
      await (CHECKS_BY_ID[id] ?? CHECKS[manifest.type])(instantiate, manifest);
      console.log(`check: ${id}: ok in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (e) {
      failed = true;
      console.error(`check: ${id}: FAILED: ${e?.stack ?? e}`);
    }
  }
} finally {
  await rm(workRoot, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
