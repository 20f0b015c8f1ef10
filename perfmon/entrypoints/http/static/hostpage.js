// The host page's charts: one uPlot chart per group of metrics (metrics.js's HOST_CHARTS), with one
// cursor and one zoom for all of them, each metric's mean drawn as a line over its min-max band, and a
// CSV button per metric. Reads and writes the DOM; uPlot is the vendored global (see chart.js).

import { TIME_TICKS } from "./chart.js";
import { METRIC_LABELS, bucketCount, csvName, emptyTimes, metricColumns } from "./metrics.js";
import { axisRange } from "./ranges.js";
import { UNITS } from "./units.js";

// The cursor of every chart that shares this key moves together (uPlot's cursor.sync).
const SYNC_KEY = "perfmon-host";
// One colour per metric of a chart, in its order; the band is the same colour, faint.
const COLOURS = ["29, 78, 216", "180, 83, 9", "4, 120, 87"];
// Every chart's y axis is as wide (CSS pixels; room for "999 kB/s"), so that their plots line up and one
// time sits at one x in all of them.
const AXIS_SIZE = 72;
// A drag narrower than this (CSS pixels) is a click, not a zoom.
const MIN_DRAG_PIXELS = 4;

const element = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// The size of a chart in its box: the box's inner width, a height that leaves room for the others.
function chartSize(box) {
  const style = getComputedStyle(box);
  const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return { width: Math.max(160, Math.floor(inner)), height: window.innerWidth < 600 ? 170 : 200 };
}

export class HostCharts {
  // `container` gets a panel per chart; `onZoomChange(zoomed)` hears when the page zooms in or out;
  // `onDownload(params, name)` is asked to save a metric's CSV: GET /samples' parameters (all but the
  // session's hash) and the file's name.
  constructor(container, onZoomChange, onDownload) {
    this.container = container;
    this.onZoomChange = onZoomChange;
    this.onDownload = onDownload;
    this.panels = []; // {chart, plot, box}
    this.read = null; // the last render's read: {query (all but the hash and metric), host}
    this.key = null; // the host and charts the panels were built for
    this.span = null;
    this.zoom = null; // [min, max] of the x scale while zoomed in, else null
  }

  // Build the panels for `host`'s `charts` (nothing when they are already built for them).
  show(host, charts) {
    const key = JSON.stringify([host, charts.map((chart) => chart.id)]);
    if (key === this.key) return;
    this.destroy();
    this.key = key;
    this.zoom = null;
    this.panels = charts.map((chart) => this.panel(chart));
    // Plots made once every panel is in the page: each box has its final width in the grid.
    for (const panel of this.panels) panel.plot = this.plot(panel.chart, panel.box);
    this.onZoomChange(false);
  }

  destroy() {
    for (const panel of this.panels) panel.plot.destroy();
    this.panels = [];
    this.key = null;
    this.read = null;
    this.container.replaceChildren();
  }

  panel(chart) {
    const section = element("section", "panel");
    section.dataset.chart = chart.id;
    const head = element("div", "panel-head");
    const title = element("h3", "", chart.title);
    title.id = `chart-title-${chart.id}`;
    const links = element("p", "csv-links");
    links.append("CSV:");
    for (const metric of chart.metrics) {
      // A button: the page fetches the CSV and saves it (no URL holding the session is opened).
      const button = element("button", "csv", METRIC_LABELS[metric]);
      button.type = "button";
      button.dataset.metric = metric;
      button.setAttribute("aria-label", `CSV of ${metric}`);
      button.addEventListener("click", () => this.download(metric));
      links.append(" ", button);
    }
    head.append(title, links);
    const box = element("div", "chart");
    box.setAttribute("role", "group");
    box.setAttribute("aria-labelledby", title.id);
    section.append(head, box);
    this.container.append(section);
    return { chart, box, plot: null };
  }

