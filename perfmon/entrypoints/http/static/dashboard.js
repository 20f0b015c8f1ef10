// perfmon dashboard: sign in, pick a session, chart its CPU over a range, refreshed live.
// Plain script, no build step. It talks to this server's API only; the session hash lives in
// sessionStorage (this tab) and never in the page's URL.
(() => {
  "use strict";

  const HASH_KEY = "perfmon.hash";
  const USER_KEY = "perfmon.user";
  const REFRESH_MS = 5000;
  const SIGN_IN_ATTEMPTS = 5;
  // Range choice -> seconds back from now; "all" spans the session's first to last sample.
  const RANGES = { 300: 300, 3600: 3600, 86400: 86400, all: null };
  const RANGE_WORDS = {
    300: "the last 5 minutes",
    3600: "the last hour",
    86400: "the last day",
    all: "the whole session",
  };

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

  class ApiError extends Error {
    constructor(status, reason, retryAfter) {
      super(reason);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, params, init) {
    const url = params ? `${path}?${new URLSearchParams(params)}` : path;
    let response;
    try {
      response = await fetch(url, { cache: "no-store", ...init });
    } catch {
      throw new ApiError(0, "server unreachable", 5);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const retryAfter = Number(response.headers.get("Retry-After")) || 5;
      throw new ApiError(response.status, (body && body.reason) || response.statusText, retryAfter);
    }
    return body;
  }

  // What to tell the user about a failed call; `context` is what they were doing.
  function describe(error, context) {
    if (error.status === 401) {
      return context === "login" ? "wrong user or password" : "session hash not recognised";
    }
    if (error.status === 503) return "storage unavailable, retrying";
    if (error.status === 0) return "server unreachable, retrying";
    if (error.status === 400 && context === "hash") return "that is not a session hash";
    if (error.status === 404) return "that session is no longer available";
    return `error ${error.status}: ${error.message}`;
  }

  const isTransient = (error) => error.status === 503 || error.status === 0;
  const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

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
            error.textContent = `${describe(failure, context).split(",")[0]}: try again later`;
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
    if (!state.chart) state.chart = createChart($("chart"));
    else fitChart();
  }

  // ---- sessions ----------------------------------------------------------------------------

  const formatMoment = (seconds) =>
    new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

  // No sample count here: the list is read before the chart's data, so a count would lag the figures
  // beside it (and it counts the whole session, not the range shown). The figures say how many.
  function sessionLabel(session) {
    const mine = session.session === state.hash ? " · this sign-in" : "";
    return `${formatMoment(session.created)} · ${session.session.slice(0, 8)}${mine}`;
  }

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
      select.options[i].textContent = sessionLabel(session);
    });
    const keep = sessions.find((s) => s.session === chosen);
    const first = sessions.find((s) => s.samples > 0) || sessions[0];
    select.value = (keep || first || { session: "" }).session;
  }

  const selectedSession = () => state.sessions.find((s) => s.session === $("session").value) || null;

  // ---- loading -----------------------------------------------------------------------------

  // The time span to show: a window ending now, or the session's first..last sample for "all".
  function currentSpan(session) {
    const back = RANGES[state.range];
    if (back !== null) {
      const end = Date.now() / 1000;
      return { start: end - back, end };
    }
    if (!session || session.first === null) return null;
    return { start: session.first, end: session.last };
  }

  // One bucket per pixel of the plot, never finer than a second: the server does the reducing.
  function stepFor(span) {
    const seconds = (span.end - span.start) / plotWidth();
    return Math.max(1, Math.round(seconds * 1000) / 1000);
  }

  async function load() {
    const generation = ++state.generation;
    const chartBox = $("chart");
    chartBox.dataset.state = "loading";
    try {
      const sessions = (await api("/sessions", { hash: state.hash })).payload;
      if (generation !== state.generation) return;
      showSessions(sessions);
      const session = selectedSession();
      const span = currentSpan(session);
      if (!session || !span) {
        render([], null, null, session);
        $("csv-link").hidden = true;
        announce(session ? "this session has no samples yet" : "this user has no sessions");
        showRefreshed("");
        return;
      }
      const step = stepFor(span);
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
      const recovered = $("status").classList.contains("error") ? "data is current again" : "";
      announce(buckets.length ? recovered : `no samples over ${RANGE_WORDS[state.range]}`);
      showRefreshed(`updated ${new Date().toLocaleTimeString()} · refreshing every ${REFRESH_MS / 1000} s`);
    } catch (error) {
      if (generation !== state.generation) return;
      if (!(error instanceof ApiError)) throw error;
      chartBox.dataset.state = "error";
      if (error.status === 401) {
        signOut(`${describe(error, "data")}: sign in again`);
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

  const percent = (value) => (value === null || value === undefined ? "–" : `${value.toFixed(1)} %`);

  function formatStep(step) {
    if (step === null) return "–";
    if (step < 60) return `${Number(step.toFixed(2))} s per point`;
    if (step < 3600) return `${Number((step / 60).toFixed(1))} min per point`;
    return `${Number((step / 3600).toFixed(1))} h per point`;
  }

  // Figures for the range from its buckets: min of mins, max of maxes, count-weighted mean.
  function summarize(buckets) {
    let count = 0;
    let total = 0;
    let low = Infinity;
    let high = -Infinity;
    for (const bucket of buckets) {
      count += bucket.count;
      total += bucket.cpu * bucket.count;
      low = Math.min(low, bucket.min);
      high = Math.max(high, bucket.max);
    }
    if (!count) return { count: 0, mean: null, low: null, high: null };
    return { count, mean: total / count, low, high };
  }

  function render(buckets, span, step, session) {
    state.span = span;
    const chart = state.chart;
    const columns = perfmonSeries.chartSeries(buckets, step);
    chart.setData(columns);
    const figures = summarize(buckets);
    $("stat-min").textContent = percent(figures.low);
    $("stat-mean").textContent = percent(figures.mean);
    $("stat-max").textContent = percent(figures.high);
    $("stat-samples").textContent = figures.count.toLocaleString();
    $("stat-step").textContent = formatStep(step);

    const chartBox = $("chart");
    chartBox.setAttribute(
      "aria-label",
      figures.count
        ? `CPU over ${RANGE_WORDS[state.range]}: mean ${percent(figures.mean)}, ` +
            `min ${percent(figures.low)}, max ${percent(figures.high)}`
        : `No CPU samples over ${RANGE_WORDS[state.range]}`,
    );
    // What the chart shows, for tests and tools: the points plotted and the query that gave them.
    Object.assign(chartBox.dataset, {
      points: String(buckets.length),
      gaps: String(perfmonSeries.gapCount(columns)),
      step: step === null ? "" : String(step),
      start: span ? String(span.start) : "",
      end: span ? String(span.end) : "",
      session: session ? session.session : "",
      range: state.range,
      state: "ready",
    });
  }

  function chartSize(container) {
    const style = getComputedStyle(container);
    const inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const top = container.getBoundingClientRect().top;
    // Leave room below the plot for uPlot's legend and the status line.
    const height = Math.min(640, Math.max(220, window.innerHeight - top - 110));
    // No minimum wider than a phone: the chart follows the page down to 320 px without sideways scrolling.
    return { width: Math.max(160, Math.floor(inner)), height: Math.round(height) };
  }

  // The plotting area's width in CSS pixels (uPlot's overlay covers exactly that area).
  function plotWidth() {
    const chart = state.chart;
    return Math.max(1, chart.over.clientWidth || chart.width);
  }

  // uPlot's time-axis table with 24-hour times: [tick step (s), label, then the label when the year,
  // month, day, hour, minute or second changes (null: unchanged), mode]. See uPlot's axes docs.
  const TIME_TICKS = [
    [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
    [3600 * 24 * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600 * 24, "{D} {MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
    [60, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
    [1, ":{ss}", "\n{D} {MMM} {HH}:{mm}", null, "\n{D} {MMM} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
  ];

  function createChart(container) {
    const line = "#1d4ed8";
    const edge = "rgba(29, 78, 216, 0.35)";
    const options = {
      ...chartSize(container),
      cursor: { drag: { x: false, y: false, setScale: false } },
      scales: {
        x: {
          time: true,
          range: () => {
            const span = state.span;
            if (!span) return [Date.now() / 1000 - 3600, Date.now() / 1000];
            // A single sample spans no time: widen the axis around it so that it still shows.
            return [Math.min(span.start, span.end - 30), Math.max(span.end, span.start + 30)];
          },
        },
        // Percent of one CPU: 0..100, higher when a sample says so (cpu is only bounded below).
        y: { range: (u, min, max) => [0, Math.max(100, Math.ceil(max || 0))] },
      },
      series: [
        { label: "time", value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" },
        // spanGaps false: the null points chartSeries puts where buckets are missing break the lines.
        { label: "mean", stroke: line, width: 1.5, spanGaps: false, value: (u, v) => percent(v) },
        { label: "min", stroke: edge, width: 1, spanGaps: false, value: (u, v) => percent(v) },
        { label: "max", stroke: edge, width: 1, spanGaps: false, value: (u, v) => percent(v) },
      ],
      bands: [{ series: [3, 2], fill: "rgba(29, 78, 216, 0.12)" }],
      axes: [
        { stroke: "#374151", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#d1d5db" }, values: TIME_TICKS },
        {
          stroke: "#374151",
          size: 56,
          grid: { stroke: "#e5e7eb" },
          ticks: { stroke: "#d1d5db" },
          values: (u, ticks) => ticks.map((v) => `${v} %`),
        },
      ],
    };
    return new uPlot(options, [[], [], [], []], container);
  }

  function fitChart() {
    if (state.chart) state.chart.setSize(chartSize($("chart")));
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
        fitChart();
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
})();
