// com.example.js-hostile: a connector that misbehaves on purpose, for the hostile-plugin suite
// (services/connector/tests/connector/hostile.rs). It is real toolchain output (componentize-js,
// like js-tasks), so what the host stops is what a third party's JavaScript would do. Config
// `behaviour` picks what `next-page` does:
//
// - `well-behaved`: `count` documents (3), one page, a checkpoint, done.
// - `loop`: spins forever (the call's CPU limit stops it).
// - `bomb`: allocates until memory runs out (the memory limit stops it).
// - `fetch-ungranted`, `fetch-redirect`, `fetch-ip`: fetch() a host the manifest does not grant,
//   directly (`ungranted.example`), through `<grantedUrl>/redirect` (a granted server whose
//   answer redirects elsewhere), or as an IP literal (`192.0.2.7`).
// - `emit-ungranted`: `host.emitEvent` on `hostile.forbidden`, which no permission covers.
// - `entity-ungranted`: one `persons` item; the manifest grants `data:write:documents` only.
// - `big-item`: one item of `size` bytes (100000), over the manifest's `limits.itemBytes`.
// - `trap`: throws a plain Error (a bug, not a plugin-error): the guest traps.
// - `ignore-cancel`: spins forever without ever asking `host.cancelled()`.
// - `log-flood`: `lines` (200000) calls of `host.log`, then a normal page.
// - `leak-config`: fails with what `host.config()` answered, so a test can see that the secret
//   field `apiKey` is not in it.
//
// com.example.js-hostile-patient (plugin.patient.json) is the same component under a generous
// call limit, for `ignore-cancel` (only connector.cancel may stop it) and `log-flood`.

import { config, log, emitEvent } from 'tributary:plugin/host@0.1.0';

/** What each behaviour's settings default to. */
const DEFAULTS = { count: 3, lines: 200_000, size: 100_000 };

const BEHAVIOURS = {
  'well-behaved': (s) => page(s.count),
  loop: () => spin(),
  bomb: () => bomb(),
  'fetch-ungranted': () => fetchPage('http://ungranted.example/tasks'),
  'fetch-redirect': (s) => fetchPage(`${granted(s)}/redirect`),
  'fetch-ip': () => fetchPage('http://192.0.2.7/tasks'),
  'emit-ungranted': () => {
    // An import answering err throws an Error whose payload is the host's plugin-error
    // (`denied`, naming the permission); let through, it is the export's err.
    emitEvent('hostile.forbidden', JSON.stringify({ stolen: true }));
    return page(0);
  },
  'entity-ungranted': () => ({
    items: [item('person-1', 'persons', { display_name: 'Not granted' })],
    checkpoint: JSON.stringify({ done: true }),
    next: undefined,
  }),
  'big-item': (s) => ({
    items: [item('big-1', 'documents', { title: 'Too big', content: 'x'.repeat(s.size) })],
    checkpoint: JSON.stringify({ done: true }),
    next: undefined,
  }),
  trap: () => {
    throw new Error('hostile: a plain Error, not a plugin-error');
  },
  'ignore-cancel': () => {
    log('info', 'spinning without ever asking host.cancelled()');
    return spin();
  },
  'leak-config': () => {
    throw { tag: 'other', val: `the config the host handed over: ${config()}` };
  },
  'log-flood': (s) => {
    for (let i = 0; i < s.lines; i++) log('info', `flood line ${i}`);
    return page(s.count);
  },
};

/** The instance's settings: `behaviour` checked, the rest with their defaults. */
function settings() {
  const raw = JSON.parse(config());
  if (!(raw.behaviour in BEHAVIOURS)) {
    throw {
      tag: 'config',
      val: { field: 'behaviour', message: `must be one of ${Object.keys(BEHAVIOURS).join(', ')}, found ${JSON.stringify(raw.behaviour)}` },
    };
  }
  return { ...DEFAULTS, ...raw };
}

/** The granted URL without its trailing slashes. */
function granted(s) {
  if (typeof s.grantedUrl !== 'string') {
    throw { tag: 'config', val: { field: 'grantedUrl', message: 'is needed for this behaviour' } };
  }
  return s.grantedUrl.replace(/\/+$/, '');
}

/** An upsert of `data` as entity type `entityType`. */
function item(externalId, entityType, data) {
  return {
    entityType,
    externalId,
    operation: 'upsert',
    sourceModifiedAt: '2026-01-01T00:00:00Z',
    data: JSON.stringify(data),
    raw: JSON.stringify({ id: externalId }),
  };
}

/** The one and last page: `count` documents and a checkpoint after them. */
function page(count) {
  const items = [];
  for (let i = 0; i < count; i++) {
    items.push(item(`doc-${i}`, 'documents', { title: `Hostile document ${i}`, content: 'harmless' }));
  }
  return { items, checkpoint: JSON.stringify({ done: count }), next: undefined };
}

/** Spins for ever; a counter the loop depends on, so no engine can drop it. */
function spin() {
  let n = 0;
  for (;;) n = (n + 1) % 1_000_003;
}

/** Holds on to a mebibyte more at each step, for ever. */
function bomb() {
  const hoard = [];
  for (;;) hoard.push(new Uint8Array(1 << 20).fill(hoard.length & 0xff));
}

/** fetch() `url`; what it answers, as a page, or fetch's failure as a transient plugin-error. */
async function fetchPage(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw { tag: 'transient', val: `fetch ${url}: ${e?.message ?? e}` };
  }
  const body = await response.text();
  return { items: [item('fetched-1', 'documents', { title: `fetched ${response.status}`, content: body })], checkpoint: undefined, next: undefined };
}

export const sync = {
  async nextPage(_request, _token) {
    const s = settings();
    return BEHAVIOURS[s.behaviour](s);
  },
};
