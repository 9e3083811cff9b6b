// com.example.js-tasks: an example third-party connector in JavaScript, componentized against
// the `connector` world of proto/wit (tributary:plugin@0.1.0).
//
// The host pulls pages: `sync.nextPage(request, token)` answers one page of items, the
// checkpoint that covers them and the token of the next page (none on the last). Tasks come
// from one of two sources:
// - synthetic (the default): `count` tasks, task-0 to task-<count - 1>, `pageSize` a page. Task i
//   was last modified at 2026-01-01T00:00:00Z plus i minutes, so a second sync of the same tasks
//   changes nothing. The cursor `{"v":1,"next":i}` says every task before i was handed over.
// - a JSON API (config `baseUrl`), read with fetch() (wasi:http, under the host's grants):
//   GET <baseUrl>/tasks?page=N[&since=<RFC 3339>] answers {"tasks": [...], "next": N+1 | null},
//   tasks in order of `updated_at`, `since` inclusive. The cursor `{"v":1,"since":t}` is the
//   newest `updated_at` handed over.
// Modes: `full` reads everything and ignores the cursor; `incremental` reads from the cursor;
// `backfill` reads from `request.since` and moves the cursor only where it read on from it.
//
// WIT in JavaScript (componentize-js): records are objects with camelCase fields, enums are
// their names as strings, `option` is the value or undefined, `json` is a string, a `result`
// export returns its ok value and throws its err value (a plain `{tag, val}` plugin-error); an
// import that answers err throws an Error whose `payload` is the plugin-error.

import { cancelled, config, log } from 'tributary:plugin/host@0.1.0';

/** Task i of the synthetic set was last modified this long after BASE_MS. */
const STEP_MS = 60_000;
/** 2026-01-01T00:00:00Z: when synthetic task 0 was last modified. */
const BASE_MS = Date.UTC(2026, 0, 1);
/** The cursor format; another one is refused rather than misread. */
const CURSOR_VERSION = 1;

const VERBS = ['Review', 'Draft', 'Ship', 'Fix', 'Plan', 'Test', 'Document', 'Price'];
const OBJECTS = [
  'the roadmap',
  'the invoice run',
  'the release notes',
  'the onboarding flow',
  'the loyalty card design',
  'the espresso menu',
  'the supplier contract',
  'the search page',
];
const STATUSES = ['open', 'in_progress', 'done'];
const FIRST_NAMES = ['Ada', 'Tomás', 'Mei', 'Jonas', 'Priya', 'Kwame', 'Lena', 'Omar'];

/** A plugin-error of the `config` case, naming the field. */
function configError(field, message) {
  return { tag: 'config', val: { field, message } };
}

/** A plugin-error of the `other` case. */
function otherError(message) {
  return { tag: 'other', val: message };
}

/** The instance's configuration, checked, with the defaults filled in. */
function settings() {
  let raw;
  try {
    raw = JSON.parse(config());
  } catch (e) {
    throw otherError(`the host's config is not JSON: ${e.message}`);
  }
  const count = raw.count ?? 1000;
  if (!Number.isSafeInteger(count) || count < 0) {
    throw configError('count', `must be a whole number of at least 0, found ${JSON.stringify(count)}`);
  }
  const pageSize = raw.pageSize ?? 100;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 10000) {
    throw configError('pageSize', `must be a whole number from 1 to 10000, found ${JSON.stringify(pageSize)}`);
  }
  const entityType = raw.entityType ?? 'documents';
  if (typeof entityType !== 'string' || entityType === '') {
    throw configError('entityType', `must be an entity type such as "documents", found ${JSON.stringify(entityType)}`);
  }
  let baseUrl;
  if (raw.baseUrl != null) {
    if (typeof raw.baseUrl !== 'string' || !/^https?:\/\/[^/]/.test(raw.baseUrl)) {
      throw configError('baseUrl', `must be an http or https URL, found ${JSON.stringify(raw.baseUrl)}`);
    }
    baseUrl = raw.baseUrl.replace(/\/+$/, '');
  }
  return { count, pageSize, entityType, baseUrl };
}

