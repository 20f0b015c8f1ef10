// node --test: the range picked -> the span shown and the step asked for (static/ranges.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { RANGES, RANGE_WORDS, NICE_STEPS, currentSpan, stepFor, axisRange, MIN_AXIS_SECONDS } = await load(
  "ranges.js",
);

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

test("the step is about one bucket per pixel, rounded up to a round number of seconds", () => {
  assert.equal(stepFor({ start: 0, end: 3600 }, 1000), 5); // 3.6 s per pixel
  assert.equal(stepFor({ start: 0, end: 3600 }, 1800), 2); // exactly 2 s per pixel
  assert.equal(stepFor({ start: 0, end: 3600 }, 240), 15);
  assert.equal(stepFor({ start: 0, end: 3600 }, 7), 600); // 514 s per pixel
});

test("a step of a minute or more is whole minutes, of an hour or more whole hours: the rollups serve it", () => {
  assert.equal(stepFor({ start: 0, end: 86400 }, 1166), 120); // 74 s per pixel
  assert.equal(stepFor({ start: 0, end: 7 * 86400 }, 1000), 900); // a week: 605 s per pixel
  assert.equal(stepFor({ start: 0, end: 30 * 86400 }, 1000), 3600); // a month: 2,592 s, ~720 buckets
  assert.equal(stepFor({ start: 0, end: 365 * 86400 }, 1000), 43200); // a year: 31,536 s per pixel
  assert.equal(stepFor({ start: 0, end: 365 * 86400 }, 300), 2 * 86400); // whole days past a day
  for (const width of [37, 300, 999, 1166, 1920]) {
    for (const days of [0.01, 0.3, 1, 2, 7, 30, 90, 365, 3650]) {
      const step = stepFor({ start: 0, end: days * 86400 }, width);
      assert.ok(step >= (days * 86400) / width, `${days} d on ${width} px: ${step}`);
      for (const rollup of [60, 3600, 86400]) {
        if (step >= rollup) assert.equal(step % rollup, 0, `${days} d on ${width} px: ${step}`);
      }
    }
  }
});

test("the step is the smallest round one that is wide enough", () => {
  for (const [index, nice] of NICE_STEPS.entries()) {
    assert.equal(stepFor({ start: 0, end: nice * 1000 }, 1000), nice);
    const finer = index === 0 ? 0 : NICE_STEPS[index - 1];
    assert.equal(stepFor({ start: 0, end: (finer + 0.5) * 1000 }, 1000), nice);
  }
});

test("the step is never under a second: on a wide plot, a short range or a single sample", () => {
  assert.equal(stepFor({ start: NOW - 300, end: NOW }, 1200), 1);
  assert.equal(stepFor({ start: NOW - 300, end: NOW }, 300), 1); // 300 give or take the rounding of NOW - 300
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

test("the host page's week is a window ending now, and all spans a host's first to last sample", () => {
  assert.deepEqual(currentSpan("604800", null, NOW), { start: NOW - 604800, end: NOW });
  const host = { host: "web-1", sessions: 2, first: 1_699_000_000, last: 1_699_500_000, seen: 1_699_500_001 };
  assert.deepEqual(currentSpan("all", host, NOW), { start: host.first, end: host.last });
  assert.equal(currentSpan("all", { ...host, first: null, last: null }, NOW), null);
  // A week on a phone-sized plot reads whole hours: the hourly rollups serve it.
  assert.equal(stepFor(currentSpan("604800", null, NOW), 230), 3600);
});
