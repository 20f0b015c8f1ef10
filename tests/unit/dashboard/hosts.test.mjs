// node --test: the fleet page's rules (static/hosts.js): live or silent, the card's figures, routes.
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { SILENT_AFTER_SECONDS, hostStatus, duration, statusWords, latestFigures, hostRoute, parseRoute } =
  await load("hosts.js");

const NOW = 1_700_000_000;
const host = (seen) => ({ host: "web-1", sessions: 1, first: null, last: null, seen, latest: {} });

test("a host seen within 30 s is live, after that silent, and one never seen is waiting", () => {
  assert.equal(SILENT_AFTER_SECONDS, 30);
  assert.deepEqual(hostStatus(host(NOW - 2), NOW), { state: "live", age: 2 });
  assert.deepEqual(hostStatus(host(NOW - 30), NOW), { state: "live", age: 30 });
  assert.deepEqual(hostStatus(host(NOW - 30.5), NOW), { state: "silent", age: 30.5 });
  assert.deepEqual(hostStatus(host(null), NOW), { state: "waiting", age: null });
});

test("a seen time ahead of the clock used is live, not a negative age", () => {
  assert.deepEqual(hostStatus(host(NOW + 0.7), NOW), { state: "live", age: 0 });
});

test("the badge says how long a host has been silent, in the largest whole unit", () => {
  assert.equal(statusWords(hostStatus(host(NOW - 5), NOW)), "live");
  assert.equal(statusWords(hostStatus(host(NOW - 45), NOW)), "silent for 45 s");
  assert.equal(statusWords(hostStatus(host(NOW - 600), NOW)), "silent for 10 min");
  assert.equal(statusWords(hostStatus(host(NOW - 7200), NOW)), "silent for 2 h");
  assert.equal(statusWords(hostStatus(host(NOW - 3 * 86400 - 5), NOW)), "silent for 3 d");
  assert.equal(statusWords(hostStatus(host(null), NOW)), "no samples yet");
  assert.equal(duration(59.9), "59 s");
  assert.equal(duration(3599), "59 min");
});

test("the card shows the latest CPU, memory, disk and the three loads", () => {
  const latest = { cpu: 12.345, mem: 41, disk: 70.06, load1: 0.5, load5: 0.25, load15: 1, net_rx: 3 };
  assert.deepEqual(latestFigures(latest), [
    ["CPU", "12.3 %"],
    ["Memory", "41.0 %"],
    ["Disk", "70.1 %"],
    ["Load 1, 5, 15 min", "0.50 0.25 1.00"],
  ]);
});

test("an original client's host has only CPU: the rest is a dash", () => {
  assert.deepEqual(latestFigures({ cpu: 5 }), [
    ["CPU", "5.0 %"],
    ["Memory", "–"],
    ["Disk", "–"],
    ["Load 1, 5, 15 min", "–"],
  ]);
  assert.deepEqual(latestFigures({}).map(([, text]) => text), ["–", "–", "–", "–"]);
});

test("a host's route round-trips any name, and other fragments name a view or none", () => {
  for (const name of ["web-1", "db 2", "a/b?c#d&e=f", "é€😀", "%41", "="]) {
    assert.deepEqual(parseRoute(hostRoute(name)), { view: "host", host: name });
    assert.ok(!hostRoute(name).slice(1).includes("#"));
  }
  assert.deepEqual(parseRoute("#fleet"), { view: "fleet" });
  assert.deepEqual(parseRoute("#sessions"), { view: "sessions" });
  assert.deepEqual(parseRoute("#keys"), { view: "keys" });
  for (const other of ["", "#", "#host=", "#host=%E0%A4%A", "#nothing"]) assert.equal(parseRoute(other), null);
});
