// The uPlot chart: its options, its size in the page. Reads the DOM; uPlot is the vendored global
// (vendor/uplot/uPlot.iife.min.js, a classic script the page runs before its modules).

import { axisRange } from "./ranges.js";
import { percent } from "./format.js";

// uPlot's time-axis table with 24-hour times: [tick step (s), label, then the label when the year,
// month, day, hour, minute or second changes (null: unchanged), mode]. See uPlot's axes docs.
export const TIME_TICKS = [
  [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
  [3600 * 24 * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600 * 24, "{D} {MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
  // Ticks seconds apart are close: under the first and each new minute the time only, not a date that
  // would run into the neighbouring labels (the other charts' rows and the legend give the date).
  [1, ":{ss}", "\n{HH}:{mm}", null, "\n{HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
];

// The chart's size in CSS pixels for its container.
function chartSize(container) {
  const style = getComputedStyle(container);
  const inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const top = container.getBoundingClientRect().top;
  // Leave room below the plot for uPlot's legend and the status line.
  const height = Math.min(640, Math.max(220, window.innerHeight - top - 110));
  // No minimum wider than a phone: the chart follows the page down to 320 px without sideways scrolling.
  return { width: Math.max(160, Math.floor(inner)), height: Math.round(height) };
}

// The plotting area's width in CSS pixels (uPlot's overlay covers exactly that area).
export const plotWidth = (chart) => Math.max(1, chart.over.clientWidth || chart.width);

// Fit the chart to its container again (after the page was shown or resized).
export const fitChart = (chart, container) => chart.setSize(chartSize(container));

// A new, empty chart in `container`; `shownSpan()` gives the span {start, end} the data covers (or null).
export function createChart(container, shownSpan) {
  const line = "#1d4ed8";
  const edge = "rgba(29, 78, 216, 0.35)";
  const options = {
    ...chartSize(container),
    cursor: { drag: { x: false, y: false, setScale: false } },
    scales: {
      x: { time: true, range: () => axisRange(shownSpan(), Date.now() / 1000) },
      // Percent of one CPU: 0..100, higher when a sample says so (cpu is only bounded below).
      y: { range: (u, min, max) => [0, Math.max(100, Math.ceil(max || 0))] },
    },
    series: [
      { label: "time", value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" },
      // spanGaps false: the null points chartSeries puts where buckets are missing break the lines.
      { label: "mean", stroke: line, width: 1.5, spanGaps: false, value: (u, v) => percent(v) },
      { label: "min", stroke: edge, width: 1, spanGaps: false, value: (u, v) => percent(v) },
      { label: "max", stroke: edge, width: 1, spanGaps: false, value: (u, v) => percent(v) },
    ],
    bands: [{ series: [3, 2], fill: "rgba(29, 78, 216, 0.12)" }],
    axes: [
      { stroke: "#374151", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#d1d5db" }, values: TIME_TICKS },
      {
        stroke: "#374151",
        size: 56,
        grid: { stroke: "#e5e7eb" },
        ticks: { stroke: "#d1d5db" },
        values: (u, ticks) => ticks.map((v) => `${v} %`),
      },
    ],
  };
  return new globalThis.uPlot(options, [[], [], [], []], container);
}
