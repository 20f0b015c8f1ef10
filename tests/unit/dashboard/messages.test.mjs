// node --test: what the page tells the user (static/messages.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { ApiError } = await load("api.js");
const { describe, givenUp, signInAgain, notLoggedOut, nothingToShow, afterLoad, chartLabel, NOT_A_KEY } =
  await load("messages.js");

const failure = (status, reason = "whatever the server said") => new ApiError(status, reason, 5);

test("a refused sign-in says which kind of sign-in failed", () => {
  assert.equal(describe(failure(401), "login"), "wrong user or password");
  assert.equal(describe(failure(401), "hash"), "session hash not recognised");
  assert.equal(describe(failure(401), "key"), "key not recognised: it may have been revoked");
  assert.equal(describe(failure(400), "hash"), "that is not a session hash");
  assert.match(NOT_A_KEY, /^that is not a whole key: a key is pmk_ and 43 more/);
});

test("a session the server no longer knows, while reading or on the keys page, has ended", () => {
  for (const context of ["data", "keys"]) {
    assert.equal(describe(failure(401), context), "the session has ended (signed out, or its key revoked)");
  }
});

test("a refusal of the session's scope (403) says what that session cannot do", () => {
  const forbidden = failure(403, "Forbidden");
  assert.match(describe(forbidden, "key"), /^that is an ingest key: it can only send samples .*use a read key or your password$/);
  assert.equal(describe(forbidden, "hash"), "that session can only send samples (it was opened with an ingest key)");
  assert.equal(describe(forbidden, "keys"), "only a session signed in with the password can manage keys");
  assert.equal(describe(forbidden, "data"), "this session may not read that");
});

test("a sign-out the server did not hear says that the session stays open there", () => {
  assert.equal(
    notLoggedOut(failure(0)),
    "signed out of this tab, but the server could not close the session (server unreachable): it stays open there",
  );
  assert.match(notLoggedOut(failure(503)), /\(storage unavailable\): it stays open there$/);
});

test("revoking a key that is gone says so", () => {
  assert.equal(describe(failure(404, "No such key"), "keys"), "no such key: it may have been revoked already");
});

test("brief outages say that the page is retrying", () => {
  assert.equal(describe(failure(503), "data"), "storage unavailable, retrying");
  assert.equal(describe(failure(0), "login"), "server unreachable, retrying");
});

test("other failures name their status and the server's reason", () => {
  assert.equal(describe(failure(404), "data"), "that session is no longer available");
  assert.equal(describe(failure(404, "No such host"), "data"), "no such host");
  assert.equal(describe(failure(400, "Invalid step"), "data"), "error 400: Invalid step");
  assert.equal(describe(failure(500, "Internal error"), "login"), "error 500: Internal error");
});

test("after the last attempt, and when the hash is gone, the text says what to do", () => {
  assert.equal(givenUp(failure(503), "login"), "storage unavailable: try again later");
  assert.equal(givenUp(failure(0), "hash"), "server unreachable: try again later");
  assert.equal(signInAgain(failure(401)), "the session has ended (signed out, or its key revoked): sign in again");
});

test("the status line: nothing to show, no samples in the range, recovered, or nothing to say", () => {
  assert.equal(nothingToShow(null), "this user has no sessions");
  assert.equal(nothingToShow({ session: "s" }), "this session has no samples yet");
  assert.equal(afterLoad(0, "300", false), "no samples over the last 5 minutes");
  assert.equal(afterLoad(0, "all", true), "no samples over the whole session");
  assert.equal(afterLoad(12, "3600", true), "data is current again");
  assert.equal(afterLoad(12, "3600", false), "");
});

test("the chart's name gives the figures over the range, or says there are none", () => {
  const figures = { count: 600, mean: 41.96, low: 0, high: 100 };
  assert.equal(chartLabel(figures, "3600"), "CPU over the last hour: mean 42.0 %, min 0.0 %, max 100.0 %");
  assert.equal(chartLabel({ count: 0, mean: null, low: null, high: null }, "86400"), "No CPU samples over the last day");
});
