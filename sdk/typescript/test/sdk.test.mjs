// The SDK's behaviour a plugin depends on, under node with a stub host (test/stub-host.ts):
//
//   node sdk/typescript/scripts/test.mjs --toolchain <dir holding node_modules>
//
// The built components are checked against the real host by the templates' test cases
// (`tributary plugins test`); these pin the helpers' contracts one by one.

import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';

import {
  ConfigError,
  HttpError,
  PermissionDenied,
  PluginError,
  TransientError,
  WebhookRejected,
  accept,
  bearer,
  config,
  configInt,
  configUrl,
  defineChannel,
  defineConnector,
  emitEvent,
  fromHex,
  hmacSha256,
  messageEvent,
  paginate,
  parseLinkHeader,
  parseRetryAfterMs,
  participant,
  remove,
  request,
  requestJson,
  requireConfig,
  respond,
  safeEqual,
  secret,
  sentMessage,
  toHex,
  toPluginError,
  upsert,
  withRetry,
} from '../src/index.ts';
import { answer, hostError, reset, state } from './stub-host.ts';

beforeEach(() => reset());

describe('errors', () => {
  it('keeps a host refusal as denied with the permission text, through request and an export', async () => {
    await assert.rejects(request({ url: 'https://api.example.com/notes' }), (error) => {
      assert.ok(error instanceof PermissionDenied);
      assert.equal(error.permission, 'network:outbound:api.example.com');
      assert.deepEqual(error.toWit(), { tag: 'denied', val: 'network:outbound:api.example.com' });
      return true;
    });
    const sync = defineConnector({
      async nextPage() {
        try {
          await request({ url: 'https://api.example.com/notes' });
        } catch (error) {
          throw error; // caught and thrown again: still the host's refusal
        }
        return { items: [] };
      },
    });
    assert.deepEqual(await sync.nextPage({ mode: 'full' }, undefined), {
      tag: 'err',
      val: { tag: 'denied', val: 'network:outbound:api.example.com' },
    });
  });

  it('maps every case of a host error to its class and back', () => {
    const cases = [
      { tag: 'denied', val: 'event:publish:x' },
      { tag: 'limit', val: 'memory' },
      { tag: 'config', val: { field: 'token', message: 'is not set' } },
      { tag: 'http', val: { status: 502, message: 'bad gateway' } },
      { tag: 'transient', val: 'timed out' },
      { tag: 'other', val: 'something' },
    ];
    for (const wit of cases) assert.deepEqual(toPluginError(hostError(wit)).toWit(), wit);
    assert.throws(() => emitEvent('x', {}), (e) => e instanceof PermissionDenied && e.permission === 'event:publish:x');
  });

  it('carries its WIT value as an own payload, as componentize-js reads a thrown err', () => {
    const error = new ConfigError('baseUrl', 'must be an https URL');
    assert.ok(Object.prototype.hasOwnProperty.call(error, 'payload'));
    assert.deepEqual(error.payload, { tag: 'config', val: { field: 'baseUrl', message: 'must be an https URL' } });
    assert.equal(error.message, 'config field `baseUrl` must be an https URL');
  });

  it('turns a bug into other, saying what was thrown where', () => {
    const wit = toPluginError(new TypeError("Cannot read properties of undefined (reading 'id')")).toWit();
    assert.equal(wit.tag, 'other');
    assert.match(wit.val, /^the plugin failed: TypeError: Cannot read properties of undefined \(reading 'id'\) \(at .*:\d+:\d+\)?/);
  });
});

describe('config', () => {
  it('parses the host config and names a missing key', () => {
    reset({ config: { team: '', baseUrl: 'https://api.example.com/v1/', pageSize: 5000 } });
    const settings = config();
    assert.throws(() => requireConfig(settings, 'team'), (e) => e instanceof ConfigError && e.field === 'team' && e.problem === 'is required');
    assert.throws(() => requireConfig(settings, 'owner'), (e) => e.toWit().val.field === 'owner');
    assert.equal(configUrl(settings, 'baseUrl'), 'https://api.example.com/v1');
    assert.throws(() => configUrl({ baseUrl: 'ftp://x' }, 'baseUrl'), /config field `baseUrl` must be an http or https URL/);
    assert.throws(() => configInt(settings, 'pageSize', 100, 1, 1000), /config field `pageSize` must be a whole number from 1 to 1000, found 5000/);
    assert.equal(configInt(settings, 'limit', 100, 1, 1000), 100);
  });

  it('reads a secret, and a secret not set is a config error naming it', () => {
    reset({ secrets: { apiToken: 't0k3n' } });
    assert.equal(secret('apiToken'), 't0k3n');
    assert.throws(() => secret('signingSecret'), (e) => e instanceof ConfigError && e.field === 'signingSecret');
  });
});

