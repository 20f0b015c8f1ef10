// perfmon dashboard, the page's module: sign in (user and password, or a pasted key or session hash),
// then the fleet of hosts (#fleet), a host's charts (#host=NAME), a session's CPU (#sessions) or the
// keys page (#keys), refreshed live. It wires the DOM to the modules beside it (no build step). It
// talks to this server's API only. One session per browser tab: its hash lives in sessionStorage
// (this tab, kept across reloads, closed by Sign out), and never in a URL the browser opens: the
// page's fragment names the view and a host, nothing secret, and CSV files are fetched and saved.

import { SessionStore, allowedView, isKeyText, looksLikeKey, offersFor } from "./access.js";
import { ApiError, api, apiAnswer, apiBlob, isTransient, send } from "./api.js";
import { createChart, fitChart, plotWidth } from "./chart.js";
import { SPARK_WIDTH, showFleet } from "./fleetpage.js";
import { formatCount, formatStep, percent, refreshedLine, sessionLabel } from "./format.js";
import { HostCharts } from "./hostpage.js";
import { SILENT_AFTER_SECONDS, duration, hostStatus, parseRoute, statusWords } from "./hosts.js";
import { KeysPage } from "./keyspage.js";
import {
  NOT_A_KEY,
  afterLoad,
  chartLabel,
  describe,
  givenUp,
  notLoggedOut,
  nothingToShow,
  signInAgain,
} from "./messages.js";
import { chartsFor, metricsOf } from "./metrics.js";
import { RANGE_WORDS, currentSpan, stepFor } from "./ranges.js";
import { chartSeries, gapCount } from "./series.js";
import { summarize } from "./summary.js";

const REFRESH_MS = 5000;
const SIGN_IN_ATTEMPTS = 5;

const $ = (id) => document.getElementById(id);
const store = new SessionStore(sessionStorage);
const state = {
  hash: null,
  scope: null, // the session's: "all" (the password's) or "read" (a read key's)
  view: null, // "fleet", "host", "sessions" or "keys"
  host: null, // the host the host page shows
  hosts: [], // GET /hosts' payload, as last read
  hostRange: "3600",
  hostCharts: null,
  sessions: [],
  range: "3600",
  chart: null,
  span: null, // the time span shown: {start, end} in epoch seconds
  csv: null, // the session view's CSV: {params (all but the hash), name}, or null when there is none
  keysPage: null,
  generation: 0, // bumped by every load: answers to an older load are dropped
  timer: null,
};

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const nowSeconds = () => Date.now() / 1000;

// ---- signing in and out ------------------------------------------------------------------

