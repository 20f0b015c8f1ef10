// node --test: the host page's units (static/units.js): bytes per second with k/M/G, and axis ranges.
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { bytesRate, loadAverage, celsius, percentage, UNITS } = await load("units.js");

test("bytes per second take the prefix that keeps the figure under 1000, one decimal under 100", () => {
  assert.equal(bytesRate(0), "0 B/s");
  assert.equal(bytesRate(999), "999 B/s");
  assert.equal(bytesRate(1000), "1 kB/s");
  assert.equal(bytesRate(1500), "1.5 kB/s");
  assert.equal(bytesRate(12_345_678), "12.3 MB/s");
  assert.equal(bytesRate(250_000_000), "250 MB/s");
  assert.equal(bytesRate(2.5e9), "2.5 GB/s");
  assert.equal(bytesRate(null), "–");
});

test("a figure that rounds up to 1000 moves to the next prefix", () => {
  assert.equal(bytesRate(999.5), "1 kB/s");
  assert.equal(bytesRate(999_950), "1 MB/s");
  assert.equal(bytesRate(99_950), "100 kB/s");
});

test("any rate up to petabytes reads as a figure under 1000 and a known unit (seeded sweep)", () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 5000; i++) {
    const value = 10 ** (random() * 18) * random();
    const [figure, unit] = bytesRate(value).split(" ");
    assert.ok(Number(figure) >= 0 && Number(figure) < 1000, `${value}: ${figure}`);
    assert.match(unit, /^[kMGTP]?B\/s$/, `${value}`);
    const scale = { "B/s": 1, "kB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12, "PB/s": 1e15 }[unit];
    // Within the rounding of the figure shown (half a unit of its last digit, or a whole one at 1000).
    assert.ok(Math.abs(Number(figure) * scale - value) <= scale * 0.5 + 1e-9 * value, `${value} vs ${figure} ${unit}`);
  }
});

test("load, temperature and percent legends, a dash for no figure", () => {
  assert.equal(loadAverage(1.234), "1.23");
  assert.equal(celsius(-4.25), "-4.3 °C");
  assert.equal(percentage(41), "41.0 %");
  for (const format of [loadAverage, celsius, percentage]) assert.equal(format(null), "–");
});

test("axis ticks carry their unit", () => {
  assert.deepEqual([0, 25, 100].map(UNITS.percent.tick), ["0 %", "25 %", "100 %"]);
  assert.deepEqual([0, 2e6].map(UNITS.bytes.tick), ["0 B/s", "2 MB/s"]);
  assert.deepEqual([0.5, 2].map(UNITS.load.tick), ["0.5", "2"]);
});

test("y ranges start at 0 and leave room: 0..100 %, at least 1 kB/s, at least a load of 1", () => {
  assert.deepEqual(UNITS.percent.range(3, 40), [0, 100]);
  assert.deepEqual(UNITS.percent.range(3, 140.2), [0, 141]);
  assert.deepEqual(UNITS.percent.range(null, null), [0, 100]);
  assert.deepEqual(UNITS.bytes.range(0, 0), [0, 1000]);
  assert.deepEqual(UNITS.bytes.range(0, 1e6), [0, 1.1e6]);
  assert.deepEqual(UNITS.load.range(0.1, 0.2), [0, 1]);
  assert.deepEqual(UNITS.celsius.range(-12, 60), [-17, 65]);
  assert.deepEqual(UNITS.celsius.range(null, null), [0, 50]);
});
