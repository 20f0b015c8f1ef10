// The chart's columns from the server's buckets. Pure: no DOM, no fetch (Node's test runner imports it).

// Buckets start at multiples of the step, so neighbours are one step apart; further than this many
// steps (the half absorbs rounding of fractional steps) means buckets without samples between them.
export const GAP_STEPS = 1.5;

// uPlot's columns [times, means, mins, maxes] from buckets {timestamp, cpu, min, max}, oldest first.
// Where buckets are missing, one point of nulls one step after the last bucket: with spanGaps false,
// uPlot breaks the lines (and the band) there instead of drawing a ramp across time without data.
export function chartSeries(buckets, step) {
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
export const gapCount = (columns) => columns[1].filter((value) => value === null).length;
