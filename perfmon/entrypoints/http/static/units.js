// The host page's units: axis ticks, legend values and each axis's range, by the kind of metric.
// Pure: no DOM, no fetch (Node's test runner imports it).

// Decimal prefixes, as network and disk tools count bytes per second (1 kB/s = 1000 B/s).
const PREFIXES = ["", "k", "M", "G", "T", "P", "E"];

// A rate in bytes per second with a k/M/G/... prefix ("0 B/s", "2.5 kB/s", "120 MB/s"): one decimal
// under 100 of a prefix, none from 100 or for plain bytes; the figure is under 1000 once rounded (past
// exabytes it grows). "–" for no figure.
export function bytesRate(value) {
  if (value === null || value === undefined) return "–";
  let index = 0;
  let scaled = Math.abs(value);
  for (;;) {
    const shown = Number(scaled.toFixed(index > 0 && scaled < 100 ? 1 : 0));
    if (shown < 1000 || index === PREFIXES.length - 1) {
      return `${value < 0 ? "-" : ""}${shown} ${PREFIXES[index]}B/s`;
    }
    scaled /= 1000;
    index++;
  }
}

// A load average to two decimals; "–" for no figure.
export const loadAverage = (value) => (value === null || value === undefined ? "–" : value.toFixed(2));

// Degrees Celsius to one decimal; "–" for no figure.
export const celsius = (value) => (value === null || value === undefined ? "–" : `${value.toFixed(1)} °C`);

// A percentage to one decimal; "–" for no figure (the session view's percent(), kept apart so the
// host page's units live in one module).
export const percentage = (value) => (value === null || value === undefined ? "–" : `${value.toFixed(1)} %`);

// Each kind of axis: `value` writes a legend figure, `tick` an axis label, `range(min, max)` the y scale
// [low, high] from the data's extremes (null when there is no data).
export const UNITS = {
  // % of something: 0..100 unless a sample says more.
  percent: {
    value: percentage,
    tick: (v) => `${Number(v.toFixed(2))} %`,
    range: (min, max) => [0, Math.max(100, Math.ceil(max ?? 0))],
  },
  // Load averages: from 0, at least 1 high so an idle machine does not look busy.
  load: {
    value: loadAverage,
    tick: (v) => `${Number(v.toFixed(2))}`,
    range: (min, max) => [0, Math.max(1, (max ?? 0) * 1.1)],
  },
  // Bytes per second: from 0, at least 1 kB/s high so an idle disk draws a flat line at the bottom.
  bytes: {
    value: bytesRate,
    tick: bytesRate,
    range: (min, max) => [0, Math.max(1000, (max ?? 0) * 1.1)],
  },
  // Temperatures may be below 0: the data's extremes with a margin, at least 0..50 °C.
  celsius: {
    value: celsius,
    tick: (v) => `${Number(v.toFixed(1))} °C`,
    range: (min, max) => [
      min === null || min === undefined ? 0 : Math.min(0, Math.floor(min - 5)),
      max === null || max === undefined ? 50 : Math.max(50, Math.ceil(max + 5)),
    ],
  },
};
