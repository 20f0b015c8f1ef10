// Numbers and times as the page writes them. Pure: no DOM, no fetch (Node's test runner imports it).
// `locale` and `timeZone` default to the browser's; tests pass them to get the same text everywhere.

// CPU percent to one decimal; "–" for no figure.
export const percent = (value) => (value === null || value === undefined ? "–" : `${value.toFixed(1)} %`);

// The step the server bucketed by (seconds) in the unit that reads best; "–" for none.
export function formatStep(step) {
  if (step === null) return "–";
  if (step < 60) return `${Number(step.toFixed(2))} s per point`;
  if (step < 3600) return `${Number((step / 60).toFixed(1))} min per point`;
  return `${Number((step / 3600).toFixed(1))} h per point`;
}

// A count with the locale's digit grouping.
export const formatCount = (count, locale) => count.toLocaleString(locale);

// An epoch time (seconds) as date and minute.
export const formatMoment = (seconds, locale, timeZone) =>
  new Date(seconds * 1000).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short", timeZone });

// A session in the picker: when it began and the start of its hash; marked when it is the one signed in
// with. No sample count: the list is read before the chart's data, so a count would lag the figures
// beside it (and it counts the whole session, not the range shown). The figures say how many.
// A session on a host (PROTOCOL.md part 3: `host` in GET /sessions) names it; one without names none.
export function sessionLabel(session, signedInHash, locale, timeZone) {
  const mine = session.session === signedInHash ? " · this sign-in" : "";
  const host = session.host ? ` · ${session.host}` : "";
  return `${formatMoment(session.created, locale, timeZone)} · ${session.session.slice(0, 8)}${host}${mine}`;
}

// The line under the chart after a load at `when` (a Date), refreshed every `refreshMs` milliseconds.
export const refreshedLine = (when, refreshMs, locale, timeZone) =>
  `updated ${when.toLocaleTimeString(locale, { timeZone })} · refreshing every ${refreshMs / 1000} s`;
