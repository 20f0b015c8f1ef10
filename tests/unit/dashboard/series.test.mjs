// node --test: the dashboard's chart series (perfmon/entrypoints/http/static/series.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { chartSeries, gapCount } = await load("series.js");

const bucket = (timestamp, cpu) => ({ timestamp, cpu, min: cpu - 1, max: cpu + 1, count: 1 });

test("buckets one step apart make one unbroken line", () => {
  const columns = chartSeries([bucket(0, 10), bucket(60, 20), bucket(120, 30)], 60);
  assert.deepEqual(columns, [
    [0, 60, 120],
    [10, 20, 30],
    [9, 19, 29],
    [11, 21, 31],
  ]);
  assert.equal(gapCount(columns), 0);
});

test("20 minutes without samples break the line: a null point one step after the last bucket", () => {
  const columns = chartSeries([bucket(0, 10), bucket(60, 20), bucket(60 + 1200, 30)], 60);
  assert.deepEqual(columns, [
    [0, 60, 120, 1260],
    [10, 20, null, 30],
    [9, 19, null, 29],
    [11, 21, null, 31],
  ]);
  assert.equal(gapCount(columns), 1);
});

test("a single missing bucket is a gap too, and each gap is marked once", () => {
  const times = [0, 5, 15, 20, 40];
  const columns = chartSeries(
    times.map((t) => bucket(t, 1)),
    5,
  );
  assert.deepEqual(columns[0], [0, 5, 10, 15, 20, 25, 40]);
  assert.equal(gapCount(columns), 2);
});

test("fractional steps rounded by the server are not mistaken for gaps", () => {
  const step = 11.25;
  const times = [0, 1, 2, 3].map((i) => Number((1_700_000_000 + i * step).toFixed(3)) + (i % 2 ? 1e-6 : -1e-6));
  assert.equal(gapCount(chartSeries(times.map((t) => bucket(t, 5)), step)), 0);
});

test("no buckets, no points", () => {
  assert.deepEqual(chartSeries([], 60), [[], [], [], []]);
  assert.deepEqual(chartSeries([], null), [[], [], [], []]);
});

test("one bucket is one point and no gap", () => {
  const columns = chartSeries([bucket(1_700_000_000, 42)], 1);
  assert.deepEqual(columns, [[1_700_000_000], [42], [41], [43]]);
  assert.equal(gapCount(columns), 0);
});

test("without a step nothing is taken for a gap", () => {
  assert.equal(gapCount(chartSeries([bucket(0, 1), bucket(1000, 2)], null)), 0);
  assert.equal(gapCount(chartSeries([bucket(0, 1), bucket(1000, 2)], 0)), 0);
});
