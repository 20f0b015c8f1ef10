// The fleet page: a card per host with its status, latest figures and a CPU sparkline of the last
// hour. Reads and writes the DOM; the rules are in hosts.js and spark.js.

import { hostRoute, hostStatus, latestFigures, statusWords } from "./hosts.js";
import { sparkPath } from "./spark.js";

// The sparkline's drawing box (index.html's template says the same); the SVG stretches it to the
// card's width, and the stroke keeps its width.
export const SPARK_WIDTH = 240;
const SPARK_HEIGHT = 40;

const element = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// A new card for a host, from the page's template: its parts are filled by fillCard.
function newCard(name) {
  const card = document.getElementById("host-card").content.firstElementChild.cloneNode(true);
  card.dataset.host = name;
  const link = card.querySelector(".host-name");
  link.textContent = name;
  link.href = hostRoute(name);
  return card;
}

function fillCard(card, host, now, spark) {
  const status = hostStatus(host, now);
  card.dataset.state = status.state;
  const badge = card.querySelector(".badge");
  badge.textContent = statusWords(status);
  badge.dataset.state = status.state;
  const path = card.querySelector(".spark path");
  const d = spark ? sparkPath(spark.buckets, spark.span, spark.step, SPARK_WIDTH, SPARK_HEIGHT) : "";
  path.setAttribute("d", d);
  const svg = card.querySelector(".spark");
  svg.dataset.points = String(spark ? spark.buckets.length : 0);
  svg.setAttribute("aria-label", spark && spark.buckets.length ? "CPU over the last hour" : "No CPU over the last hour");
  card.querySelector(".figures").replaceChildren(
    ...latestFigures(host.latest).map(([label, text]) => {
      const figure = element("div");
      figure.append(element("dt", "", label), element("dd", "", text));
      return figure;
    }),
  );
}

// Show `hosts` (GET /hosts' payload, by name) at the server's time `now`; `sparks` maps a host name to
// {buckets, span, step} of its CPU. Cards are kept from one refresh to the next, so that a focused
// link keeps its focus.
export function showFleet(list, hosts, now, sparks) {
  const kept = new Map([...list.children].map((card) => [card.dataset.host, card]));
  const cards = hosts.map((host) => {
    const card = kept.get(host.host) || newCard(host.host);
    fillCard(card, host, now, sparks.get(host.host));
    return card;
  });
  const same = cards.length === list.children.length && cards.every((card, i) => list.children[i] === card);
  if (!same) list.replaceChildren(...cards);
  Object.assign(list.dataset, {
    state: "ready",
    hosts: String(hosts.length),
    live: String(cards.filter((card) => card.dataset.state === "live").length),
  });
}