  plot(chart, box) {
    const unit = UNITS[chart.unit];
    const series = [{ label: "time", value: "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" }];
    const bands = [];
    chart.metrics.forEach((metric, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const mean = series.length;
      // The legend gives the mean and, in brackets, the bucket's min to max (when they differ as shown).
      const value = (u, v, _series, index) => {
        if (v === null || index === null) return "–";
        const [low, high] = [unit.value(u.data[mean + 1][index]), unit.value(u.data[mean + 2][index])];
        return low === high ? unit.value(v) : `${unit.value(v)} (${low} – ${high})`;
      };
      // spanGaps false: a null (no bucket there) breaks the line and the band.
      series.push({ label: METRIC_LABELS[metric], stroke: `rgb(${colour})`, width: 1.5, spanGaps: false, value });
      series.push({ label: "min", stroke: `rgba(${colour}, 0.3)`, width: 1, spanGaps: false });
      series.push({ label: "max", stroke: `rgba(${colour}, 0.3)`, width: 1, spanGaps: false });
      bands.push({ series: [mean + 2, mean + 1], fill: `rgba(${colour}, 0.12)` });
    });
    const options = {
      ...chartSize(box),
      cursor: {
        sync: { key: SYNC_KEY },
        y: false, // no horizontal crosshair: the charts' y scales have nothing in common
        // The page zooms every chart itself (setSelect below); a double-click zooms them all out.
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => () => (this.setZoom(null), null) },
      },
      scales: {
        x: { time: true, range: () => this.zoom || axisRange(this.span, Date.now() / 1000) },
        y: { range: (u, min, max) => unit.range(min, max) },
      },
      series,
      bands,
      axes: [
        { stroke: "#374151", grid: { stroke: "#e5e7eb" }, ticks: { stroke: "#d1d5db" }, values: TIME_TICKS },
        {
          stroke: "#374151",
          size: AXIS_SIZE,
          grid: { stroke: "#e5e7eb" },
          ticks: { stroke: "#d1d5db" },
          values: (u, ticks) => ticks.map(unit.tick),
        },
      ],
      hooks: {
        // What the chart's time axis shows, for tests and tools: every chart's is the same.
        setScale: [
          (u, key) => {
            if (key === "x") Object.assign(box.dataset, { xMin: String(u.scales.x.min), xMax: String(u.scales.x.max) });
          },
        ],
        setSelect: [
          (u) => {
            if (u.select.width >= MIN_DRAG_PIXELS) {
              const min = u.posToVal(u.select.left, "x");
              const max = u.posToVal(u.select.left + u.select.width, "x");
              this.setZoom([min, max]);
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
      },
    };
    const plot = new globalThis.uPlot(options, [[], ...chart.metrics.flatMap(() => [[], [], []])], box);
    // Only the means in the legend: their value says min and max; the edges' rows would double it.
    plot.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
      if (i > 0 && (i - 1) % 3 !== 0) row.classList.add("edge");
    });
    return plot;
  }

  // Zoom every chart to [min, max] (seconds), or back to the whole span for null.
  setZoom(zoom) {
    if (zoom && !(zoom[1] > zoom[0])) return;
    this.zoom = zoom;
    const [min, max] = zoom || axisRange(this.span, Date.now() / 1000);
    for (const panel of this.panels) panel.plot.setScale("x", { min, max });
    this.container.dataset.zoomed = zoom ? "true" : "false";
    this.onZoomChange(Boolean(zoom));
  }

  // Draw a GET /samples payload read over `span` at `step`; `query` is the read's parameters without
  // the metric and the session's hash (a CSV adds the metric). Zoom stays while the span is the same range.
  render(payload, span, step, query, host) {
    this.span = span;
    this.read = { query, host };
    let buckets = 0;
    for (const panel of this.panels) {
      const columns = metricColumns(payload, panel.chart.metrics, step);
      panel.plot.setData(columns);
      const count = bucketCount(columns);
      buckets += count;
      Object.assign(panel.box.dataset, { buckets: String(count), gaps: String(emptyTimes(columns)) });
    }
    return buckets;
  }

  // A metric's CSV over what the charts show (the last read), when there was one.
  download(metric) {
    if (!this.read) return;
    const { query, host } = this.read;
    this.onDownload({ ...query, metric, format: "csv" }, csvName(host, metric));
  }

  // Nothing to draw (a host without samples): empty charts over the hour up to now.
  clear() {
    this.span = null;
    this.read = null;
    for (const panel of this.panels) {
      panel.plot.setData([[], ...panel.chart.metrics.flatMap(() => [[], [], []])]);
      Object.assign(panel.box.dataset, { buckets: "0", gaps: "0" });
    }
  }

  // Fit every chart to its box again (after the page was shown or resized).
  fit() {
    for (const panel of this.panels) panel.plot.setSize(chartSize(panel.box));
  }

  // The plotting area's width in CSS pixels (all charts are as wide), for the step.
  plotWidth() {
    const plot = this.panels[0]?.plot;
    return plot ? Math.max(1, plot.over.clientWidth || plot.width) : 600;
  }
}
