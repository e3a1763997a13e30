// runledger dashboard client: live updates over Server-Sent Events, polling when they fail, and
// nothing at all while the tab is hidden or the viewer paused them. Pages listen for the
// `runledger:refresh` event (htmx) and re-fetch their live region.
(() => {
  const root = document.documentElement;
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? "";
  const eventsUrl = meta("runledger-events");
  const pollMs = Math.max(1000, Number(meta("runledger-poll-ms")) || 5000);
  const PAUSED = "runledger-paused";
  let source = null;
  let timer = null;
  let failures = 0;

  const paused = () => sessionStorage.getItem(PAUSED) === "1";
  const refresh = () => window.htmx?.trigger(document.body, "runledger:refresh");
  const show = (state) => {
    root.dataset.live = state;
    const button = document.getElementById("live-toggle");
    if (button) {
      button.setAttribute("aria-pressed", String(state !== "paused"));
      button.textContent = state === "paused" ? "paused" : "live";
      button.title = `Live updates: ${state} (click to ${state === "paused" ? "resume" : "pause"})`;
    }
  };

  function stop() {
    source?.close();
    source = null;
    clearInterval(timer);
    timer = null;
  }

  function poll() {
    stop();
    timer = setInterval(refresh, pollMs);
    show("polling");
  }

  function start() {
    stop();
    if (paused()) return show("paused");
    if (document.hidden) return show("hidden");
    if (!("EventSource" in window) || failures >= 3) return poll();
    source = new EventSource(eventsUrl);
    source.addEventListener("open", () => {
      failures = 0;
      show("sse");
    });
    source.addEventListener("refresh", refresh);
    source.addEventListener("error", () => {
      // EventSource reconnects by itself; after repeated failures, poll instead.
      failures += 1;
      if (source?.readyState === EventSource.CLOSED || failures >= 3) poll();
    });
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      stop();
      show(paused() ? "paused" : "hidden");
    } else {
      start();
      if (!paused()) refresh();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest?.("#live-toggle")) return;
    if (paused()) {
      sessionStorage.removeItem(PAUSED);
      start();
      refresh();
    } else {
      sessionStorage.setItem(PAUSED, "1");
      start();
    }
  });
  // Boosted navigation replaces the header: keep its button in step.
  document.addEventListener("htmx:afterSettle", () => show(root.dataset.live ?? "sse"));
  start();
})();
