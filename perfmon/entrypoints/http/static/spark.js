// The fleet page's CPU sparklines: an SVG path from a host's buckets. Pure: no DOM, no fetch (Node's
// test runner imports it).

import { GAP_STEPS } from "./series.js";

// Coordinates to a tenth of a pixel: enough for a line a few dozen pixels high, and a short path.
const tenth = (value) => Math.round(value * 10) / 10;

// The path `d` of buckets {timestamp, value} (oldest first) over `span` {start, end} drawn in a
// `width` x `height` box: time left to right, 0 at the bottom and `top` (or the highest value, if
// higher) at the top. Buckets more than GAP_STEPS steps apart start a new piece ("M"), so a gap stays
// empty; a bucket alone between gaps is a short dash, visible. "" when there is nothing to draw.
export function sparkPath(buckets, span, step, width, height, top = 100) {
  const points = buckets.filter((bucket) => bucket.value !== null && bucket.value !== undefined);
  if (!points.length) return "";
  const high = Math.max(top, ...points.map((bucket) => bucket.value));
  const wide = Math.max(span.end - span.start, 1e-9);
  const x = (time) => tenth(((time - span.start) / wide) * width);
  const y = (value) => tenth(height - (Math.max(0, value) / high) * height);
  const pieces = [];
  let piece = null;
  let previous = null;
  for (const bucket of points) {
    const broken = previous === null || (step > 0 && bucket.timestamp - previous > step * GAP_STEPS);
    if (broken) {
      piece = [];
      pieces.push(piece);
    }
    piece.push(`${x(bucket.timestamp)},${y(bucket.value)}`);
    previous = bucket.timestamp;
  }
  return pieces.map((coordinates) => `M${coordinates.join("L")}${coordinates.length === 1 ? "h1" : ""}`).join("");
}
