// The admin console in a real browser: Debian's headless Chromium driven by Playwright
// (playwright-core), against the real services that tests/tests/console.rs starts. It signs in
// (a wrong token first), looks at every page, adds a plugin from an archive, forges a form post without its CSRF token,
// installs a folder connector instance through the form (its permission granted for
// consent), enables it, presses Sync now and watches the events pushed to the page until the
// sync has succeeded, finds the synced notes through search, opens a person two
// instances know and unmerges her, disables the instance with the keyboard alone, and signs
// out; every form field must have a label. Screenshots go to $SCREENSHOTS.
//
// Inputs (environment): CONSOLE_URL, ADMIN_TOKEN, INSTANCE, FOLDER (its folder's path), FILES
// (how many files the folder holds), PERSON_WORD, PERSON_NAME and PERSON_EMAIL (a person of two
// instances, merged by her address, and a word that finds her), LATE_INSTANCE, LATE_WORD and
// LATE_INSTALL (an instance whose document waits as a dead letter, the document's word, and
// the admin API install that fixes it), SCREENSHOTS, PLAYWRIGHT_MODULES (scripts/playwright-modules),
// WRONG_TOKEN_MESSAGE, CSRF_MESSAGE, ARCHIVE and ARCHIVE_PLUGIN (a plugin's .tar.gz to add
// through the Plugins page, and its id). Prints one line per step; exits 1 on the first failure.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("CONSOLE_URL").replace(/\/$/, "");
const token = env("ADMIN_TOKEN");
const instance = env("INSTANCE");
const files = Number(env("FILES"));
const shots = env("SCREENSHOTS");
const require = createRequire(join(env("PLAYWRIGHT_MODULES"), "noop.js"));
const { chromium } = require("playwright-core");

const step = (what) => console.log(`console.mjs: ${what}`);