// Run a sign-in attempt, retrying while the server says it is briefly unavailable; the last failure.
async function signInWith(form, context, attempt) {
  const error = $("sign-in-error");
  const button = form.querySelector("button");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  error.textContent = "";
  try {
    for (let tries = 1; ; tries++) {
      try {
        await attempt();
        return null;
      } catch (failure) {
        if (!(failure instanceof ApiError)) throw failure;
        error.textContent = describe(failure, context);
        if (!isTransient(failure)) return failure;
        if (tries >= SIGN_IN_ATTEMPTS) {
          error.textContent = givenUp(failure, context);
          return failure;
        }
        await sleep(failure.retryAfter);
      }
    }
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

function onLogin(event) {
  event.preventDefault();
  const user = $("user").value;
  const body = { user, passwd: $("passwd").value };
  let hash = null; // a retry after the login succeeded opens no second session
  signInWith(event.target, "login", async () => {
    hash ??= (await send("/login", body)).hash;
    await open(hash, { user, scope: "all" });
  });
}

// The second form takes a key (it starts with pmk_: a read key opens the dashboard read-only) or a
// session hash (of any session of the user: its scope is found out).
function onPaste(event) {
  event.preventDefault();
  const text = $("pasted").value.trim();
  if (!looksLikeKey(text)) {
    signInWith(event.target, "hash", () => open(text, { user: null, scope: null }));
    return;
  }
  if (!isKeyText(text)) {
    $("sign-in-error").textContent = NOT_A_KEY;
    return;
  }
  let hash = null;
  signInWith(event.target, "key", async () => {
    hash ??= (await send("/login", { key: text })).hash;
    try {
      await open(hash, { user: null, scope: "read" });
    } catch (failure) {
      // An ingest key's session reads nothing (403): it is of no use here, so it is closed again.
      if (failure instanceof ApiError && failure.status === 403) logOut(hash);
      throw failure;
    }
  });
}

// Check the session by listing its user's sessions and hosts (an ingest key's is refused: 403), find
// out its scope when not known, then keep it for this tab and show a view: the one the URL names,
// else the fleet when the user has hosts, else the sessions (an original client's user sees what it
// always saw). `who`: {user, scope}, each null when not known.
async function open(hash, who) {
  const sessions = (await api("/sessions", { hash })).payload;
  const hosts = (await api("/hosts", { hash })).payload;
  const scope = who.scope || (await scopeOf(hash));
  store.save({ hash, user: who.user, scope });
  state.hash = hash;
  state.scope = scope;
  state.hosts = hosts;
  $("passwd").value = "";
  $("pasted").value = "";
  $("sign-in").hidden = true;
  $("sign-out").hidden = false;
  $("views").hidden = false;
  const offers = offersFor(scope);
  $("to-keys").hidden = !offers.keys;
  $("no-hosts-keys").hidden = !offers.keys;
  $("read-only").hidden = !offers.readOnly;
  $("who").textContent = signedInAs(who.user, scope);
  if (!parseRoute(location.hash)) history.replaceState(null, "", hosts.length ? "#fleet" : "#sessions");
  route();
  if (state.view === "sessions") {
    showSessions(sessions);
    $("session").focus();
  } else {
    $({ fleet: "fleet-title", host: "host-title", keys: "keys-title" }[state.view]).focus();
  }
}

// The scope of a session that reads, opened elsewhere (a pasted hash, or one a page before keys kept):
// a password session may list keys; a read key's may not (403).
async function scopeOf(hash) {
  try {
    await api("/keys", { hash });
    return "all";
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 403) return "read";
    throw failure;
  }
}

const signedInAs = (user, scope) => {
  if (scope === "read") return "signed in with a read key";
  return user ? `signed in as ${user}` : "signed in with a session hash";
};

// Close a session on the server (POST /logout); the failure, or null. A session already closed (401)
// is what was asked for.
async function logOut(hash) {
  try {
    await send("/logout", { hash });
    return null;
  } catch (failure) {
    if (!(failure instanceof ApiError)) throw failure;
    return failure.status === 401 ? null : failure;
  }
}

// Show the view the URL's fragment names (the fleet when it names none, or one this session is not
// offered) and load it.
function route() {
  if (!state.hash) return;
  const asked = parseRoute(location.hash) || { view: "fleet" };
  const view = allowedView(asked.view, state.scope);
  if (view !== asked.view) history.replaceState(null, "", `#${view}`);
  const moved = view !== state.view || asked.host !== state.host;
  const left = state.view;
  state.view = view;
  state.host = (view === "host" && asked.host) || null;
  $("fleet").hidden = view !== "fleet";
  $("host-view").hidden = view !== "host";
  $("dashboard").hidden = view !== "sessions";
  $("keys").hidden = view !== "keys";
  $("to-fleet").toggleAttribute("aria-current", view === "fleet" || view === "host");
  $("to-sessions").toggleAttribute("aria-current", view === "sessions");
  $("to-keys").toggleAttribute("aria-current", view === "keys");
  if (view === "sessions") showDashboard();
  if (view === "host") {
    $("host-title").textContent = state.host;
    document.title = `${state.host} · perfmon`;
  } else {
    document.title = view === "keys" ? "Access keys · perfmon" : "perfmon dashboard";
  }
  if (left === "keys" && view !== "keys") state.keysPage.hide(); // the key made there is not shown again
  if (!moved) return;
  if (view === "keys") {
    stopRefreshing();
    state.keysPage.show();
    $("keys-title").focus(); // a page of forms: the keyboard starts at its top
  } else {
    reload();
  }
}

// Sign out: close the session on the server (POST /logout) and forget it in this tab.
async function onSignOut() {
  const hash = state.hash;
  signOut("");
  const failure = await logOut(hash);
  // Forgotten here all the same: nothing in this tab holds it any more. Say that the server kept it.
  if (failure && !state.hash) $("sign-in-error").textContent = notLoggedOut(failure);
}

// Forget the session in this tab and show the sign-in forms, with `message` (why, when not asked).
function signOut(message) {
  store.forget();
  state.hash = null;
  state.scope = null;
  stopRefreshing();
  state.csv = null;
  $("csv-link").hidden = true;
  $("dashboard").hidden = true;
  $("fleet").hidden = true;
  $("host-view").hidden = true;
  $("keys").hidden = true;
  $("views").hidden = true;
  $("read-only").hidden = true;
  state.view = null;
  state.host = null;
  if (state.hostCharts) state.hostCharts.destroy();
  state.keysPage.reset();
  $("hosts").replaceChildren();
  $("session").replaceChildren();
  state.sessions = [];
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  for (const view of ["sessions", "fleet", "host"]) {
    announce("", false, view);
    showRefreshed("", view);
  }
  $("sign-in-error").textContent = message || "";
  $("user").focus();
}

// No more loads: the timer stopped, and answers to loads under way dropped.
function stopRefreshing() {
  state.generation++;
  clearTimeout(state.timer);
}

// The session view is shown: make its chart, or fit it to the page as it is now.
function showDashboard() {
  if (!state.chart) state.chart = createChart($("chart"), () => state.span);
  else fitChart(state.chart, $("chart"));
}

// ---- sessions ----------------------------------------------------------------------------

// Refill the list, keeping the choice; the first choice is the newest session that holds samples.
function showSessions(sessions) {
  const select = $("session");
  const chosen = select.value;
  state.sessions = sessions;
  const same =
    select.options.length === sessions.length &&
    sessions.every((session, i) => select.options[i].value === session.session);
  if (!same) {
    select.replaceChildren(...sessions.map((s) => new Option("", s.session)));
  }
  sessions.forEach((session, i) => {
    select.options[i].textContent = sessionLabel(session, state.hash);
  });
  const keep = sessions.find((s) => s.session === chosen);
  const first = sessions.find((s) => s.samples > 0) || sessions[0];
  select.value = (keep || first || { session: "" }).session;
}

const selectedSession = () => state.sessions.find((s) => s.session === $("session").value) || null;

// ---- loading -----------------------------------------------------------------------------

// Each view's element whose data-state says loading, ready or error.
const VIEW_BOX = { sessions: "chart", fleet: "hosts", host: "host-charts" };

async function load() {
  const generation = ++state.generation;
  const view = state.view;
  const box = $(VIEW_BOX[view]);
  box.dataset.state = "loading";
  try {
    if (view === "fleet") await loadFleet(generation);
    else if (view === "host") await loadHost(generation);
    else await loadSessions(generation);
  } catch (error) {
    if (generation !== state.generation) return;
    if (!(error instanceof ApiError)) throw error;
    box.dataset.state = "error";
    if (error.status === 401) {
      signOut(signInAgain(error));
      return;
    }
    announce(describe(error, "data"), true, view);
  }
}

// A session's CPU: the session list (the picker), then its buckets over the range.
async function loadSessions(generation) {
  const sessions = (await api("/sessions", { hash: state.hash })).payload;
  if (generation !== state.generation) return;
  showSessions(sessions);
  const session = selectedSession();
  const span = currentSpan(state.range, session, nowSeconds());
  if (!session || !span) {
    render([], null, null, session);
    state.csv = null;
    $("csv-link").hidden = true;
    announce(nothingToShow(session));
    showRefreshed("");
    return;
  }
  const step = stepFor(span, plotWidth(state.chart));
  const query = {
    hash: state.hash,
    session: session.session,
    start_time: span.start,
    cur_time: span.end,
  };
  const buckets = (await api("/cpu", { ...query, step })).payload;
  if (generation !== state.generation) return;
  render(buckets, span, step, session);
  const { hash, ...rest } = query;
  state.csv = { params: { ...rest, format: "csv" }, name: `perfmon-${session.session.slice(0, 8)}.csv` };
  $("csv-link").hidden = false;
  announce(afterLoad(buckets.length, state.range, $("status").classList.contains("error")));
  showRefreshed(refreshedLine(new Date(), REFRESH_MS));
}

// The fleet: GET /hosts, then each host's CPU over the last hour at the sparkline's step.
async function loadFleet(generation) {
  const answer = await apiAnswer("/hosts", { hash: state.hash });
  if (generation !== state.generation) return;
  const hosts = answer.body.payload;
  state.hosts = hosts;
  const now = nowSeconds();
  const span = { start: now - 3600, end: now };
  const step = stepFor(span, SPARK_WIDTH);
  const read = (host) =>
    api("/samples", { hash: state.hash, host: host.host, metric: "cpu", start_time: span.start, cur_time: span.end, step });
  const answers = await Promise.all(hosts.map(read));
  if (generation !== state.generation) return;
  const sparks = new Map(hosts.map((host, i) => [host.host, { buckets: answers[i].payload.cpu, span, step }]));
  // Judged by the server's clock, as `seen` is: a browser's clock that is off does not make hosts silent.
  showFleet($("hosts"), hosts, answer.serverTime ?? now, sparks);
  $("no-hosts").hidden = hosts.length > 0;
  const recovering = $("fleet-status").classList.contains("error");
  announce(recovering ? "data is current again" : "", false, "fleet");
  showRefreshed(refreshedLine(new Date(), REFRESH_MS), "fleet");
}

// A host: its entry in GET /hosts (status, first and last for "all"), then every metric its charts
// draw in one GET /samples at the step for the charts' width.
async function loadHost(generation) {
  const answer = await apiAnswer("/hosts", { hash: state.hash });
  if (generation !== state.generation) return;
  state.hosts = answer.body.payload;
  const host = state.hosts.find((entry) => entry.host === state.host);
  const box = $("host-charts");
  if (!host) {
    state.hostCharts.destroy();
    box.dataset.state = "missing";
    $("host-state").textContent = "";
    announce("no such host", true, "host");
    showRefreshed("", "host");
    return;
  }
  const status = hostStatus(host, answer.serverTime ?? nowSeconds());
  $("host-state").textContent = statusWords(status);
  $("host-state").dataset.state = status.state;
  const charts = chartsFor(host.latest);
  state.hostCharts.show(host.host, charts);
  const span = currentSpan(state.hostRange, host, nowSeconds());
  if (!span) {
    state.hostCharts.clear();
    Object.assign(box.dataset, { host: host.host, range: state.hostRange, state: "ready", buckets: "0" });
    announce("this host has no samples yet", false, "host");
    showRefreshed("", "host");
    return;
  }
  const step = stepFor(span, state.hostCharts.plotWidth());
  const query = { hash: state.hash, host: host.host, start_time: span.start, cur_time: span.end };
  const metrics = metricsOf(charts).map((metric) => ["metric", metric]);
  const params = [...Object.entries(query), ...metrics, ["step", step]];
  const payload = (await api("/samples", params)).payload;
  if (generation !== state.generation) return;
  const { hash, ...rest } = query;
  const buckets = state.hostCharts.render(payload, span, step, rest, host.host);
  Object.assign(box.dataset, {
    host: host.host,
    range: state.hostRange,
    step: String(step),
    start: String(span.start),
    end: String(span.end),
    buckets: String(buckets),
    state: "ready",
  });
  const recovering = $("host-status").classList.contains("error");
  const words = state.hostRange === "all" ? "the host's whole history" : RANGE_WORDS[state.hostRange];
  announce(buckets ? (recovering ? "data is current again" : "") : `no samples over ${words}`, false, "host");
  showRefreshed(refreshedLine(new Date(), REFRESH_MS), "host");
}

// Load now, then every REFRESH_MS while the page is visible (a load finishes before the next starts).
async function reload() {
  clearTimeout(state.timer);
  if (!state.hash || state.view === "keys") return;
  try {
    await load();
  } finally {
    clearTimeout(state.timer);
    if (state.hash && state.view !== "keys" && !document.hidden) state.timer = setTimeout(reload, REFRESH_MS);
  }
}

// Each view's live region and refresh line.
const STATUS = { sessions: ["status", "refreshed"], fleet: ["fleet-status", "fleet-refreshed"], host: ["host-status", "host-refreshed"] };

// The live region (role=status) of a view (the session view's unless told): written only when what
// it says changes, so that a screen reader hears each change of state or error once, not every refresh.
function announce(text, isError, view = "sessions") {
  const status = $(STATUS[view][0]);
  if (status.textContent !== text) status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

// When the data was last refreshed: changes every refresh, so it is shown but never announced.
function showRefreshed(text, view = "sessions") {
  $(STATUS[view][1]).textContent = text;
}

// ---- CSV files ---------------------------------------------------------------------------

// Fetch a CSV export with the session (`params`: the read's, all but the hash) and save it as the file
// `name`: the browser keeps a blob: URL in its downloads list, never a URL that holds the session (as a
// link to the export would, and its history with it). Failures are said in `view`'s status line.
async function download(path, params, name, view) {
  let blob;
  try {
    blob = await apiBlob(path, { hash: state.hash, ...params });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) signOut(signInAgain(error));
    else announce(`CSV not saved: ${describe(error, "data")}`, true, view);
    return;
  }
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its bytes once it started; the URL is let go well after.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- chart and figures -------------------------------------------------------------------

function render(buckets, span, step, session) {
  state.span = span;
  const columns = chartSeries(buckets, step);
  state.chart.setData(columns);
  const figures = summarize(buckets);
  $("stat-min").textContent = percent(figures.low);
  $("stat-mean").textContent = percent(figures.mean);
  $("stat-max").textContent = percent(figures.high);
  $("stat-samples").textContent = formatCount(figures.count);
  $("stat-step").textContent = formatStep(step);

  const chartBox = $("chart");
  chartBox.setAttribute("aria-label", chartLabel(figures, state.range));
  // What the chart shows, for tests and tools: the points plotted and the query that gave them.
  Object.assign(chartBox.dataset, {
    points: String(buckets.length),
    gaps: String(gapCount(columns)),
    step: step === null ? "" : String(step),
    start: span ? String(span.start) : "",
    end: span ? String(span.end) : "",
    session: session ? session.session : "",
    range: state.range,
    state: "ready",
  });
}

// ---- wiring ------------------------------------------------------------------------------

function start() {
  $("login-form").addEventListener("submit", onLogin);
  $("paste-form").addEventListener("submit", onPaste);
  $("sign-out").addEventListener("click", onSignOut);
  $("csv-link").addEventListener("click", () => {
    if (state.csv) download("/cpu", state.csv.params, state.csv.name, "sessions");
  });
  state.keysPage = new KeysPage(
    () => state.hash,
    (error) => signOut(signInAgain(error)),
  );
  $("session").addEventListener("change", reload);
  $("range").addEventListener("change", (event) => {
    state.range = event.target.value;
    reload();
  });
  $("host-range").addEventListener("change", (event) => {
    state.hostRange = event.target.value;
    state.hostCharts.setZoom(null);
    reload();
  });
  $("reset-zoom").addEventListener("click", () => state.hostCharts.setZoom(null));
  state.hostCharts = new HostCharts(
    $("host-charts"),
    (zoomed) => {
      $("reset-zoom").hidden = !zoomed;
    },
    (params, name) => download("/samples", params, name, "host"),
  );
  $("silent-after").textContent = duration(SILENT_AFTER_SECONDS);
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(state.timer);
    else reload();
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (state.chart && state.view === "sessions") fitChart(state.chart, $("chart"));
      if (state.view === "host") state.hostCharts.fit();
      reload(); // a new width means a new step
    }, 250);
  });

  state.range = document.querySelector('input[name="range"]:checked').value;
  state.hostRange = document.querySelector('input[name="host-range"]:checked').value;
  const kept = store.load();
  if (kept) {
    // The session this tab kept from before a reload (not a new one): forgotten only once the server
    // refuses it (then it has ended: signed out elsewhere, or its key revoked).
    signInWith($("paste-form"), "data", () => open(kept.hash, kept)).then((failure) => {
      if (failure && !isTransient(failure)) store.forget();
    });
  } else {
    $("user").focus();
  }
}

start();
