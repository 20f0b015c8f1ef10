// node --test: the keys page's words and the agent's command line (static/keys.js).
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

import { load } from "./static.mjs";

const { AGENT_KEY_VARIABLE, agentCommand, copiedWords, keyMadeWords, keyRow, revokeQuestion, shellWord } =
  await load("keys.js");

const KEY = `pmk_${"Ab3-_".repeat(8)}xyz`;
const ORIGIN = "http://127.0.0.1:8080";

// What a POSIX shell makes of the command line: the environment it sets and the words it runs.
function shellReads(command) {
  const script = `set -f; perfmon() { printf '%s\\n' "env=$${AGENT_KEY_VARIABLE}" "$@"; }; ${command}`;
  return execFileSync("sh", ["-c", script], { encoding: "utf8" }).split("\n").slice(0, -1);
}

test("an ingest key's command line: the key in the agent's variable, this server, the key's name as the host", () => {
  assert.equal(
    agentCommand(KEY, ORIGIN, "web-1"),
    `PERFMON_AGENT_KEY='${KEY}' perfmon agent --server http://127.0.0.1:8080 --host web-1`,
  );
});

test("a shell reads the command line as the key, the server and the host, whatever the name holds", () => {
  for (const host of ["web-1", "db 2", "it's", "$(reboot)", "a;b|c&d", "*", '"quoted"', "ünïcödé", "back\\slash", "-x"]) {
    assert.deepEqual(shellReads(agentCommand(KEY, ORIGIN, host)), [`env=${KEY}`, "agent", "--server", ORIGIN, "--host", host]);
  }
  assert.deepEqual(shellReads(agentCommand(KEY, "https://perf.example.org", "h")).slice(3, 4), ["https://perf.example.org"]);
});

test("plain words stay as they are; anything else is single-quoted", () => {
  assert.equal(shellWord("web-1.example.org"), "web-1.example.org");
  assert.equal(shellWord("db 2"), "'db 2'");
  assert.equal(shellWord("it's"), "'it'\\''s'");
});

test("a key's row: name, scope, created and last used in the page's date style", () => {
  const key = { id: "0123456789abcdef", name: "web-1", scope: "ingest", created: 0, last_used: 1_700_000_059 };
  assert.deepEqual(keyRow(key, "en-GB", "UTC"), {
    id: "0123456789abcdef",
    name: "web-1",
    scope: "ingest",
    created: "1 Jan 1970, 00:00",
    lastUsed: "14 Nov 2023, 22:14",
  });
  const unused = keyRow({ ...key, scope: "read", last_used: null }, "en-GB", "UTC");
  assert.deepEqual([unused.scope, unused.lastUsed], ["read", "never"]);
});

test("what is said when a key is made, before one is revoked, and after a copy", () => {
  assert.equal(keyMadeWords({ name: "web-1", scope: "ingest" }), "Ingest key “web-1” made: copy it now, it is shown only this once.");
  assert.equal(keyMadeWords({ name: "wall", scope: "read" }), "Read key “wall” made: copy it now, it is shown only this once.");
  assert.match(revokeQuestion({ name: "web-1", scope: "ingest" }), /^Revoke the key “web-1”\? .*an agent that uses it stops sending\.$/);
  assert.match(revokeQuestion({ name: "wall", scope: "read" }), /a display or tool that uses it stops reading\.$/);
  assert.equal(copiedWords("Key", true), "Key copied.");
  assert.match(copiedWords("Command line", false), /^Command line selected: press Ctrl\+C/);
});
