// node --test: the figures beside the chart (static/summary.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { summarize } = await load("summary.js");

const bucket = (timestamp, cpu, min, max, count) => ({ timestamp, cpu, min, max, count });

test("no buckets: no figures and no samples", () => {
  assert.deepEqual(summarize([]), { count: 0, mean: null, low: null, high: null });
});

test("one bucket gives its own figures", () => {
  assert.deepEqual(summarize([bucket(0, 42.5, 40, 45, 3)]), { count: 3, mean: 42.5, low: 40, high: 45 });
});

test("the mean weighs each bucket by its samples; min of mins, max of maxes", () => {
  const figures = summarize([bucket(0, 10, 5, 20, 1), bucket(60, 40, 30, 90, 3)]);
  assert.deepEqual(figures, { count: 4, mean: 32.5, low: 5, high: 90 });
});

test("buckets far apart (a gap between them) count the same as neighbours", () => {
  const near = summarize([bucket(0, 10, 10, 10, 2), bucket(60, 20, 20, 20, 2)]);
  const apart = summarize([bucket(0, 10, 10, 10, 2), bucket(86_400, 20, 20, 20, 2)]);
  assert.deepEqual(apart, near);
});

test("figures above 100 % (more than one CPU) are kept as they are", () => {
  assert.deepEqual(summarize([bucket(0, 250, 0, 800, 10)]), { count: 10, mean: 250, low: 0, high: 800 });
});

test("a million samples of one value mean that value", () => {
  const buckets = Array.from({ length: 1000 }, (_, i) => bucket(i, 33.3, 33.3, 33.3, 1000));
  const figures = summarize(buckets);
  assert.equal(figures.count, 1_000_000);
  assert.ok(Math.abs(figures.mean - 33.3) < 1e-9, figures.mean);
});
