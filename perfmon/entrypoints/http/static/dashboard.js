// perfmon dashboard, the page's module: sign in, pick a session, chart its CPU over a range, refreshed
// live. It wires the DOM to the modules beside it (no build step). It talks to this server's API only;
// the session hash lives in sessionStorage (this tab) and never in the page's URL.

import { ApiError, api, isTransient } from "./api.js";
import { createChart, fitChart, plotWidth } from "./chart.js";
import { formatCount, formatStep, percent, refreshedLine, sessionLabel } from "./format.js";
import { afterLoad, chartLabel, describe, givenUp, nothingToShow, signInAgain } from "./messages.js";
import { currentSpan, stepFor } from "./ranges.js";
import { chartSeries, gapCount } from "./series.js";
import { summarize } from "./summary.js";

const HASH_KEY = "perfmon.hash";
const USER_KEY = "perfmon.user";
const REFRESH_MS = 5000;
const SIGN_IN_ATTEMPTS = 5;

const $ = (id) => document.getElementById(id);
const state = {
  hash: null,
  sessions: [],
  range: "3600",
  chart: null,
  span: null, // the time span shown: {start, end} in epoch seconds
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
  const body = JSON.stringify({ user, passwd: $("passwd").value });
  signInWith(event.target, "login", async () => {
    const answer = await api("/login", null, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
    await open(answer.hash, user);
  });
}

function onHash(event) {
  event.preventDefault();
  const hash = $("hash").value.trim();
  sessionStorage.removeItem(USER_KEY); // a pasted hash may be anyone's
  signInWith(event.target, "hash", () => open(hash, null));
}

// Check the hash by listing its user's sessions, then keep it for this tab and show the dashboard.
async function open(hash, user) {
  const sessions = (await api("/sessions", { hash })).payload;
  sessionStorage.setItem(HASH_KEY, hash);
  if (user) sessionStorage.setItem(USER_KEY, user);
  state.hash = hash;
  $("passwd").value = "";
  $("hash").value = "";
  showDashboard(sessionStorage.getItem(USER_KEY));
  showSessions(sessions);
  $("session").focus();
  reload();
}

function signOut(message) {
  sessionStorage.removeItem(HASH_KEY);
  sessionStorage.removeItem(USER_KEY);
  state.hash = null;
  state.generation++;
  clearTimeout(state.timer);
  $("csv-link").href = "#";
  $("dashboard").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  announce("");
  showRefreshed("");
  $("sign-in-error").textContent = message || "";
  $("user").focus();
}

function showDashboard(user) {
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = user ? `signed in as ${user}` : "signed in with a session hash";
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

async function load() {
  const generation = ++state.generation;
  const chartBox = $("chart");
  chartBox.dataset.state = "loading";
  try {
    const sessions = (await api("/sessions", { hash: state.hash })).payload;
    if (generation !== state.generation) return;
    showSessions(sessions);
    const session = selectedSession();
    const span = currentSpan(state.range, session, nowSeconds());
    if (!session || !span) {
      render([], null, null, session);
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
    const csvLink = $("csv-link");
    csvLink.href = `/cpu?${new URLSearchParams({ ...query, format: "csv" })}`;
    csvLink.download = `perfmon-${session.session.slice(0, 8)}.csv`;
    csvLink.hidden = false;
    announce(afterLoad(buckets.length, state.range, $("status").classList.contains("error")));
    showRefreshed(refreshedLine(new Date(), REFRESH_MS));
  } catch (error) {
    if (generation !== state.generation) return;
    if (!(error instanceof ApiError)) throw error;
    chartBox.dataset.state = "error";
    if (error.status === 401) {
      signOut(signInAgain(error));
      return;
    }
    announce(describe(error, "data"), true);
  }
}

// Load now, then every REFRESH_MS while the page is visible (a load finishes before the next starts).
async function reload() {
  clearTimeout(state.timer);
  if (!state.hash) return;
  try {
    await load();
  } finally {
    clearTimeout(state.timer);
    if (state.hash && !document.hidden) state.timer = setTimeout(reload, REFRESH_MS);
  }
}

// The live region (role=status): written only when what it says changes, so that a screen reader
// hears each change of state or error once, not every refresh.
function announce(text, isError) {
  const status = $("status");
  if (status.textContent !== text) status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

// When the data was last refreshed: changes every refresh, so it is shown but never announced.
function showRefreshed(text) {
  $("refreshed").textContent = text;
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
  $("hash-form").addEventListener("submit", onHash);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("session").addEventListener("change", reload);
  $("range").addEventListener("change", (event) => {
    state.range = event.target.value;
    reload();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(state.timer);
    else reload();
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (state.chart) fitChart(state.chart, $("chart"));
      reload(); // a new width means a new step
    }, 250);
  });

  state.range = document.querySelector('input[name="range"]:checked').value;
  const hash = sessionStorage.getItem(HASH_KEY);
  if (hash) {
    // A hash this tab kept from before a reload: forget it only once the server refuses it.
    signInWith($("hash-form"), "hash", () => open(hash, null)).then((failure) => {
      if (failure && !isTransient(failure)) sessionStorage.removeItem(HASH_KEY);
    });
  } else {
    $("user").focus();
  }
}

start();
