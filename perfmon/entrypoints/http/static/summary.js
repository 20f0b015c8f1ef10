// The figures beside the chart. Pure: no DOM, no fetch (Node's test runner imports it).

// Figures for the range from its buckets {cpu, min, max, count}: min of mins, max of maxes and the
// count-weighted mean (the server's buckets differ in how many samples they hold). CPU in percent;
// all null when the buckets hold no sample.
export function summarize(buckets) {
  let count = 0;
  let total = 0;
  let low = Infinity;
  let high = -Infinity;
  for (const bucket of buckets) {
    count += bucket.count;
    total += bucket.cpu * bucket.count;
    low = Math.min(low, bucket.min);
    high = Math.max(high, bucket.max);
  }
  if (!count) return { count: 0, mean: null, low: null, high: null };
  return { count, mean: total / count, low, high };
}