describe('request', () => {
  it('sends method, query, headers, a JSON body and the auth for the host to attach', async () => {
    reset({ fetch: () => answer(200, { ok: true }, { 'Content-Type': 'application/json', Link: '<https://api.example.com/n?page=2>; rel="next"' }) });
    const response = await request({
      method: 'post',
      url: 'https://api.example.com/notes?x=1',
      query: { page: 2, since: '2026-01-01T00:00:00Z', skip: undefined },
      headers: { accept: 'application/json' },
      json: { title: 'Hi' },
      auth: bearer('apiToken'),
      timeoutMs: 5000,
    });
    const [sent] = state.requests;
    assert.equal(sent.method, 'POST');
    assert.equal(sent.url, 'https://api.example.com/notes?x=1&page=2&since=2026-01-01T00%3A00%3A00Z');
    assert.deepEqual(sent.headers, [{ name: 'accept', value: 'application/json' }, { name: 'content-type', value: 'application/json' }]);
    assert.equal(new TextDecoder().decode(sent.body), '{"title":"Hi"}');
    assert.deepEqual(sent.auth, { tag: 'bearer', val: 'apiToken' });
    assert.equal(sent.timeoutMs, 5000);
    assert.equal(response.header('content-type'), 'application/json');
    assert.deepEqual(response.json(), { ok: true });
    assert.deepEqual(response.links(), { next: 'https://api.example.com/n?page=2' });
  });

  it('turns an error status into HttpError naming method, host and path (not the query), with Retry-After', async () => {
    reset({ fetch: () => answer(429, 'slow down', { 'retry-after': '7' }) });
    await assert.rejects(requestJson({ url: 'https://api.example.com/notes?key=secret' }), (error) => {
      assert.ok(error instanceof HttpError);
      assert.equal(error.status, 429);
      assert.equal(error.message, 'GET api.example.com/notes answered 429: slow down');
      assert.equal(error.retryAfterMs, 7000);
      assert.deepEqual(error.toWit(), { tag: 'http', val: { status: 429, message: error.message } });
      return true;
    });
  });

  it('says which request got no answer', async () => {
    reset({
      fetch: () => {
        throw hostError({ tag: 'transient', val: 'connection refused' });
      },
    });
    await assert.rejects(request({ url: 'https://api.example.com/notes' }), (e) => e instanceof TransientError && e.message === 'GET api.example.com/notes got no answer: connection refused');
  });

  it('reads Retry-After in seconds and as an HTTP date, and Link headers', () => {
    const now = Date.UTC(2015, 9, 21, 7, 28, 0);
    assert.equal(parseRetryAfterMs('120', now), 120000);
    assert.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', now), 30000);
    assert.equal(parseRetryAfterMs('Wednesday, 21-Oct-15 07:29:00 GMT', now), 60000);
    assert.equal(parseRetryAfterMs('Tue, 20 Oct 2015 07:28:00 GMT', now), 0);
    assert.equal(parseRetryAfterMs('soon', now), undefined);
    assert.deepEqual(parseLinkHeader('<https://a/2>; rel="next", <https://a/9>; rel="last prev"'), {
      next: 'https://a/2',
      last: 'https://a/9',
      prev: 'https://a/9',
    });
  });
});

describe('withRetry', () => {
  it('waits what Retry-After asks, then succeeds', async () => {
    let calls = 0;
    reset({ fetch: () => (++calls === 1 ? answer(503, 'busy', { 'retry-after': '1' }) : answer(200, { n: 1 })) });
    const started = state.now;
    assert.deepEqual(await withRetry(() => requestJson({ url: 'https://api.example.com/x' })), { n: 1 });
    assert.equal(calls, 2);
    assert.ok(state.now - started >= 1000, `waited ${state.now - started} ms`);
    assert.match(state.logs[0], /^warn: Retrying after 1000 ms \(attempt 1 of 3\)/);
  });

  it('does not wait longer than maxWaitMs: the error is thrown at once', async () => {
    reset({ fetch: () => answer(429, 'later', { 'retry-after': '60' }) });
    await assert.rejects(withRetry(() => requestJson({ url: 'https://api.example.com/x' })), (e) => e instanceof HttpError && e.status === 429);
    assert.equal(state.requests.length, 1);
  });

  it('retries transient errors with a doubling wait, gives up after `attempts`, and leaves other errors alone', async () => {
    let calls = 0;
    const started = state.now;
    await assert.rejects(
      withRetry(() => {
        calls++;
        throw new TransientError('flaky');
      }, { attempts: 3, baseMs: 100 }),
      /flaky/,
    );
    assert.equal(calls, 3);
    assert.ok(state.now - started >= 300);
    calls = 0;
    await assert.rejects(
      withRetry(() => {
        calls++;
        throw new HttpError(404, 'gone');
      }),
      /gone/,
    );
    assert.equal(calls, 1);
    const forbidden = (e) => e instanceof HttpError && e.status === 403;
    calls = 0;
    assert.equal(await withRetry(() => (++calls < 2 ? Promise.reject(new HttpError(403, 'rate limited')) : 'ok'), { retryIf: forbidden }), 'ok');
  });
});

