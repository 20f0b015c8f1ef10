// Who the page is signed in as and what it may offer them (PROTOCOL.md part 4): the session kept for
// this browser tab, the scope of that session, and the form of an access key.
// Pure: no DOM, no fetch (Node's test runner imports it); the store is given a Storage to use.

// A key is `pmk_` and 43 URL-safe base64 characters (32 random bytes), PROTOCOL.md part 4.
export const KEY_PREFIX = "pmk_";
const KEY_TEXT = /^pmk_[A-Za-z0-9_-]{43}$/;

// True when the text has the form of a key (the server may still know none by it).
export const isKeyText = (text) => KEY_TEXT.test(text);

// True when what was pasted is meant as a key: it starts with the prefix (whole or not).
export const looksLikeKey = (text) => text.startsWith(KEY_PREFIX);

// A session's scope: "all" when it was opened with the password, else its key's ("ingest", "read").
export const SCOPES = ["all", "ingest", "read"];

// What the page offers a session of that scope: the dashboard's views (reads), the keys page (only a
// password session may make, list or revoke keys), and whether it says "read-only". An ingest session
// may read nothing: it has no dashboard. A scope not known (null) is treated as read-only until known.
export function offersFor(scope) {
  return {
    dashboard: scope !== "ingest",
    keys: scope === "all",
    readOnly: scope !== "all",
  };
}

// The view a route names, or the fleet when the scope may not see it (the keys page for a key's session).
export const allowedView = (view, scope) => (view === "keys" && !offersFor(scope).keys ? "fleet" : view);

// sessionStorage's names: "perfmon.hash" as the page before keys kept it, so a tab open across an
// upgrade keeps its session (its scope is then found out again).
const NAMES = { hash: "perfmon.hash", user: "perfmon.user", scope: "perfmon.scope" };

// The session this browser tab holds: kept in the tab's sessionStorage (it survives a reload, and is
// gone with the tab; another tab signs in on its own), never in the page's URL.
export class SessionStore {
  // `storage`: a Storage (window.sessionStorage, or anything with getItem, setItem and removeItem).
  constructor(storage) {
    this.storage = storage;
  }

  // {hash, user, scope} of the kept session, or null when the tab holds none. `user` is null when the
  // session was not opened with a password here; `scope` null when not known (kept by an older page).
  load() {
    const hash = this.storage.getItem(NAMES.hash);
    if (!hash) return null;
    const scope = this.storage.getItem(NAMES.scope);
    return {
      hash,
      user: this.storage.getItem(NAMES.user) || null,
      scope: SCOPES.includes(scope) ? scope : null,
    };
  }

  // Keep a session for this tab, replacing any other (a user or scope not given is not kept).
  save({ hash, user, scope }) {
    this.forget();
    this.storage.setItem(NAMES.hash, hash);
    if (user) this.storage.setItem(NAMES.user, user);
    if (scope) this.storage.setItem(NAMES.scope, scope);
  }

  // Forget the session: after signing out, or when the server no longer knows it.
  forget() {
    for (const name of Object.values(NAMES)) this.storage.removeItem(name);
  }
}
