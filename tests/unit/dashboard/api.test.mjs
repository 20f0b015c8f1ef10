// node --test: calls to the server (static/api.js) against a small HTTP server on 127.0.0.1.
import test, { after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import { load } from "./static.mjs";

const { api, apiBlob, send, ApiError, isTransient, DEFAULT_RETRY_SECONDS } = await load("api.js");

// Answers by path: [status, headers, body]; records the requests it got.
const ANSWERS = {
  "/sessions": [200, { "Content-Type": "application/json" }, '{"payload": []}'],
  "/busy": [503, { "Content-Type": "application/json", "Retry-After": "2" }, '{"reason": "Storage unavailable"}'],
  "/gone": [404, { "Content-Type": "text/plain" }, "not json"],
  "/export": [200, { "Content-Type": "text/csv; charset=utf-8" }, "cpu,time\n1.5,100\n"],
  "/forbidden": [403, { "Content-Type": "application/json" }, '{"reason": "Forbidden"}'],
  "/broken": [500, { "Content-Type": "application/json" }, '{"reason": "Internal error"}'],
};

const requests = [];
const server = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    requests.push({ method: request.method, url: request.url, body });
    const [status, headers, text] = ANSWERS[new URL(request.url, "http://x").pathname] ?? [418, {}, ""];
    response.writeHead(status, headers).end(text);
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;
after(() => {
  server.close();
  server.closeAllConnections(); // fetch keeps its connection alive; Node 18's close() would wait for it
});

const refusal = async (call) => {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof ApiError, error);
    return error;
  }
  assert.fail("the call was not refused");
};

test("an answer's JSON body is returned, the parameters sent as the query string", async () => {
  const body = await api(`${base}/sessions`, { hash: "a b", step: 1.5 });
  assert.deepEqual(body, { payload: [] });
  assert.equal(requests.at(-1).url, "/sessions?hash=a+b&step=1.5");
});

test("a post sends what it is given", async () => {
  await api(`${base}/sessions`, null, { method: "POST", body: '{"user": "u"}' });
  assert.deepEqual(requests.at(-1), { method: "POST", url: "/sessions", body: '{"user": "u"}' });
});

test("a refusal carries its status, the server's reason and its Retry-After", async () => {
  const error = await refusal(() => api(`${base}/busy`));
  assert.deepEqual([error.status, error.message, error.retryAfter], [503, "Storage unavailable", 2]);
  assert.ok(isTransient(error));
});

test("a refusal without a JSON reason carries the status text and the default wait", async () => {
  const error = await refusal(() => api(`${base}/gone`));
  assert.deepEqual([error.status, error.message, error.retryAfter], [404, "Not Found", DEFAULT_RETRY_SECONDS]);
  assert.ok(!isTransient(error));
  assert.ok(!isTransient(await refusal(() => api(`${base}/broken`))));
});

test("a server out of reach is status 0, worth retrying", async () => {
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const error = await refusal(() => api(`http://127.0.0.1:${port}/sessions`));
  assert.deepEqual([error.status, error.message, error.retryAfter], [0, "server unreachable", DEFAULT_RETRY_SECONDS]);
  assert.ok(isTransient(error));
});

test("the server's clock comes from an answer's Date header, in whole epoch seconds", async () => {
  const { serverTime, apiAnswer } = await load("api.js");
  assert.equal(serverTime("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  assert.equal(serverTime(null), null);
  assert.equal(serverTime("not a date"), null);
  const answer = await apiAnswer(`${base}/sessions`, [["metric", "cpu"], ["metric", "mem"]]);
  assert.deepEqual(answer.body, { payload: [] });
  assert.equal(requests.at(-1).url, "/sessions?metric=cpu&metric=mem");
  assert.ok(Math.abs(answer.serverTime - Date.now() / 1000) < 3600); // Node's server sends a Date
});

test("send posts a JSON body (or another method's) and returns the JSON answer", async () => {
  assert.deepEqual(await send(`${base}/sessions`, { hash: "h", name: "web 1" }), { payload: [] });
  assert.deepEqual(requests.at(-1), { method: "POST", url: "/sessions", body: '{"hash":"h","name":"web 1"}' });
  await send(`${base}/sessions`, {}, "PUT");
  assert.equal(requests.at(-1).method, "PUT");
  const error = await refusal(() => send(`${base}/forbidden`, { hash: "h" }));
  assert.deepEqual([error.status, error.message], [403, "Forbidden"]);
});

test("apiBlob: the answer's bytes and type, to be saved as a file; refusals as api()'s", async () => {
  const blob = await apiBlob(`${base}/export`, { hash: "h", format: "csv" });
  assert.equal(blob.type.replace(" ", ""), "text/csv;charset=utf-8"); // normalised as a MIME type
  assert.equal(await blob.text(), "cpu,time\n1.5,100\n");
  assert.equal(requests.at(-1).url, "/export?hash=h&format=csv");
  const error = await refusal(() => apiBlob(`${base}/busy`, { hash: "h" }));
  assert.deepEqual([error.status, error.retryAfter], [503, 2]);
});