describe('paginate', () => {
  it('follows the cursors until next is null', async () => {
    const pages = { a: { page: [1, 2], next: 'b' }, b: { page: [3], next: null } };
    const seen = [];
    for await (const page of paginate('a', (cursor) => pages[cursor])) seen.push(page);
    assert.deepEqual(seen, [[1, 2], [3]]);
  });

  it('stops a chain that does not move on, and when the host cancels', async () => {
    await assert.rejects(async () => {
      for await (const _ of paginate({ p: 1 }, () => ({ page: [], next: { p: 1 } })));
    }, /the cursor chain does not move on: \{"p":1\} came back/);
    state.cancelled = true;
    await assert.rejects(async () => {
      for await (const _ of paginate(1, () => ({ page: [], next: 2 })));
    }, (e) => e instanceof TransientError);
  });
});

describe('defineConnector', () => {
  it('hands JSON values in and out, with the items in the WIT shape', async () => {
    const seen = [];
    const sync = defineConnector({
      nextPage(request, token) {
        seen.push({ request, token });
        return {
          items: [
            upsert('documents', 7, 'Thu, 01 Jan 2026 10:00:00 +0100', { title: 'Seven' }),
            remove('documents', 'n8', '2026-01-02T00:00:00Z', { id: 'n8' }),
          ],
          checkpoint: { since: '2026-01-02T00:00:00Z' },
          next: { page: 2 },
        };
      },
    });
    const result = await sync.nextPage({ mode: 'incremental', cursor: '{"since":"2025-12-31T00:00:00Z"}' }, '{"page":1}');
    assert.deepEqual(seen, [{ request: { mode: 'incremental', since: null, cursor: { since: '2025-12-31T00:00:00Z' } }, token: { page: 1 } }]);
    assert.deepEqual(result, {
      tag: 'ok',
      val: {
        items: [
          { entityType: 'documents', externalId: '7', operation: 'upsert', sourceModifiedAt: '2026-01-01T09:00:00.000Z', data: '{"title":"Seven"}', raw: 'null' },
          { entityType: 'documents', externalId: 'n8', operation: 'delete', sourceModifiedAt: '2026-01-02T00:00:00Z', data: '{}', raw: '{"id":"n8"}' },
        ],
        checkpoint: '{"since":"2026-01-02T00:00:00Z"}',
        next: '{"page":2}',
      },
    });
    const last = await defineConnector({ nextPage: () => ({ items: [], checkpoint: null, next: null }) }).nextPage({ mode: 'full' }, undefined);
    assert.deepEqual(last, { tag: 'ok', val: { items: [], checkpoint: undefined, next: undefined } });
  });

  it('answers errors as their case: a bad item, a config error, a bug', async () => {
    const run = (nextPage) => defineConnector({ nextPage }).nextPage({ mode: 'full' }, undefined);
    const bad = await run(() => ({ items: [{ entityType: 'tasks', externalId: 't1', sourceModifiedAt: '2026-01-01T00:00:00Z', data: {} }] }));
    assert.deepEqual(bad, { tag: 'err', val: { tag: 'other', val: 'item 0 (tasks `t1`): the entity type must be one of persons, organizations, conversations, messages, calendar_events, documents' } });
    const undated = await run(() => ({ items: [upsert('documents', 'd', 'yesterday', { title: 'D' })] }));
    assert.match(undated.val.val, /^item 0 \(documents `d`\): sourceModifiedAt must be an RFC 3339 time, found "yesterday"$/);
    assert.deepEqual(await run(() => requireConfig({}, 'baseUrl')), { tag: 'err', val: { tag: 'config', val: { field: 'baseUrl', message: 'is required' } } });
    const bug = await run((request) => request.nothing.here);
    assert.equal(bug.tag, 'err');
    assert.match(bug.val.val, /^the plugin failed: TypeError/);
    const token = await defineConnector({ nextPage: () => ({ items: [] }) }).nextPage({ mode: 'full' }, '{oops');
    assert.match(token.val.val, /^unreadable page token "\{oops": /);
  });
});