// The flags that work on this machine (/work/.library/env/machines/rust-svc.md) and a fresh
// profile (Playwright passes it as --user-data-dir).
const profile = mkdtempSync(join(tmpdir(), "tributary-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1200, height: 800 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

/** Every visible form control of the page has a label (keyboard and screen-reader users). */
async function everyFieldLabelled(page, name) {
  const unlabelled = await page.$$eval("input, select, textarea", (controls) =>
    controls
      .filter((c) => c.type !== "hidden")
      .filter((c) => !(c.labels && c.labels.length > 0) && !c.getAttribute("aria-label"))
      .map((c) => c.outerHTML));
  assert.deepEqual(unlabelled, [], `${name}: form fields without a label`);
}

/**
 * Every visible control of the page (links, buttons, fields; one radio per group, as Tab
 * moves) is reached with Tab alone, from the top of the freshly loaded page.
 */
async function everyControlReachable(page, name) {
  await page.goto(page.url());
  const total = await page.evaluate(() => {
    const controls = [...document.querySelectorAll(
      'a[href], button, input:not([type="hidden"]), select, textarea')]
      .filter((c) => !c.disabled && c.getClientRects().length > 0)
      .filter((c) => !(c.type === "radio" && !c.checked));
    controls.forEach((c, i) => { c.dataset.kbd = String(i); });
    return controls.length;
  });
  const reached = new Set();
  for (let i = 0; i < total * 2 + 10 && reached.size < total; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement?.dataset?.kbd);
    if (at !== undefined) reached.add(at);
  }
  const missed = await page.evaluate((seen) =>
    [...document.querySelectorAll("[data-kbd]")]
      .filter((c) => !seen.includes(c.dataset.kbd))
      .map((c) => c.outerHTML.slice(0, 120)), [...reached]);
  assert.deepEqual(missed, [], `${name}: controls Tab does not reach`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15000);

  // Not signed in: every page goes to the sign-in form.
  await page.goto(`${base}/instances/${instance}`);
  assert.equal(new URL(page.url()).pathname, "/sign-in");
  await everyFieldLabelled(page, "sign-in");
  await shot(page, "sign-in");
  step("a page without a session goes to the sign-in form");

  // A wrong token: refused with the message, and nothing else.
  await page.getByLabel("Admin token").fill(`${token}-wrong`);
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST"),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  assert.equal(refused.status(), 401);
  await page.getByRole("alert").waitFor();
  assert.equal((await page.getByRole("alert").textContent()).trim(), env("WRONG_TOKEN_MESSAGE"));
  assert.equal(new URL(page.url()).pathname, "/sign-in");
  assert.equal((await context.cookies()).filter((c) => c.name === "tributary_console").length, 0);
  await shot(page, "sign-in-refused");
  step("a wrong token is refused with the message");

  // The right token: the overview, with a session cookie the page's scripts cannot read.
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  const session = (await context.cookies()).find((c) => c.name === "tributary_console");
  assert.ok(session, "a session cookie");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.ok(session.expires > Date.now() / 1000, "it expires");
  assert.equal(await page.evaluate(() => document.cookie.includes("tributary_console")), false);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  const services = await page.$$eval("[data-service]", (rows) =>
    rows.map((r) => [r.dataset.service, r.querySelector("td").textContent.trim()]));
  assert.deepEqual(services.map(([s]) => s), ["plugin-manager", "connector", "etl", "channel", "search"]);
  for (const [service, ready] of services) assert.equal(ready, "ready", `${service} is ${ready}`);
  await everyFieldLabelled(page, "overview");
  await everyControlReachable(page, "overview");
  step("signed in: the overview shows five services ready");

  await page.getByRole("link", { name: "Plugins" }).click();
  await page.getByRole("heading", { name: "Plugins" }).waitFor();
  assert.ok((await page.content()).includes("tributary.folder"));
  await everyControlReachable(page, "plugins");
  await shot(page, "plugins");
  step("the plugins page lists the catalog");

  // Add a plugin from an archive through the file input: it lands on its catalog row.
  await everyFieldLabelled(page, "plugins");
  await page.getByLabel("Plugin archive (.tar.gz)").setInputFiles(env("ARCHIVE"));
  await page.getByRole("button", { name: "Add the plugin" }).click();
  await page.getByText(`Added Example Tasks (${env("ARCHIVE_PLUGIN")}) 1.0.0 from`).waitFor();
  assert.equal(new URL(page.url()).hash, `#plugin-${env("ARCHIVE_PLUGIN")}-1.0.0`);
  const row = page.locator(`tr[id="plugin-${env("ARCHIVE_PLUGIN")}-1.0.0"]`);
  assert.ok((await row.textContent()).includes("added"), "listed as added");
  await shot(page, "plugins-added");
  step("a plugin added from an archive through the file input is in the catalog");

  // Install the folder connector through the form: its permission shown for consent and
  // refused until granted, its configuration generated from its configSchema.
  await page.getByRole("link", { name: "Install an instance of Local folder" }).click();
  await page.getByRole("heading", { name: "Install Local folder" }).waitFor();
  await everyFieldLabelled(page, "install");
  await everyControlReachable(page, "install");
  await page.getByLabel("Instance id").fill(instance);
  await page.getByLabel("Enable it once installed").uncheck();
  await page.locator('[name="field.path"]').fill(env("FOLDER"));
  await page.locator('[name="field.schedule"]').fill("24h");
  await shot(page, "install");
  await page.getByRole("button", { name: "Install" }).click();
  await page.locator(".flash.error").waitFor();
  assert.ok((await page.locator(".flash.error").textContent()).includes("data:write:documents"));
  assert.equal(new URL(page.url()).pathname, "/plugins/tributary.folder/install", "refused, still on the form");
  assert.equal(await page.getByLabel("Instance id").inputValue(), instance, "filled in again");
  await page.getByLabel("Grant data:write:documents").check();
  await page.getByRole("button", { name: "Install" }).click();
  await page.getByText(`Installed ${instance}; enable it when it is ready.`).waitFor();
  assert.equal(new URL(page.url()).pathname, `/instances/${instance}`);
  step("the folder connector was installed through the form once its permission was granted");

  await page.goto(`${base}/`);
  await page.getByRole("link", { name: instance }).waitFor();
  await shot(page, "overview");
  step("the overview lists the new instance");

  await page.goto(`${base}/instances/${instance}`);
  assert.equal((await page.locator("#instance-state").textContent()).trim(), "installed");
  await everyFieldLabelled(page, "instance");
  await everyControlReachable(page, "instance");
  await shot(page, "instance");

  // A forged post: the session cookie goes along, the CSRF token does not.
  const forged = await page.evaluate(async (path) => {
    const response = await fetch(path, { method: "POST", body: new URLSearchParams({ mode: "full" }) });
    return { status: response.status, text: await response.text() };
  }, `/instances/${instance}/enable`);
  assert.equal(forged.status, 403);
  assert.ok(forged.text.includes(env("CSRF_MESSAGE")), forged.text);
  await page.reload();
  assert.equal((await page.locator("#instance-state").textContent()).trim(), "installed", "nothing changed");
  step("a form posted without its CSRF token is refused 403 and changes nothing");

  // Enable, then Sync now: the page follows the sync by itself (its script) until it succeeded.
  await page.getByRole("button", { name: "Enable" }).click();
  await page.getByText("Enabled: its service starts it.").waitFor();
  assert.equal((await page.locator("#instance-state").textContent()).trim(), "enabled");
  // The connector service may start a first sync on its own when the instance is enabled.
  await page.waitForFunction(() => {
    const status = document.querySelector("#sync-status");
    return status && status.textContent.trim() !== "running";
  }, null, { timeout: 60000 });
  await page.getByLabel("Mode").selectOption("full");
  await page.getByRole("button", { name: "Sync now" }).click();
  await page.getByText(/Full sync [0-9a-f-]+ started/).waitFor();
  await page.waitForFunction((n) => {
    const status = document.querySelector("#sync-status")?.textContent.trim();
    const items = document.querySelector("#sync-items")?.textContent ?? "";
    return status === "succeeded" && items.startsWith(`${n} in this sync`);
  }, files, { timeout: 60000 });
  step(`Sync now: the page showed the full sync succeed with ${files} items`);

  // Watched live: with the page open (not reloaded from here on: a mark on it would be gone
  // if it were), a sync started elsewhere (as a schedule or the CLI would, here the admin
  // API) is pushed to it as it happens: its start, then its end with the counts.
  await page.evaluate(() => { window.notReloaded = true; });
  await page.locator('[data-sync-live][data-live-open="true"]').waitFor();
  const started = await page.evaluate(async ({ token, instance }) => {
    const response = await fetch(`/api/v1/instances/${instance}/sync`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ mode: "full" }),
    });
    return response.status;
  }, { token, instance });
  assert.equal(started, 200, "the admin API started a sync");
  await page.locator('#live-log li[data-kind="completed"]').waitFor({ timeout: 60000 });
  const pushed = await page.$$eval("#live-log li", (lines) => lines.map((l) => l.dataset.kind));
  assert.equal(pushed[0], "started", `the sync's start was pushed first: ${pushed}`);
  assert.equal(pushed.at(-1), "completed", `its end was pushed last: ${pushed}`);
  const ended = await page.locator('#live-log li[data-kind="completed"]').textContent();
  assert.ok(ended.includes(`completed, ${files} items`), ended);
  await page.waitForFunction((n) => {
    const status = document.querySelector("#sync-status")?.textContent.trim();
    const count = document.querySelector("#sync-count")?.textContent.trim();
    return status === "succeeded" && count === String(n);
  }, files);
  assert.ok(await page.evaluate(() => window.notReloaded === true), "the page was not reloaded");
  await shot(page, "instance-synced");
  step(`a sync started elsewhere was pushed to the open page as it happened (${pushed.join(", ")}), without a reload`);

  // Its timeline: every sync that ended, with its counts and duration, beside the audit
  // entries of its install; filtered to syncs, newest first.
  await page.getByRole("link", { name: /The whole timeline/ }).click();
  await page.getByRole("heading", { name: /Timeline of/ }).waitFor();
  assert.ok(await page.locator('li.timeline-line[data-kind="audit"]').count() > 0, "the install's audit entries are lines");
  await everyFieldLabelled(page, "timeline");
  await everyControlReachable(page, "timeline");
  await page.getByLabel("Kind").selectOption("sync");
  await page.getByRole("button", { name: "Show" }).click();
  let syncLines = [];
  for (let tries = 0; tries < 50; tries++) {
    syncLines = await page.$$eval("li.timeline-line", (lines) => lines.map((l) => ({
      kind: l.dataset.kind, status: l.dataset.status, summary: l.querySelector(".summary").textContent,
    })));
    if (syncLines.filter((l) => l.summary.startsWith(`full sync completed: ${files} items in `)).length >= 2) break;
    await new Promise((done) => setTimeout(done, 200));
    await page.reload();
  }
  const fullSyncs = syncLines.filter((l) => l.summary.startsWith(`full sync completed: ${files} items in `));
  assert.equal(fullSyncs.length, 2, `both full syncs are on the timeline: ${JSON.stringify(syncLines)}`);
  assert.ok(syncLines.every((l) => l.kind === "sync" && l.status === "ok"), JSON.stringify(syncLines));
  assert.ok(syncLines[0].summary.startsWith("full sync completed"), "newest first");
  await shot(page, "timeline");
  step(`the timeline listed the ${syncLines.length} syncs that ended, with counts and durations, filtered to syncs`);

  // Search: the synced notes, found by a word of theirs, the word marked in each snippet.
  await page.getByRole("link", { name: "Search" }).click();
  await page.getByRole("heading", { name: "Search" }).waitFor();
  await everyFieldLabelled(page, "search");
  await everyControlReachable(page, "search");
  await page.getByLabel("Words").fill("herons");
  await page.getByLabel("Type").selectOption("document");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator("#results-total").waitFor();
  assert.equal((await page.locator("#results-total").textContent()).trim(), String(files));
  const marked = await page.$$eval("li.hit mark", (marks) => marks.map((m) => m.textContent.toLowerCase()));
  assert.ok(marked.length >= files && marked.every((m) => m.startsWith("heron")), `marked: ${marked}`);
  await shot(page, "search");
  step(`search found the ${files} notes by a word of theirs, marked in each snippet`);

  // A person both demo instances know: one person of two records, merged by her address,
  // with the evidence; unmerged from her page.
  await page.getByLabel("Words").fill(env("PERSON_WORD"));
  await page.getByLabel("Type").selectOption("person");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator("#results-total").waitFor();
  assert.equal((await page.locator("#results-total").textContent()).trim(), "1");
  await page.getByRole("link", { name: env("PERSON_NAME") }).click();
  await page.getByRole("heading", { name: env("PERSON_NAME") }).waitFor();
  assert.equal((await page.locator("#sources-count").textContent()).trim(), "2");
  const merge = (await page.locator("li.merge").first().textContent()).replace(/\s+/g, " ");
  assert.ok(merge.includes(`shared e-mail ${env("PERSON_EMAIL")}`), merge);
  await everyFieldLabelled(page, "person");
  await everyControlReachable(page, "person");
  await shot(page, "person");
  await page.getByRole("button", { name: "Unmerge" }).click();
  await page.getByText(/Split into 2 people/).waitFor();
  assert.equal((await page.locator("#sources-count").textContent()).trim(), "1");
  assert.ok((await page.content()).includes("kept apart by admin-console:"));
  await shot(page, "person-unmerged");
  step("a person of two records showed her merge's evidence and was unmerged from her page");

  // A dead letter: a document of an instance not installed yet, refused by the ETL with the
  // reason. The fix (the instance installed, through the admin API the CLI's
  // `plugins install` also calls), then Replay: found once through search, nothing waiting.
  await page.getByRole("link", { name: "Dead letters" }).click();
  await page.getByRole("heading", { name: "Dead letters" }).waitFor();
  assert.equal((await page.locator("#dead-total").textContent()).trim(), "1");
  const reason = await page.locator("li.dead-letter .reason").first().textContent();
  assert.ok(reason.includes(`\`${env("LATE_INSTANCE")}\` is not installed`), reason);
  await everyFieldLabelled(page, "dead-letters");
  await everyControlReachable(page, "dead-letters");
  await shot(page, "dead-letters");
  const installed = await page.evaluate(async ({ token, body }) => {
    const response = await fetch("/api/v1/instances", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });
    return response.status;
  }, { token, body: env("LATE_INSTALL") });
  assert.equal(installed, 201);
  await page.getByRole("button", { name: /^Replay dead letter/ }).click();
  await page.getByText(/replayed onto connector\.items\./).waitFor();
  assert.equal((await page.locator("#dead-total").textContent()).trim(), "0");
  await shot(page, "dead-letters-replayed");
  const late = `${base}/search?q=${encodeURIComponent(env("LATE_WORD"))}&type=document`;
  let found = "";
  for (let i = 0; i < 60 && found !== "1"; i++) {
    if (i > 0) await page.waitForTimeout(500);
    await page.goto(late);
    found = (await page.locator("#results-total").textContent({ timeout: 5000 }).catch(() => "")).trim();
  }
  assert.equal(found, "1", "the replayed document is found once");
  step("a dead-lettered document was replayed after its instance was installed, and found once");

  // Disable with the keyboard alone: Tab to the button, Enter.
  await page.goto(`${base}/instances/${instance}`);
  const disable = page.getByRole("button", { name: "Disable" });
  await page.locator("body").focus();
  for (let i = 0; i < 60 && !(await disable.evaluate((b) => b === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  assert.ok(await disable.evaluate((b) => b === document.activeElement), "Tab reaches Disable");
  await page.keyboard.press("Enter");
  await page.getByText("Disabled: its service stops it.").waitFor();
  assert.equal((await page.locator("#instance-state").textContent()).trim(), "disabled");
  await shot(page, "instance-disabled");
  step("Disable, reached and pressed with the keyboard, disabled it");

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/sign-in`);
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, "/sign-in");
  step("signed out: the overview goes to the sign-in form again");
} catch (e) {
  console.error(`console.mjs: FAILED: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
