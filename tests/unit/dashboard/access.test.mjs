// node --test: the session a tab keeps, the scope's offers and the form of a key (static/access.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { KEY_PREFIX, isKeyText, looksLikeKey, offersFor, allowedView, SessionStore } = await load("access.js");

// A Storage as the browser's sessionStorage behaves: strings in, strings out, null for none.
class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(name) {
    return this.items.has(name) ? this.items.get(name) : null;
  }
  setItem(name, value) {
    this.items.set(name, String(value));
  }
  removeItem(name) {
    this.items.delete(name);
  }
}

const HASH = "0b6e5f0c-8b55-4c1d-9f0a-2d3b4c5d6e7f";
const KEY = `pmk_${"A".repeat(20)}-_${"z9".repeat(10)}b`;

test("a tab holds no session until one is kept, then the same after a reload (a new store on the same storage)", () => {
  const storage = new MemoryStorage();
  assert.equal(new SessionStore(storage).load(), null);
  new SessionStore(storage).save({ hash: HASH, user: "ada", scope: "all" });
  assert.deepEqual(new SessionStore(storage).load(), { hash: HASH, user: "ada", scope: "all" });
});

test("a key's session keeps no user; forgetting leaves nothing behind", () => {
  const storage = new MemoryStorage();
  const store = new SessionStore(storage);
  store.save({ hash: HASH, user: "ada", scope: "all" });
  store.save({ hash: "another", user: null, scope: "read" });
  assert.deepEqual(store.load(), { hash: "another", user: null, scope: "read" });
  store.forget();
  assert.equal(store.load(), null);
  assert.equal(storage.items.size, 0);
});

test("a hash kept by the page before keys (no scope), or with a scope it does not know, has scope null", () => {
  const storage = new MemoryStorage();
  storage.setItem("perfmon.hash", HASH);
  assert.deepEqual(new SessionStore(storage).load(), { hash: HASH, user: null, scope: null });
  storage.setItem("perfmon.scope", "admin");
  assert.equal(new SessionStore(storage).load().scope, null);
  storage.setItem("perfmon.hash", "");
  assert.equal(new SessionStore(storage).load(), null);
});

test("a password session is offered everything, a read key's session the views read-only, an ingest key's nothing", () => {
  assert.deepEqual(offersFor("all"), { dashboard: true, keys: true, readOnly: false });
  assert.deepEqual(offersFor("read"), { dashboard: true, keys: false, readOnly: true });
  assert.deepEqual(offersFor("ingest"), { dashboard: false, keys: false, readOnly: true });
  assert.deepEqual(offersFor(null), { dashboard: true, keys: false, readOnly: true });
});

test("the keys page is the fleet for a session that may not manage keys; other views are what they are", () => {
  assert.equal(allowedView("keys", "all"), "keys");
  for (const scope of ["read", "ingest", null]) assert.equal(allowedView("keys", scope), "fleet");
  for (const view of ["fleet", "host", "sessions"]) assert.equal(allowedView(view, "read"), view);
});

test("a key is pmk_ and 43 URL-safe base64 characters; anything else starting with pmk_ is meant as one", () => {
  assert.equal(KEY.length, 47);
  assert.ok(isKeyText(KEY));
  for (const broken of [KEY.slice(0, -1), `${KEY}x`, ` ${KEY}`, KEY.replace("A", "+"), KEY.replace("pmk_", "pmK_"), HASH]) {
    assert.ok(!isKeyText(broken), broken);
  }
  assert.ok(looksLikeKey(KEY) && looksLikeKey(KEY.slice(0, 10)) && looksLikeKey(KEY_PREFIX));
  assert.ok(!looksLikeKey(HASH) && !looksLikeKey(""));
});