describe('defineChannel', () => {
  const webhook = (body, headers = {}, method = 'POST') => ({
    method,
    url: 'https://hub.example/webhooks/x',
    query: 'a=1&a=2&b=3',
    headers: Object.entries({ 'content-type': 'application/json', ...headers }).map(([name, value]) => ({ name, value })),
    body: new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)),
    receivedAt: '2026-01-10T12:00:00Z',
  });

  it('accepts, responds and rejects, and names a missing secret without showing the request', async () => {
    const messaging = defineChannel({
      verifyWebhook(w) {
        if (w.method === 'GET') return respond(200, w.queryParams().a);
        if (!safeEqual(w.header('X-Token') ?? '', secret('webhookToken'))) throw new WebhookRejected(401, 'wrong token');
        if (w.json().crash) return w.json().missing.field;
        return accept(w.json().id);
      },
      headersToKeep: ['Content-Type'],
      handleIncoming: () => [],
    });
    reset({ secrets: { webhookToken: 'sesame' } });
    assert.deepEqual(await messaging.verifyWebhook(webhook({ id: 42 }, { 'x-token': 'sesame' })), { tag: 'ok', val: { tag: 'accept', val: '42' } });
    const handshake = await messaging.verifyWebhook(webhook('', {}, 'GET'));
    assert.equal(handshake.val.tag, 'respond');
    assert.equal(new TextDecoder().decode(handshake.val.val.body), '1');
    assert.deepEqual(await messaging.verifyWebhook(webhook({ id: 1 }, { 'x-token': 'sesame!' })), { tag: 'err', val: { status: 401, reason: 'wrong token' } });
    assert.deepEqual(await messaging.verifyWebhook(webhook('not json', { 'x-token': 'sesame' })), {
      tag: 'err',
      val: { status: 400, reason: 'the body is not JSON: ' + (() => { try { JSON.parse('not json'); } catch (e) { return e.message; } })() },
    });
    assert.deepEqual(await messaging.verifyWebhook(webhook({ crash: true }, { 'x-token': 'sesame' })), { tag: 'err', val: { status: 500, reason: 'the channel plugin failed: TypeError' } });
    reset();
    assert.deepEqual(await messaging.verifyWebhook(webhook({ id: 1 }, { 'x-token': 'sesame' })), {
      tag: 'err',
      val: { status: 500, reason: 'the channel instance is misconfigured (config field `webhookToken`)' },
    });
    assert.deepEqual(messaging.headersToKeep(), ['content-type']);
  });

  it('answers events and the sent message as JSON, times in RFC 3339', async () => {
    const messaging = defineChannel({
      verifyWebhook: () => accept('x'),
      handleIncoming: (w) => [
        messageEvent({ provider_message_id: 'm1', sender: participant('u1', 'Ann'), text: w.text(), sent_at: 'Sat, 10 Jan 2026 13:00:00 +0100' }),
      ],
      async sendMessage(message) {
        const sent = await requestJson({ method: 'POST', url: 'https://api.example.com/messages', json: { text: message.text }, auth: bearer('apiToken') });
        return sentMessage({ id: message.id, provider_message_id: sent.id, status: 'queued', sent_at: '2026-01-10T12:00:01Z' });
      },
    });
    const events = await messaging.handleIncoming(webhook('hello'));
    assert.deepEqual(JSON.parse(events.val), [
      { kind: 'message', provider_message_id: 'm1', sender: { address: 'u1', display_name: 'Ann' }, text: 'hello', sent_at: '2026-01-10T12:00:00.000Z', recipients: [], raw: null },
    ]);
    reset({ fetch: () => answer(201, { id: 'p1' }) });
    const sent = await messaging.sendMessage(JSON.stringify({ id: 'u-1', recipients: [{ address: 'a' }], text: 'hi' }));
    assert.deepEqual(JSON.parse(sent.val), { id: 'u-1', provider_message_id: 'p1', status: 'queued', sent_at: '2026-01-10T12:00:01Z' });
    assert.deepEqual(state.requests[0].auth, { tag: 'bearer', val: 'apiToken' });
    reset();
    assert.deepEqual((await messaging.sendMessage('{"id":"u-2","recipients":[],"text":"x"}')).val, { tag: 'denied', val: 'network:outbound:api.example.com' });
    const receiveOnly = defineChannel({ verifyWebhook: () => accept('x'), handleIncoming: () => [] });
    assert.deepEqual((await receiveOnly.sendMessage('{}')).val, { tag: 'other', val: 'this channel only receives; it sends no messages' });
  });
});

describe('crypto', () => {
  it('compares in constant time, and computes HMAC-SHA256 and hex', async () => {
    assert.equal(safeEqual('token', 'token'), true);
    assert.equal(safeEqual('token', 'tokem'), false);
    assert.equal(safeEqual('token', 'token2'), false);
    assert.equal(safeEqual('', ''), true);
    assert.equal(safeEqual('', 'x'), false);
    // RFC 4231, test case 2.
    assert.equal(toHex(await hmacSha256('Jefe', 'what do ya want for nothing?')), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    assert.deepEqual(fromHex('00ff10'), new Uint8Array([0, 255, 16]));
    assert.equal(fromHex('abc'), undefined);
    assert.ok(new PluginError('x') instanceof Error);
  });
});
