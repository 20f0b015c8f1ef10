// node --test: numbers and times as the page writes them (static/format.js).
// Locale and time zone are passed, so the text is the same on every machine.
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { percent, formatStep, formatCount, formatMoment, sessionLabel, refreshedLine } = await load("format.js");

test("percent: one decimal, rounded, and a dash for no figure", () => {
  assert.equal(percent(42), "42.0 %");
  assert.equal(percent(0), "0.0 %");
  assert.equal(percent(33.36), "33.4 %");
  assert.equal(percent(null), "–");
  assert.equal(percent(undefined), "–");
});

test("percent: small figures round to zero, big ones keep every digit", () => {
  assert.equal(percent(0.04), "0.0 %");
  assert.equal(percent(0.05000001), "0.1 %");
  assert.equal(percent(1e-12), "0.0 %");
  assert.equal(percent(6400), "6400.0 %");
  assert.equal(percent(123456789.06), "123456789.1 %");
});

test("the step reads in seconds, minutes or hours, without trailing zeros", () => {
  assert.equal(formatStep(null), "–");
  assert.equal(formatStep(1), "1 s per point");
  assert.equal(formatStep(3.6), "3.6 s per point");
  assert.equal(formatStep(1.2345), "1.23 s per point");
  assert.equal(formatStep(60), "1 min per point");
  assert.equal(formatStep(74.099), "1.2 min per point");
  assert.equal(formatStep(3600), "1 h per point");
  assert.equal(formatStep(5400), "1.5 h per point");
  assert.equal(formatStep(86400 * 365), "8760 h per point");
});

test("the step's unit changes at the boundaries, where rounding may reach the next unit's size", () => {
  assert.equal(formatStep(59.999), "60 s per point");
  assert.equal(formatStep(3599), "60 min per point");
});

test("counts are grouped by the locale", () => {
  assert.equal(formatCount(0, "en-GB"), "0");
  assert.equal(formatCount(1_234_567, "en-GB"), "1,234,567");
  assert.equal(formatCount(1_234_567, "de-DE"), "1.234.567");
});

test("moments are a date and a minute in the time zone asked for", () => {
  assert.equal(formatMoment(0, "en-GB", "UTC"), "1 Jan 1970, 00:00");
  assert.equal(formatMoment(1_700_000_059.9, "en-GB", "UTC"), "14 Nov 2023, 22:14");
  assert.equal(formatMoment(1_700_000_000, "en-GB", "Asia/Kolkata"), "15 Nov 2023, 03:43");
});

test("a session reads as its start and the head of its hash, marked when it is this sign-in's", () => {
  const session = { session: "0123456789abcdef0123456789abcdef", created: 0, samples: 12 };
  assert.equal(sessionLabel(session, "another", "en-GB", "UTC"), "1 Jan 1970, 00:00 · 01234567");
  assert.equal(sessionLabel(session, session.session, "en-GB", "UTC"), "1 Jan 1970, 00:00 · 01234567 · this sign-in");
});

test("a session on a host names it; one without a host (null, or an older server's entry) does not", () => {
  const session = { session: "01234567-89ab-4def-8123-456789abcdef", created: 0, samples: 0, first: null, last: null };
  assert.equal(sessionLabel({ ...session, host: "web-1" }, "x", "en-GB", "UTC"), "1 Jan 1970, 00:00 · 01234567 · web-1");
  assert.equal(sessionLabel({ ...session, host: null }, "x", "en-GB", "UTC"), "1 Jan 1970, 00:00 · 01234567");
});

test("the refresh line names the time and the period, in seconds", () => {
  assert.equal(
    refreshedLine(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), 5000, "en-GB", "UTC"),
    "updated 03:04:05 · refreshing every 5 s",
  );
});
