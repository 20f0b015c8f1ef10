// The fleet page's rules: whether a host is live or silent, and the figures its card shows.
// Pure: no DOM, no fetch (Node's test runner imports it). Times are epoch seconds.

import { loadAverage, percentage } from "./units.js";

// A host is silent when the server has heard nothing from it for longer than this: three times a 10 s
// agent interval (the agent sends every second by default, so a live agent is never near it, and a
// spool draining after a network blip brings the host back at once).
export const SILENT_AFTER_SECONDS = 30;

// A host's state at `now` by the server's clock (`seen` is the server's clock at its latest accepted
// write, PROTOCOL.md part 3 GET /hosts): "waiting" when it has no sample yet, "silent" when `seen` is
// more than SILENT_AFTER_SECONDS old, else "live". `age` is how long ago it was seen (>= 0, or null).
export function hostStatus(host, now) {
  if (host.seen === null || host.seen === undefined) return { state: "waiting", age: null };
  const age = Math.max(0, now - host.seen);
  return { state: age > SILENT_AFTER_SECONDS ? "silent" : "live", age };
}

// A duration in the largest whole unit that fits: "4 s", "12 min", "3 h", "2 d".
export function duration(seconds) {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

// The status in words, for the card's badge.
export function statusWords(status) {
  if (status.state === "waiting") return "no samples yet";
  if (status.state === "silent") return `silent for ${duration(status.age)}`;
  return "live";
}

// The figures on a host's card from its `latest` values: [label, text] pairs, "–" where the host
// never sent that metric (an original client's CPU-only host shows only CPU).
export function latestFigures(latest) {
  const value = (metric) => (metric in latest ? latest[metric] : null);
  const loads = ["load1", "load5", "load15"].map((metric) => loadAverage(value(metric)));
  return [
    ["CPU", percentage(value("cpu"))],
    ["Memory", percentage(value("mem"))],
    ["Disk", percentage(value("disk"))],
    ["Load 1, 5, 15 min", loads.every((text) => text === "–") ? "–" : loads.join(" ")],
  ];
}

// Where the page shows a host (the URL's fragment: it holds the host's name, never a session hash).
export const hostRoute = (name) => `#host=${encodeURIComponent(name)}`;

// The view a URL fragment names: {view: "fleet"}, {view: "sessions"}, {view: "keys"},
// {view: "host", host: NAME}, or null for none (then the page picks one).
export function parseRoute(fragment) {
  const text = fragment.replace(/^#/, "");
  if (text === "fleet" || text === "sessions" || text === "keys") return { view: text };
  if (text.startsWith("host=")) {
    try {
      const host = decodeURIComponent(text.slice(5));
      if (host) return { view: "host", host };
    } catch {
      return null; // a hand-edited fragment that is not valid percent-encoding
    }
  }
  return null;
}
