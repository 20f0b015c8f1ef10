// node --test: the host page's charts and their columns from GET /samples (static/metrics.js).
import test from "node:test";
import assert from "node:assert/strict";

import { load } from "./static.mjs";

const { HOST_CHARTS, METRIC_LABELS, chartsFor, metricsOf, metricColumns, emptyTimes, bucketCount, csvName } =
  await load("metrics.js");
const { UNITS } = await load("units.js");

const bucket = (timestamp, value) => ({ timestamp, value, min: value - 1, max: value + 1, count: 3 });

test("the charts draw the whole catalogue, each metric once, with a label and a known unit", () => {
  const catalogue = ["cpu", "mem", "swap", "load1", "load5", "load15", "disk", "disk_read", "disk_write"];
  catalogue.push("net_rx", "net_tx", "temp");
  assert.deepEqual([...metricsOf(HOST_CHARTS)].sort(), [...catalogue].sort());
  assert.ok(metricsOf(HOST_CHARTS).length <= 16); // one GET /samples reads them all
  for (const chart of HOST_CHARTS) {
    assert.ok(chart.unit in UNITS, chart.id);
    for (const metric of chart.metrics) assert.ok(METRIC_LABELS[metric], metric);
  }
});

test("temperature is charted only for a host that has sent it", () => {
  assert.ok(!chartsFor({ cpu: 1 }).some((chart) => chart.id === "temp"));
  assert.ok(chartsFor({ cpu: 1, temp: 40 }).some((chart) => chart.id === "temp"));
  assert.equal(chartsFor({}).length, HOST_CHARTS.length - 1);
});

test("one metric: times, means, mins and maxes, in the payload's order", () => {
  const columns = metricColumns({ cpu: [bucket(0, 10), bucket(60, 20)] }, ["cpu"], 60);
  assert.deepEqual(columns, [
    [0, 60],
    [10, 20],
    [9, 19],
    [11, 21],
  ]);
  assert.equal(emptyTimes(columns), 0);
  assert.equal(bucketCount(columns), 2);
});

test("two metrics share the times; where one has no bucket it is null there, a gap in its line only", () => {
  const payload = { net_rx: [bucket(0, 1), bucket(10, 2), bucket(20, 3)], net_tx: [bucket(0, 5), bucket(20, 7)] };
  const columns = metricColumns(payload, ["net_rx", "net_tx"], 10);
  assert.deepEqual(columns, [
    [0, 10, 20],
    [1, 2, 3],
    [0, 1, 2],
    [2, 3, 4],
    [5, null, 7],
    [4, null, 6],
    [6, null, 8],
  ]);
  assert.equal(emptyTimes(columns), 0);
  assert.equal(bucketCount(columns), 5);
});

test("where no metric has a bucket, one time of nulls a step after the last: every line breaks", () => {
  const payload = { mem: [bucket(0, 50), bucket(5, 51), bucket(600, 52)], swap: [bucket(5, 1), bucket(600, 2)] };
  const columns = metricColumns(payload, ["mem", "swap"], 5);
  assert.deepEqual(columns[0], [0, 5, 10, 600]);
  assert.deepEqual(columns[1], [50, 51, null, 52]);
  assert.deepEqual(columns[4], [null, 1, null, 2]);
  assert.equal(emptyTimes(columns), 1);
});

test("a metric the payload lacks or has empty draws nothing; no metric at all is no point", () => {
  const columns = metricColumns({ load1: [bucket(0, 1)], load5: [] }, ["load1", "load5", "load15"], 60);
  assert.deepEqual(columns, [[0], [1], [0], [2], [null], [null], [null], [null], [null], [null]]);
  assert.deepEqual(metricColumns({ cpu: [] }, ["cpu"], 60), [[], [], [], []]);
});

test("times come out sorted and each once, however the metrics interleave (seeded sweep)", () => {
  let seed = 99;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let run = 0; run < 100; run++) {
    const step = [1, 5, 60][run % 3];
    const payload = {};
    for (const metric of ["a", "b", "c"]) {
      payload[metric] = [];
      for (let i = 0; i < 50; i++) if (random() < 0.6) payload[metric].push(bucket(i * step, random() * 100));
    }
    const columns = metricColumns(payload, ["a", "b", "c"], step);
    const times = columns[0];
    for (let i = 1; i < times.length; i++) assert.ok(times[i] > times[i - 1]);
    assert.equal(bucketCount(columns), payload.a.length + payload.b.length + payload.c.length);
    for (const column of columns) assert.equal(column.length, times.length);
    // A time of nulls only where the buckets either side are more than 1.5 steps apart.
    times.forEach((time, i) => {
      if (columns.slice(1).every((column) => column[i] === null)) {
        assert.ok(times[i + 1] - times[i - 1] > 1.5 * step && time === times[i - 1] + step);
      }
    });
  }
});

test("a CSV's file name keeps the host's name to safe characters", () => {
  assert.equal(csvName("web-1", "cpu"), "perfmon-web-1-cpu.csv");
  assert.equal(csvName("../etc/pass wd", "net_rx"), "perfmon-.._etc_pass_wd-net_rx.csv");
  assert.equal(csvName("é😀", "mem"), "perfmon-_-mem.csv");
});
