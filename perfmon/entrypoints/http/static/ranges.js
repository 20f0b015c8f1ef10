// The range picked -> the time span to show and the step to ask the server for.
// Pure: no DOM, no fetch (Node's test runner imports it). Times are epoch seconds.

// Range choice (the radio buttons' values) -> seconds back from now; "all" spans the session's (or the
// host's) first to last sample.
export const RANGES = { 300: 300, 3600: 3600, 86400: 86400, 604800: 604800, all: null };

// The range in words, for the status line and the chart's label.
export const RANGE_WORDS = {
  300: "the last 5 minutes",
  3600: "the last hour",
  86400: "the last day",
  604800: "the last week",
  all: "the whole session",
};

// A single sample spans no time: the axis is at least this wide around the span (seconds).
export const MIN_AXIS_SECONDS = 30;

// What the axis shows before there is anything to show: the hour up to now (seconds).
const EMPTY_AXIS_SECONDS = 3600;

// The time span {start, end} to show: a window ending at `now`, or the session's first..last sample for
// "all" (null when there is no session or it holds no sample yet). A host from GET /hosts has `first`
// and `last` too, and works the same.
export function currentSpan(range, session, now) {
  const back = RANGES[range];
  if (back !== null) return { start: now - back, end: now };
  if (!session || session.first === null) return null;
  return { start: session.first, end: session.last };
}

// The steps the dashboard asks for (seconds): about one bucket per pixel, rounded UP to the next of these,
// then to whole days. Each step of a minute or more is a whole number of minutes, of an hour or more a
// whole number of hours, of a day or more a whole number of days: the server keeps rollups of 60, 3600
// and 86400 s and answers a step from the widest that divides it (perfmon/domain/rollups.py), so a month
// costs the hourly rollups' ~720 rows instead of 2.6 million samples. Round steps also read better.
export const NICE_STEPS = [
  1, 2, 5, 10, 15, 30, // seconds
  60, 120, 300, 600, 900, 1800, // minutes
  3600, 7200, 10800, 21600, 43200, // hours
  86400,
];
const DAY = 86400;
// A span computed as now - (now - 300) is 300 give or take a rounding: not a reason for the next step.
const TOLERANCE = 1e-9;

// The step (seconds) for a span drawn on `plotWidth` CSS pixels: the first NICE_STEPS at least the span
// per pixel, or whole days beyond them; never under a second.
export function stepFor(span, plotWidth) {
  const perPixel = (span.end - span.start) / plotWidth;
  const wanted = perPixel * (1 - TOLERANCE);
  const nice = NICE_STEPS.find((step) => step >= wanted);
  return nice ?? Math.ceil(wanted / DAY) * DAY;
}

// uPlot's x scale [min, max] for a span (null: nothing loaded yet, the hour up to `now`).
export function axisRange(span, now) {
  if (!span) return [now - EMPTY_AXIS_SECONDS, now];
  return [Math.min(span.start, span.end - MIN_AXIS_SECONDS), Math.max(span.end, span.start + MIN_AXIS_SECONDS)];
}