/** Reads JSON handed back by the host (a token or a cursor); `what` names it in the error. */
function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw otherError(`unreadable ${what}: ${e.message}`);
  }
}

/**
 * The stored cursor's field `field` (`next` or `since`), or undefined without a cursor. A cursor
 * of another shape (another version, the other source) fails an incremental sync or a backfill,
 * which would otherwise read everything again; a full sync ignores it, which is how to recover.
 */
function cursorField(request, field, check) {
  if (request.mode === 'full' || request.cursor == null) return undefined;
  const cursor = parseJson(request.cursor, 'cursor');
  if (cursor === null || cursor.v !== CURSOR_VERSION || !check(cursor[field])) {
    throw otherError(
      `unreadable cursor ${request.cursor}: expected {"v":${CURSOR_VERSION},"${field}":…}; a full sync rebuilds it`,
    );
  }
  return cursor[field];
}

/** Milliseconds of an RFC 3339 time; `what` names it in the error. */
function parseTime(text, what) {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw otherError(`${what} is not an RFC 3339 time: ${JSON.stringify(text)}`);
  return ms;
}

/**
 * The high-water mark after handing over everything from `start` to `end` (indices or times),
 * when `hw` was the stored one: a full or incremental sync reads on from it; a backfill moves it
 * only when it began at or before it (otherwise what lies between was never read).
 */
function advance(mode, hw, start, end, later) {
  if (hw === undefined) return mode === 'backfill' ? undefined : end;
  if (mode === 'backfill' && later(start, hw)) return hw;
  return end === undefined || later(hw, end) ? hw : end;
}

/** The item of `task` as entity type `entityType`, with the unified model's fields. */
function itemOf(task, entityType) {
  let data;
  if (entityType === 'persons') {
    data = {
      display_name: task.assignee ?? `Assignee of ${task.id}`,
      emails: task.assignee_email ? [String(task.assignee_email).toLowerCase()] : [],
      extra: { task: String(task.id) },
    };
  } else {
    data = {
      title: task.title,
      path: `tasks/${task.id}`,
      mime_type: 'text/plain',
      content: task.description ?? '',
      modified_at: task.updated_at,
      extra: { status: task.status ?? null, assignee: task.assignee ?? null },
    };
  }
  return {
    entityType,
    externalId: String(task.id),
    operation: task.deleted === true ? 'delete' : 'upsert',
    sourceModifiedAt: task.updated_at,
    data: JSON.stringify(data),
    raw: JSON.stringify(task),
  };
}

/** Synthetic task `i`: the same every time it is asked for. */
function syntheticTask(i) {
  const first = FIRST_NAMES[i % FIRST_NAMES.length];
  return {
    id: `task-${i}`,
    title: `${VERBS[i % VERBS.length]} ${OBJECTS[(i >> 3) % OBJECTS.length]} (task ${i})`,
    description: `Synthetic task number ${i}, assigned to ${first}. Generated by the JavaScript example connector.`,
    status: STATUSES[i % STATUSES.length],
    assignee: `${first} ${i}`,
    assignee_email: `assignee-${i}@tasks.example`,
    updated_at: new Date(BASE_MS + i * STEP_MS).toISOString(),
  };
}

/** One page of the synthetic set; the token is `{"at": i, "start": first task read, "hw": stored mark}`. */
function syntheticPage(request, token, s) {
  let t;
  if (token == null) {
    // No cursor is the same as one that says nothing was handed over yet.
    const hw = cursorField(request, 'next', (n) => Number.isSafeInteger(n) && n >= 0) ?? 0;
    let at = hw;
    if (request.mode === 'full') at = 0;
    if (request.mode === 'backfill') {
      const since = request.since == null ? BASE_MS : parseTime(request.since, "the backfill's `since`");
      at = Math.max(0, Math.ceil((since - BASE_MS) / STEP_MS));
    }
    t = { at, start: at, hw };
    log('info', `Syncing synthetic tasks (${request.mode}) from task ${at} of ${s.count}, ${s.pageSize} a page.`);
  } else {
    t = parseJson(token, 'page token');
    if (![t?.at, t?.start, t?.hw].every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw otherError(`unreadable page token ${token}`);
    }
  }
  const end = Math.max(t.at, Math.min(s.count, t.at + s.pageSize));
  const items = [];
  for (let i = t.at; i < end; i++) items.push(itemOf(syntheticTask(i), s.entityType));
  const mark = advance(request.mode, t.hw, t.start, end, (a, b) => a > b);
  const more = end < s.count;
  if (!more) log('info', `Handed over the synthetic tasks up to task ${end}.`);
  return {
    items,
    checkpoint: JSON.stringify({ v: CURSOR_VERSION, next: mark }),
    next: more ? JSON.stringify({ ...t, at: end }) : undefined,
  };
}

