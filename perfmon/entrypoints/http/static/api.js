// Calls to this server's API (same origin; relative paths in the page). No DOM.

// A refused or failed call: `status` is the HTTP status (0 when the server could not be reached),
// `message` the server's reason, `retryAfter` the seconds to wait before trying again.
export class ApiError extends Error {
  constructor(status, reason, retryAfter) {
    super(reason);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// Seconds to wait when the server names no Retry-After (or could not be reached).
export const DEFAULT_RETRY_SECONDS = 5;

// The JSON body of a call (null when there is none); throws ApiError when the server refuses it or
// cannot be reached. `params` become the query string (an object, or [name, value] pairs when a name
// repeats); `init` is fetch's.
export const api = async (path, params, init) => (await apiAnswer(path, params, init)).body;

// The server's clock (epoch seconds, whole) from an answer's Date header; null without one.
export function serverTime(dateHeader) {
  const millis = dateHeader ? Date.parse(dateHeader) : NaN;
  return Number.isFinite(millis) ? millis / 1000 : null;
}

// As api(), with the server's clock when it answered: {body, serverTime} (serverTime null when the
// answer has no Date header). The fleet page judges hosts by the server's clock, not this machine's.
export async function apiAnswer(path, params, init) {
  const response = await call(path, params, init);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { body, serverTime: serverTime(response.headers.get("Date")) };
}

// A JSON body sent with `method` (POST unless told): its JSON answer, as api().
export const send = (path, body, method = "POST") =>
  api(path, null, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// The answer's body as a Blob of its type (a CSV export, to be saved as a file); throws as api().
export async function apiBlob(path, params) {
  const response = await call(path, params);
  try {
    return await response.blob();
  } catch {
    throw new ApiError(0, "server unreachable", DEFAULT_RETRY_SECONDS); // the answer broke off
  }
}

// The server's answer to a call when it is a success; else ApiError with its status and reason.
async function call(path, params, init) {
  const url = params ? `${path}?${new URLSearchParams(params)}` : path;
  let response;
  try {
    response = await fetch(url, { cache: "no-store", ...init });
  } catch {
    throw new ApiError(0, "server unreachable", DEFAULT_RETRY_SECONDS);
  }
  if (response.ok) return response;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const retryAfter = Number(response.headers.get("Retry-After")) || DEFAULT_RETRY_SECONDS;
  throw new ApiError(response.status, (body && body.reason) || response.statusText, retryAfter);
}

// Failures worth retrying: storage briefly unavailable, or the server out of reach.
export const isTransient = (error) => error.status === 503 || error.status === 0;
