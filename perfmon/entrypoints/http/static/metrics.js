// The host page's charts and their data: which metrics each chart draws, and uPlot's columns from a
// GET /samples answer with `step` (PROTOCOL.md part 3). Pure: no DOM, no fetch (Node's test runner
// imports it).

import { GAP_STEPS } from "./series.js";

// The charts, top to bottom, from the catalogue (PROTOCOL.md part 3): `unit` is a key of units.js's
// UNITS. `optional` charts show only when the host has sent one of their metrics (temp: only machines
// with sensors have it).
export const HOST_CHARTS = [
  { id: "cpu", title: "CPU", metrics: ["cpu"], unit: "percent" },
  { id: "memory", title: "Memory and swap", metrics: ["mem", "swap"], unit: "percent" },
  { id: "load", title: "Load average", metrics: ["load1", "load5", "load15"], unit: "load" },
  { id: "disk", title: "Disk usage", metrics: ["disk"], unit: "percent" },
  { id: "io", title: "Disk I/O", metrics: ["disk_read", "disk_write"], unit: "bytes" },
  { id: "network", title: "Network", metrics: ["net_rx", "net_tx"], unit: "bytes" },
  { id: "temp", title: "Temperature", metrics: ["temp"], unit: "celsius", optional: true },
];

// Each metric's name in a chart's legend.
export const METRIC_LABELS = {
  cpu: "CPU",
  mem: "memory",
  swap: "swap",
  load1: "1 min",
  load5: "5 min",
  load15: "15 min",
  disk: "disk",
  disk_read: "read",
  disk_write: "write",
  net_rx: "received",
  net_tx: "sent",
  temp: "hottest sensor",
};

// The charts a host gets: all but the optional ones it has never sent a metric of (`latest` from
// GET /hosts).
export const chartsFor = (latest) =>
  HOST_CHARTS.filter((chart) => !chart.optional || chart.metrics.some((metric) => metric in (latest || {})));

// Every metric the charts draw, for one GET /samples (at most 16 names per call).
export const metricsOf = (charts) => charts.flatMap((chart) => chart.metrics);

// uPlot's columns for a chart of `metrics` from a GET /samples answer's payload {metric: [bucket]},
// buckets {timestamp, value, min, max, count} oldest first: [times, then for each metric its means,
// mins and maxes]. Times are every bucket start of any of the metrics; a metric without a bucket at a
// time is null there. Where no metric has a bucket for more than GAP_STEPS steps, one time of nulls
// one step after the last bucket: with spanGaps false, uPlot breaks the lines and bands there.
export function metricColumns(payload, metrics, step) {
  const byTime = metrics.map((metric) => new Map((payload[metric] || []).map((b) => [b.timestamp, b])));
  const times = [...new Set(byTime.flatMap((buckets) => [...buckets.keys()]))].sort((a, b) => a - b);
  const columns = [[], ...metrics.flatMap(() => [[], [], []])];
  const add = (time) => {
    columns[0].push(time);
    byTime.forEach((buckets, i) => {
      const bucket = buckets.get(time);
      columns[1 + 3 * i].push(bucket ? bucket.value : null);
      columns[2 + 3 * i].push(bucket ? bucket.min : null);
      columns[3 + 3 * i].push(bucket ? bucket.max : null);
    });
  };
  let previous = null;
  for (const time of times) {
    if (previous !== null && step > 0 && time - previous > step * GAP_STEPS) add(previous + step);
    add(time);
    previous = time;
  }
  return columns;
}

// How many times in the columns have no value at all (the gaps metricColumns marked).
export const emptyTimes = (columns) =>
  columns[0].filter((_, i) => columns.slice(1).every((column) => column[i] === null)).length;

// How many buckets the columns hold, over all metrics (a bucket's mean is never null).
export const bucketCount = (columns) =>
  columns.slice(1).filter((_, i) => i % 3 === 0).reduce((sum, means) => sum + means.filter((v) => v !== null).length, 0);

// The file name a metric's CSV downloads as: the host name kept to letters, digits, dot, dash and
// underscore (it may hold any character but a control one; a file name may not).
export const csvName = (host, metric) => `perfmon-${host.replace(/[^A-Za-z0-9._-]+/g, "_")}-${metric}.csv`;