/** Checks one task of the API's answer; `where` names it in the error. */
function checkTask(task, where) {
  if (task === null || typeof task !== 'object') throw otherError(`${where} is not an object`);
  if (typeof task.id !== 'string' && !Number.isSafeInteger(task.id)) {
    throw otherError(`${where} has no \`id\` (a string or a whole number)`);
  }
  if (typeof task.title !== 'string') throw otherError(`${where} has no \`title\` (a string)`);
  if (typeof task.updated_at !== 'string') throw otherError(`${where} has no \`updated_at\` (an RFC 3339 time)`);
  parseTime(task.updated_at, `${where}'s \`updated_at\``);
}

/**
 * One page of the tasks API; the token is
 * `{"page": N, "since": query or null, "start": where reading began, "hw": stored mark or null, "max": newest seen or null}`.
 */
async function apiPage(request, token, s) {
  let t;
  if (token == null) {
    const hw = cursorField(request, 'since', (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v)));
    const since = request.mode === 'backfill' ? request.since : hw;
    t = { page: 1, since: since ?? null, start: since ?? null, hw: hw ?? null, max: null };
    log('info', `Syncing tasks from ${s.baseUrl} (${request.mode})${since ? ` updated since ${since}` : ''}.`);
  } else {
    t = parseJson(token, 'page token');
  }
  const url = new URL(`${s.baseUrl}/tasks`);
  url.searchParams.set('page', String(t.page));
  if (t.since != null) url.searchParams.set('since', t.since);
  const what = `GET ${url.pathname}${url.search}`;

  let response;
  let text;
  try {
    response = await fetch(url.href, { headers: { accept: 'application/json' } });
    text = await response.text();
  } catch (e) {
    throw { tag: 'transient', val: `${what} got no answer: ${e?.message ?? e}` };
  }
  if (!response.ok) {
    throw { tag: 'http', val: { status: response.status, message: `${what} answered ${response.status}: ${text.slice(0, 200)}` } };
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw otherError(`${what} answered something that is not JSON: ${e.message}`);
  }
  if (body === null || !Array.isArray(body.tasks)) throw otherError(`${what} answered JSON without a \`tasks\` array`);
  if (body.next != null && !Number.isSafeInteger(body.next)) {
    throw otherError(`${what} answered a \`next\` that is neither a page number nor null: ${JSON.stringify(body.next)}`);
  }

  let max = t.max;
  const items = body.tasks.map((task, n) => {
    checkTask(task, `task ${n} of ${what}`);
    if (max === null || Date.parse(task.updated_at) > Date.parse(max)) max = task.updated_at;
    return itemOf(task, s.entityType);
  });
  const later = (a, b) => Date.parse(a) > Date.parse(b);
  const mark = advance(request.mode, t.hw ?? undefined, t.start ?? undefined, max ?? undefined, later);
  log('debug', `${what}: ${items.length} tasks.`);
  return {
    items,
    checkpoint: mark === undefined ? undefined : JSON.stringify({ v: CURSOR_VERSION, since: mark }),
    next: body.next == null ? undefined : JSON.stringify({ ...t, page: body.next, max }),
  };
}

/** The `sync` interface of the `connector` world. */
export const sync = {
  /** The next page of the sync `request`; `token` is none on the first call. */
  async nextPage(request, token) {
    if (cancelled()) throw { tag: 'transient', val: 'the sync was cancelled' };
    const s = settings();
    return s.baseUrl === undefined ? syntheticPage(request, token, s) : apiPage(request, token, s);
  },
};
