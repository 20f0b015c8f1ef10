// node --test: the fleet page's CPU sparkline path (static/spark.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { sparkPath } = await load("spark.js");

const span = { start: 0, end: 100 };
const at = (timestamp, value) => ({ timestamp, value, min: value, max: value, count: 1 });

test("time runs left to right and 0..100 % bottom to top", () => {
  assert.equal(sparkPath([at(0, 0), at(50, 50), at(100, 100)], span, 50, 200, 40), "M0,40L100,20L200,0");
});

test("buckets more than one and a half steps apart start a new piece: a gap stays empty", () => {
  const d = sparkPath([at(0, 10), at(10, 10), at(60, 20), at(70, 20)], span, 10, 100, 10);
  assert.equal(d, "M0,9L10,9M60,8L70,8");
});

test("a bucket alone between gaps is a short dash, not nothing", () => {
  assert.equal(sparkPath([at(0, 0), at(50, 50), at(100, 0)], span, 10, 100, 10), "M0,10h1M50,5h1M100,10h1");
});

test("CPU above 100 % (the protocol allows it) raises the top instead of leaving the box", () => {
  assert.equal(sparkPath([at(0, 200), at(10, 100)], span, 10, 100, 10), "M0,0L10,5");
});

test("no buckets, no path", () => {
  assert.equal(sparkPath([], span, 10, 100, 10), "");
});

test("every point lies in the box, whatever the values (seeded sweep)", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let run = 0; run < 200; run++) {
    const buckets = [];
    let t = 0;
    for (let i = 0; i < 60; i++) {
      t += random() < 0.1 ? 60 : 30;
      buckets.push(at(t, random() * (random() < 0.05 ? 400 : 100)));
    }
    const d = sparkPath(buckets, { start: 0, end: t }, 30, 240, 40);
    for (const [, x, y] of d.matchAll(/(-?[\d.]+),(-?[\d.]+)/g)) {
      assert.ok(Number(x) >= 0 && Number(x) <= 240 && Number(y) >= 0 && Number(y) <= 40, d);
    }
  }
});
