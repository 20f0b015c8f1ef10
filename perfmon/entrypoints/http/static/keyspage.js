// The keys page (#keys, for a session signed in with the password): make a key, shown once with a copy
// button and, for an ingest key, the agent's command line; list the user's keys; revoke one
// (PROTOCOL.md part 4). Reads and writes the DOM; the words are in keys.js.

import { ApiError, api, send } from "./api.js";
import { agentCommand, copiedWords, keyMadeWords, keyRow, revokeQuestion } from "./keys.js";
import { describe } from "./messages.js";

const $ = (id) => document.getElementById(id);

const element = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

export class KeysPage {
  // `hash()` gives the session to call with; `ended(error)` is told when the server refuses it (401).
  constructor(hash, ended) {
    this.hash = hash;
    this.ended = ended;
    this.keys = []; // GET /keys' payload, as last read
    this.generation = 0; // bumped by every list read and by reset: older answers are dropped
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.make();
    });
    $("copy-key").addEventListener("click", () => this.copy($("new-key-text"), "Key"));
    $("copy-command").addEventListener("click", () => this.copy($("agent-command"), "Command line"));
    $("new-key-done").addEventListener("click", () => {
      this.forgetShownKey();
      $("key-name").focus();
    });
  }

  // The page is shown: read the list again.
  show() {
    this.list();
  }

  // The page is left: the key made here is not shown again.
  hide() {
    this.forgetShownKey();
    this.say("");
    this.fail("");
  }

  // Signed out: nothing of the user's stays in the page.
  reset() {
    this.generation++;
    this.hide();
    this.keys = [];
    $("key-list").replaceChildren();
    $("key-list").dataset.state = "empty";
    $("no-keys").hidden = true;
    $("key-name").value = "";
  }

  // ---- calls -----------------------------------------------------------------------------

  async list() {
    const generation = ++this.generation;
    $("key-list").dataset.state = "loading";
    try {
      const keys = (await api("/keys", { hash: this.hash() })).payload;
      if (generation !== this.generation) return;
      this.showList(keys);
    } catch (error) {
      if (generation !== this.generation) return;
      $("key-list").dataset.state = "error";
      this.refused(error);
    }
  }

  async make() {
    const form = $("key-form");
    const name = $("key-name").value;
    const scope = form.elements.scope.value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    this.fail("");
    try {
      const key = await send("/keys", { hash: this.hash(), scope, name });
      this.showKey(key);
      $("key-name").value = "";
      this.list();
    } catch (error) {
      this.refused(error);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  async revoke(key, button) {
    if (!window.confirm(revokeQuestion(key))) return;
    button.disabled = true;
    this.fail("");
    try {
      await api(`/keys/${encodeURIComponent(key.id)}`, { hash: this.hash() }, { method: "DELETE" });
      this.say(`Key “${key.name}” revoked.`);
    } catch (error) {
      this.refused(error);
      // 404: revoked already (elsewhere): the list read below drops it all the same.
      if (error.status !== 404) {
        button.disabled = false;
        return;
      }
    }
    // The button that had the focus goes with its row: the focus goes to the list's title.
    $("key-list-title").focus();
    this.list();
  }

  // A refused call: the session has ended (sign in again), or an error shown, not swallowed.
  refused(error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) this.ended(error);
    else this.fail(describe(error, "keys"));
  }

  // ---- what the page shows ----------------------------------------------------------------

  // The key just made, this once: in a read-only field that takes the focus (a screen reader reads it),
  // with the agent's command line for an ingest key, and said in the live region.
  showKey(key) {
    $("new-key-title").textContent = `Key “${key.name}” (${key.scope})`;
    $("new-key-text").value = key.key;
    const ingest = key.scope === "ingest";
    $("agent-command-box").hidden = !ingest;
    $("agent-command").value = ingest ? agentCommand(key.key, location.origin, key.name) : "";
    $("new-key").hidden = false;
    $("new-key").dataset.id = key.id;
    this.say(keyMadeWords(key));
    $("new-key-text").focus();
    $("new-key-text").select();
  }

  forgetShownKey() {
    $("new-key").hidden = true;
    $("new-key-text").value = "";
    $("agent-command").value = "";
    delete $("new-key").dataset.id;
  }

  // Copy a field's text: to the clipboard where the browser allows it (a secure context, with the
  // user's permission), else the field's text selected for the user to copy.
  async copy(field, what) {
    try {
      await navigator.clipboard.writeText(field.value);
      this.say(copiedWords(what, true));
    } catch {
      field.focus();
      field.select();
      this.say(copiedWords(what, false));
    }
  }

  showList(keys) {
    this.keys = keys;
    const list = $("key-list");
    list.replaceChildren(...keys.map((key) => this.row(key)));
    Object.assign(list.dataset, { state: "ready", keys: String(keys.length) });
    $("no-keys").hidden = keys.length > 0;
  }

  row(key) {
    const shown = keyRow(key);
    const item = element("li", "key-row");
    Object.assign(item.dataset, { id: key.id, scope: key.scope });
    const head = element("div", "key-row-head");
    const badge = element("span", "badge", shown.scope);
    badge.dataset.scope = key.scope;
    head.append(element("strong", "key-name", shown.name), badge);
    const figures = element("dl", "figures");
    for (const [label, text] of [["Created", shown.created], ["Last used", shown.lastUsed]]) {
      const figure = element("div");
      figure.append(element("dt", "", label), element("dd", "", text));
      figures.append(figure);
    }
    const button = element("button", "quiet revoke", "Revoke");
    button.type = "button";
    button.setAttribute("aria-label", `Revoke ${key.name}`);
    button.addEventListener("click", () => this.revoke(key, button));
    item.append(head, figures, button);
    return item;
  }

  // The page's live region: written only when what it says changes.
  say(text) {
    if ($("keys-status").textContent !== text) $("keys-status").textContent = text;
  }

  fail(text) {
    $("keys-error").textContent = text;
  }
}
