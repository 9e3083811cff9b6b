// Live updates for the Tributary console. Every page reads without this script; with it,
// each element marked data-live is refreshed from the same page every few seconds while the
// tab is visible, so a running sync's status and counts move as they happen. It sends no
// form and changes nothing: it only reads the page the server renders.
(() => {
  "use strict";
  const live = () => document.querySelectorAll("[data-live]");
  if (live().length === 0) return;
  const every = 2000;
  async function refresh() {
    if (document.hidden) return;
    // Never replace what the person is typing into.
    if (document.activeElement && document.activeElement.closest("[data-live]")) return;
    let response;
    try {
      response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        redirect: "manual",
      });
    } catch (_) {
      return;
    }
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const here of live()) {
      const fresh = page.querySelector(`[data-live="${here.dataset.live}"]`);
      if (fresh && fresh.innerHTML !== here.innerHTML) here.innerHTML = fresh.innerHTML;
    }
  }
  window.setInterval(refresh, every);
})();
