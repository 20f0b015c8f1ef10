// The range picked -> the time span to show and the step to ask the server for.
// Pure: no DOM, no fetch (Node's test runner imports it). Times are epoch seconds.

// Range choice (the radio buttons' values) -> seconds back from now; "all" spans the session's first
// to last sample.
export const RANGES = { 300: 300, 3600: 3600, 86400: 86400, all: null };

// The range in words, for the status line and the chart's label.
export const RANGE_WORDS = {
  300: "the last 5 minutes",
  3600: "the last hour",
  86400: "the last day",
  all: "the whole session",
};

// A single sample spans no time: the axis is at least this wide around the span (seconds).
export const MIN_AXIS_SECONDS = 30;

// What the axis shows before there is anything to show: the hour up to now (seconds).
const EMPTY_AXIS_SECONDS = 3600;

// The time span {start, end} to show: a window ending at `now`, or the session's first..last sample for
// "all" (null when there is no session or it holds no sample yet).
export function currentSpan(range, session, now) {
  const back = RANGES[range];
  if (back !== null) return { start: now - back, end: now };
  if (!session || session.first === null) return null;
  return { start: session.first, end: session.last };
}

// One bucket per pixel of the plot (`plotWidth` CSS pixels), never finer than a second; rounded to the
// millisecond the server keeps. In seconds.
export function stepFor(span, plotWidth) {
  const seconds = (span.end - span.start) / plotWidth;
  return Math.max(1, Math.round(seconds * 1000) / 1000);
}

// uPlot's x scale [min, max] for a span (null: nothing loaded yet, the hour up to `now`).
export function axisRange(span, now) {
  if (!span) return [now - EMPTY_AXIS_SECONDS, now];
  return [Math.min(span.start, span.end - MIN_AXIS_SECONDS), Math.max(span.end, span.start + MIN_AXIS_SECONDS)];
}
