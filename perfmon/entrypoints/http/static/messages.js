// What the page tells the user: errors, the status line, the chart's label.
// Pure: no DOM, no fetch (Node's test runner imports it).

import { RANGE_WORDS } from "./ranges.js";
import { percent } from "./format.js";

// What to tell the user about a failed call (an ApiError: status 0 when the server was unreachable);
// `context` is what they were doing: "login" (user and password), "key" (signing in with a pasted
// key), "hash" (opening a pasted or kept session hash), "keys" (the keys page) or "data".
export function describe(error, context) {
  if (error.status === 401) {
    if (context === "login") return "wrong user or password";
    if (context === "key") return "key not recognised: it may have been revoked";
    if (context === "hash") return "session hash not recognised";
    return "the session has ended (signed out, or its key revoked)";
  }
  if (error.status === 403) return FORBIDDEN[context] || FORBIDDEN.data;
  if (error.status === 503) return "storage unavailable, retrying";
  if (error.status === 0) return "server unreachable, retrying";
  if (error.status === 400 && context === "hash") return "that is not a session hash";
  if (error.status === 404) {
    // PROTOCOL.md part 3: a host read answers "No such host", a session read "No such session";
    // part 4: a revoke "No such key".
    if (error.message === "No such key") return "no such key: it may have been revoked already";
    return error.message === "No such host" ? "no such host" : "that session is no longer available";
  }
  return `error ${error.status}: ${error.message}`;
}

// A 403 (PROTOCOL.md part 4: the session's scope does not allow the call), by what was being done.
const FORBIDDEN = {
  key: "that is an ingest key: it can only send samples (for an agent). To view the dashboard, use a read key or your password",
  hash: "that session can only send samples (it was opened with an ingest key)",
  keys: "only a session signed in with the password can manage keys",
  data: "this session may not read that",
};

// A pasted text that starts like a key but is not one (cut short, or with more around it).
export const NOT_A_KEY = "that is not a whole key: a key is pmk_ and 43 more letters, digits, - or _";

// After the last sign-in attempt the page makes: no more "retrying".
export const givenUp = (error, context) => `${describe(error, context).split(",")[0]}: try again later`;

// After Sign out, when the server could not close the session: this tab has forgotten it all the same.
export const notLoggedOut = (error) =>
  `signed out of this tab, but the server could not close the session (${describe(error, "data").split(",")[0]}): ` +
  "it stays open there";

// When the server no longer knows the hash the page holds.
export const signInAgain = (error) => `${describe(error, "data")}: sign in again`;

// The status line when there is nothing to chart: no session, or a session without samples.
export const nothingToShow = (session) => (session ? "this session has no samples yet" : "this user has no sessions");

// The status line after a load of `points` buckets over `range`; `recovering` when it said an error.
export function afterLoad(points, range, recovering) {
  if (!points) return `no samples over ${RANGE_WORDS[range]}`;
  return recovering ? "data is current again" : "";
}

// The chart's accessible name: the figures (from summarize) over the range.
export function chartLabel(figures, range) {
  if (!figures.count) return `No CPU samples over ${RANGE_WORDS[range]}`;
  return (
    `CPU over ${RANGE_WORDS[range]}: mean ${percent(figures.mean)}, ` +
    `min ${percent(figures.low)}, max ${percent(figures.high)}`
  );
}
