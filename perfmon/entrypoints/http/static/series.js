// The chart's data from the server's buckets: a pure function, loaded by the page before dashboard.js
// (as window.perfmonSeries) and by Node's test runner (tests/unit/dashboard_series.test.js).
(function (root, makeSeries) {
  "use strict";
  const api = makeSeries();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.perfmonSeries = api;
})(typeof self === "undefined" ? this : self, () => {
  "use strict";

  // Buckets start at multiples of the step, so neighbours are one step apart; further than this many
  // steps (the half absorbs rounding of fractional steps) means buckets without samples between them.
  const GAP_STEPS = 1.5;

  // uPlot's columns [times, means, mins, maxes] from buckets {timestamp, cpu, min, max}, oldest first.
  // Where buckets are missing, one point of nulls one step after the last bucket: with spanGaps false,
  // uPlot breaks the lines (and the band) there instead of drawing a ramp across time without data.
  function chartSeries(buckets, step) {
    const columns = [[], [], [], []];
    const add = (time, mean, low, high) => {
      columns[0].push(time);
      columns[1].push(mean);
      columns[2].push(low);
      columns[3].push(high);
    };
    let previous = null;
    for (const bucket of buckets) {
      if (previous !== null && step > 0 && bucket.timestamp - previous > step * GAP_STEPS) {
        add(previous + step, null, null, null);
      }
      add(bucket.timestamp, bucket.cpu, bucket.min, bucket.max);
      previous = bucket.timestamp;
    }
    return columns;
  }

  // How many gaps chartSeries marked.
  const gapCount = (columns) => columns[1].filter((value) => value === null).length;

  return { chartSeries, gapCount, GAP_STEPS };
});
