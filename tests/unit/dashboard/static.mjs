// Where the dashboard's modules live, for the tests beside this file (run by `node --test`, see .ci/run).
// The static folder's package.json says "type": "module", so Node loads its .js files as ES modules.

export const STATIC = new URL("../../../perfmon/entrypoints/http/static/", import.meta.url);

// The module `name` (e.g. "series.js") of the dashboard.
export const load = (name) => import(new URL(name, STATIC).href);
