// Live updates for the Tributary console. Every page reads without this script; with it:
// - a page with a sync on it (data-sync-live: an instance id, or "" for every instance)
//   follows the connector service's sync events pushed over server-sent events
//   (/live/syncs): the status, counts, rate and elapsed time change as each arrives, each is
//   written in the page's live log, and when a sync ends the page's live sections are
//   refreshed;
// - each element marked data-live is refreshed from the same page every few seconds while
//   the tab is visible (for what no event announces: an instance's state, a connect attempt).
// It sends no form and changes nothing: it only reads.
(() => {
  "use strict";
  const live = () => document.querySelectorAll("[data-live]");
  let refreshing = false;
  async function refresh() {
    if (document.hidden || refreshing) return;
    // Never replace what the person is typing into.
    if (document.activeElement && document.activeElement.closest("[data-live]")) return;
    refreshing = true;
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        redirect: "manual",
      });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const here of live()) {
        const fresh = page.querySelector(`[data-live="${here.dataset.live}"]`);
        if (fresh && fresh.innerHTML !== here.innerHTML) here.innerHTML = fresh.innerHTML;
      }
    } catch (_) {
      // The next refresh tries again.
    } finally {
      refreshing = false;
    }
  }
  if (live().length > 0) window.setInterval(refresh, 5000);

  const followed = document.querySelector("[data-sync-live]");
  if (!followed || !window.EventSource) return;
  const instance = followed.dataset.syncLive;
  const source = new EventSource(
    instance ? `/live/syncs?instance=${encodeURIComponent(instance)}` : "/live/syncs");
  // Marked while the stream is open (and the browser test waits for it).
  source.addEventListener("open", () => { followed.dataset.liveOpen = "true"; });
  source.addEventListener("error", () => { delete followed.dataset.liveOpen; });
  const log = document.getElementById("live-log");
  const text = (id, value) => {
    const element = document.getElementById(id);
    if (element) element.textContent = value;
  };
  let started = null;
  let ticking = null;
  const showElapsed = () => {
    if (started) text("sync-elapsed", `${Math.round((Date.now() - started) / 1000)} s`);
  };
  const since = document.getElementById("sync-elapsed")?.dataset.started;
  if (since && !Number.isNaN(Date.parse(since))) {
    started = Date.parse(since);
    ticking = window.setInterval(showElapsed, 1000);
    showElapsed();
  }
  source.addEventListener("sync", (message) => {
    let sync;
    try {
      sync = JSON.parse(message.data);
    } catch (_) {
      return;
    }
    if (instance) {
      text("sync-status", sync.status);
      const status = document.getElementById("sync-status");
      if (status) status.className = `state state-${sync.status}`;
      text("sync-count", String(sync.items));
      text("sync-errors", String(sync.errors));
      text("sync-rate", `${sync.rate.toFixed(1)} items/s`);
      if (sync.kind === "started") {
        started = Date.now();
        ticking = ticking || window.setInterval(showElapsed, 1000);
      }
      showElapsed();
    }
    if (log) {
      const line = document.createElement("li");
      const who = instance ? "" : `${sync.instance_id}: `;
      line.textContent = `${new Date().toLocaleTimeString()} ${who}${sync.kind}, ${sync.items} items` +
        (sync.kind === "progress" ? `, ${sync.rate.toFixed(1)} items/s` : "") +
        (sync.error ? ` (${sync.error})` : "");
      line.dataset.kind = sync.kind;
      log.append(line);
      while (log.children.length > 50) log.firstElementChild.remove();
    }
    if (sync.kind === "completed" || sync.kind === "failed") {
      if (ticking) window.clearInterval(ticking);
      ticking = null;
      started = null;
      // The stored state (finished, last success, totals) as the server now renders it.
      window.setTimeout(refresh, 300);
    }
  });
})();
