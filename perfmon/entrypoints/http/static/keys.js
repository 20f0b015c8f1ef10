// The keys page's words: a key's row, the agent's command line for a new ingest key, the questions and
// announcements (PROTOCOL.md part 4). Pure: no DOM, no fetch (Node's test runner imports it).

import { formatMoment } from "./format.js";

// The environment variable the agent reads its key from (perfmon agent --help).
export const AGENT_KEY_VARIABLE = "PERFMON_AGENT_KEY";

// Characters a POSIX shell reads as a plain word: text of only these needs no quotes.
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

// The text as one word for a POSIX shell: as it is when plain, else in single quotes (a single quote
// inside closes them, adds an escaped one and opens them again).
export const shellWord = (text) => (PLAIN_WORD.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`);

// The command that starts an agent with a new ingest key on the host it is named after: the key in the
// agent's environment variable (in quotes always, so it reads as the secret it is), the server this page
// came from (`origin`, e.g. location.origin) and the host. A key's name follows a host name's rules
// (1..128 characters, no control characters), so the name is the host.
export const agentCommand = (key, origin, host) =>
  `${AGENT_KEY_VARIABLE}='${key}' perfmon agent --server ${shellWord(origin)} --host ${shellWord(host)}`;

// A key of GET /keys' payload as its row shows it: name, scope, created and last used in the page's
// date style ("never" for a key not used yet).
export function keyRow(key, locale, timeZone) {
  const moment = (seconds) => formatMoment(seconds, locale, timeZone);
  return {
    id: key.id,
    name: key.name,
    scope: key.scope,
    created: moment(key.created),
    lastUsed: key.last_used === null || key.last_used === undefined ? "never" : moment(key.last_used),
  };
}

// What a screen reader hears when a key is made: the key itself is in the field that gets the focus.
export const keyMadeWords = (key) =>
  `${key.scope === "ingest" ? "Ingest" : "Read"} key “${key.name}” made: copy it now, it is shown only this once.`;

// The question before a key is revoked.
export function revokeQuestion(key) {
  const user = key.scope === "ingest" ? "an agent that uses it stops sending" : "a display or tool that uses it stops reading";
  return `Revoke the key “${key.name}”? It opens no more sessions and every session opened with it is closed: ${user}.`;
}

// After a copy: said in the page's live region.
export const copiedWords = (what, copied) =>
  copied ? `${what} copied.` : `${what} selected: press Ctrl+C (⌘C on a Mac) to copy it.`;
