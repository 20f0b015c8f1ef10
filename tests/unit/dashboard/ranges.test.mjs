// node --test: the range picked -> the span shown and the step asked for (static/ranges.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { RANGES, RANGE_WORDS, currentSpan, stepFor, axisRange, MIN_AXIS_SECONDS } = await load("ranges.js");

const NOW = 1_700_000_000.25;
const session = { session: "s", first: 1_699_990_000, last: 1_699_999_000 };

test("a range of seconds is a window ending now, with or without a session", () => {
  assert.deepEqual(currentSpan("300", session, NOW), { start: NOW - 300, end: NOW });
  assert.deepEqual(currentSpan("3600", session, NOW), { start: NOW - 3600, end: NOW });
  assert.deepEqual(currentSpan("86400", null, NOW), { start: NOW - 86400, end: NOW });
});

test("all spans the session's first to last sample, and nothing when it holds none", () => {
  assert.deepEqual(currentSpan("all", session, NOW), { start: session.first, end: session.last });
  assert.equal(currentSpan("all", { session: "s", first: null, last: null }, NOW), null);
  assert.equal(currentSpan("all", null, NOW), null);
});

test("every range the page offers has words for it", () => {
  for (const range of Object.keys(RANGES)) assert.match(RANGE_WORDS[range], /^the /);
});

test("the step is one bucket per pixel of the plot, to the millisecond", () => {
  assert.equal(stepFor({ start: 0, end: 3600 }, 1000), 3.6);
  assert.equal(stepFor({ start: 0, end: 86400 }, 1166), 74.099);
  assert.equal(stepFor({ start: 0, end: 3600 }, 7), 514.286);
});

test("the step is never under a second: on a wide plot, a short range or a single sample", () => {
  assert.equal(stepFor({ start: NOW - 300, end: NOW }, 1200), 1);
  assert.equal(stepFor({ start: 0, end: 3600 }, 3601), 1);
  assert.equal(stepFor({ start: NOW, end: NOW }, 800), 1);
});

test("the axis shows the span, and the hour up to now before anything is loaded", () => {
  assert.deepEqual(axisRange({ start: 100, end: 3700 }, NOW), [100, 3700]);
  assert.deepEqual(axisRange(null, NOW), [NOW - 3600, NOW]);
});

test("a single sample still shows: the axis widens around it", () => {
  const [low, high] = axisRange({ start: 5000, end: 5000 }, NOW);
  assert.deepEqual([low, high], [5000 - MIN_AXIS_SECONDS, 5000 + MIN_AXIS_SECONDS]);
  assert.deepEqual(axisRange({ start: 5000, end: 5010 }, NOW), [5010 - MIN_AXIS_SECONDS, 5000 + MIN_AXIS_SECONDS]);
});
