"""The fleet and host pages in a real browser: headless Chromium against a real server holding hosts
whose samples went through POST /samples (PROTOCOL.md part 3)."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.browser import cpu_curve, new_dashboard_page, register_with_samples, save_csv, sign_in_to_fleet
from tests.host_data import catalogue_samples, log_in_on_host, post_samples

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.slow

USER, PASSWD = "fleet-user", "correct horse battery staple"
# static/metrics.js's HOST_CHARTS without temperature (the hosts here have no sensors).
CHARTS = {
    "cpu": ["cpu"],
    "memory": ["mem", "swap"],
    "load": ["load1", "load5", "load15"],
    "disk": ["disk"],
    "io": ["disk_read", "disk_write"],
    "network": ["net_rx", "net_tx"],
}
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _fleet(server_url: str) -> dict[str, str]:
    """A user with a session of the original client (no host, CPU only) and three hosts: web-1 with the
    last 15 minutes, db-1 with the last 30 minutes but 20 of them missing, quiet with no sample yet.
    The hashes by host ("" for the session without a host)."""
    now = time.time()
    tokens = {"": register_with_samples(server_url, USER, PASSWD, cpu_curve(now, 60))}
    tokens["web-1"] = log_in_on_host(server_url, USER, PASSWD, "web-1")
    post_samples(server_url, tokens["web-1"], catalogue_samples(now, 900, seed=1))
    tokens["db-1"] = log_in_on_host(server_url, USER, PASSWD, "db-1")
    post_samples(server_url, tokens["db-1"], catalogue_samples(now, 1800, seed=2, skip=range(300, 1500)))
    tokens["quiet"] = log_in_on_host(server_url, USER, PASSWD, "quiet")
    return tokens


_CARDS = """() => [...document.querySelectorAll("#hosts .host-card")].map((card) => ({
    host: card.dataset.host,
    state: card.dataset.state,
    badge: card.querySelector(".badge").textContent,
    href: card.querySelector(".host-name").getAttribute("href"),
    points: Number(card.querySelector(".spark").dataset.points),
    path: card.querySelector(".spark path").getAttribute("d"),
    figures: Object.fromEntries(
        [...card.querySelectorAll(".figures div")].map((div) => [
            div.querySelector("dt").textContent, div.querySelector("dd").textContent,
        ])
    ),
}))"""


def _refresh_now(page: Page, width: int, height: int = 800) -> None:
    """A refresh without waiting 5 s: the page reloads its data when the window is resized."""
    page.set_viewport_size({"width": width, "height": height})


def _problems(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


@pytest.mark.parametrize("storage_kind", ["file"])
def test_the_fleet_lists_every_host_with_its_status_latest_figures_and_cpu_sparkline(
    server_url: str, browser: Browser
) -> None:
    tokens = _fleet(server_url)
    answer = requests.get(f"{server_url}/hosts", params={"hash": tokens[""]}, timeout=10)
    hosts = {host["host"]: host for host in answer.json()["payload"]}
    page = new_dashboard_page(browser)
    problems = _problems(page)
    sign_in_to_fleet(page, server_url, USER, PASSWD)

    cards = page.evaluate(_CARDS)
    assert [card["host"] for card in cards] == ["db-1", "quiet", "web-1"]  # GET /hosts' order
    by_host = {card["host"]: card for card in cards}
    assert by_host["web-1"]["state"] == by_host["db-1"]["state"] == "live"
    assert (by_host["quiet"]["state"], by_host["quiet"]["badge"]) == ("waiting", "no samples yet")
    assert by_host["web-1"]["href"] == "#host=web-1"

    for name in ("web-1", "db-1"):
        latest, figures = hosts[name]["latest"], by_host[name]["figures"]
        for label, metric in (("CPU", "cpu"), ("Memory", "mem"), ("Disk", "disk")):
            number, unit = figures[label].split()
            assert unit == "%" and abs(float(number) - latest[metric]) <= 0.05 + 1e-9, (name, label)
        loads = [float(text) for text in figures["Load 1, 5, 15 min"].split()]
        assert loads == pytest.approx([latest["load1"], latest["load5"], latest["load15"]], abs=0.005)
    assert set(by_host["quiet"]["figures"].values()) == {"–"}

    # The sparkline: the last hour of CPU at 15 s a point (240 px wide), pieces broken by db-1's gap.
    now = time.time()
    for name, minutes in (("web-1", 15), ("db-1", 10)):
        query: dict[str, str | float] = {"hash": tokens[""], "host": name, "metric": "cpu", "step": 15}
        query["start_time"] = now - 3600
        cpu = requests.get(f"{server_url}/samples", params=query, timeout=10).json()["payload"]["cpu"]
        # The page read a moment earlier: a bucket more or less at either end.
        assert abs(by_host[name]["points"] - len(cpu)) <= 1
        assert abs(by_host[name]["points"] - minutes * 4) <= 2
    assert by_host["web-1"]["path"].count("M") == 1
    assert by_host["db-1"]["path"].count("M") == 2  # the 20 minutes without samples stay empty
    assert (by_host["quiet"]["points"], by_host["quiet"]["path"]) == (0, "")

    # Two minutes later by the server's clock (its Date header), every host that sent is silent.
    def later(route: Route) -> None:
        answer = route.fetch()
        headers = {**answer.headers, "date": formatdate(time.time() + 125, usegmt=True)}
        route.fulfill(response=answer, headers=headers)

    page.route("**/hosts?*", later)
    _refresh_now(page, 1200)
    page.locator('.host-card[data-host="web-1"][data-state="silent"]').wait_for()
    by_host = {card["host"]: card for card in page.evaluate(_CARDS)}
    assert by_host["web-1"]["badge"] == by_host["db-1"]["badge"] == "silent for 2 min"
    assert by_host["quiet"]["state"] == "waiting"
    page.unroute("**/hosts?*")

    # The original client's session, on no host, is a click away in the session view.
    page.get_by_role("link", name="Every session").click()
    page.locator("#dashboard").wait_for(state="visible")
    page.get_by_label("Session", exact=True).select_option(tokens[""])
    page.wait_for_selector(f'#chart[data-session="{tokens[""]}"][data-points]', state="attached")
    options = page.locator("#session option").evaluate_all("(options) => options.map((o) => o.value)")
    # Every session, on a host or not, and the one the page's own sign-in opened.
    assert set(tokens.values()) < set(options) and len(options) == len(tokens) + 1
    assert problems == []


def _panels(page: Page) -> dict[str, dict[str, Any]]:
    return {
        panel["chart"]: panel
        for panel in page.evaluate(
            """() => [...document.querySelectorAll("#host-charts .panel")].map((panel) => ({
                chart: panel.dataset.chart,
                ...panel.querySelector(".chart").dataset,
                plotWidth: panel.querySelector(".u-over").clientWidth,
                csv: [...panel.querySelectorAll("button.csv")].map((button) => button.dataset.metric),
                legend: [...panel.querySelectorAll(".u-legend .u-series:not(.edge) .u-value")].map(
                    (value) => value.textContent),
                // The span the page read, at the same moment (a refresh every 5 s moves it on).
                start: Number(document.getElementById("host-charts").dataset.start),
                end: Number(document.getElementById("host-charts").dataset.end),
            }))"""
        )
    }


def _host_charts(page: Page, host: str, range_value: str) -> dict[str, str]:
    selector = f'#host-charts[data-state="ready"][data-host="{host}"][data-range="{range_value}"]'
    page.wait_for_selector(selector, state="attached")
    shown: dict[str, str] = page.evaluate("({...document.getElementById('host-charts').dataset})")
    return shown


def _read(
    server_url: str, token: str, host: str, metrics: list[str], shown: dict[str, str]
) -> dict[str, Any]:
    params: list[tuple[str, str]] = [("hash", token), ("host", host), ("step", shown["step"])]
    params += [("start_time", shown["start"]), ("cur_time", shown["end"])]
    params += [("metric", metric) for metric in metrics]
    answer = requests.get(f"{server_url}/samples", params=params, timeout=10)
    answer.raise_for_status()
    payload: dict[str, Any] = answer.json()["payload"]
    return payload


def _drag(page: Page, selector: str, start: float, end: float) -> None:
    """Drag across the element from `start` to `end` of its width (mouse coordinates are the window's)."""
    page.locator(selector).scroll_into_view_if_needed()
    over = page.locator(selector).bounding_box()
    assert over is not None
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * start, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * (start + end) / 2, y, steps=4)
    page.mouse.move(over["x"] + over["width"] * end, y, steps=4)
    page.mouse.up()


@pytest.mark.parametrize("storage_kind", ["file"])
def test_a_host_page_charts_every_metric_from_the_buckets_with_one_cursor_and_one_zoom(
    server_url: str, browser: Browser
) -> None:
    tokens = _fleet(server_url)
    page = new_dashboard_page(browser)
    problems = _problems(page)
    sign_in_to_fleet(page, server_url, USER, PASSWD)
    page.get_by_role("link", name="db-1").click()

    shown = _host_charts(page, "db-1", "3600")
    panels = _panels(page)
    assert list(panels) == list(CHARTS)
    plot_width = panels["cpu"]["plotWidth"]
    # About one bucket per pixel, rounded up to a round step the rollups serve (static/ranges.js).
    assert float(shown["step"]) == next(step for step in NICE_STEPS if step >= 3600 / plot_width)
    for chart, metrics in CHARTS.items():
        payload = _read(server_url, tokens[""], "db-1", metrics, shown)
        assert int(panels[chart]["buckets"]) == sum(len(payload[metric]) for metric in metrics) > 0, chart
        assert panels[chart]["gaps"] == "1", chart  # the 20 minutes without samples
    cpu_buckets = _read(server_url, tokens[""], "db-1", ["cpu"], shown)["cpu"]

    csv, name, _ = save_csv(page, page.get_by_role("button", name="CSV of cpu"))
    lines = csv.splitlines()
    assert name == "perfmon-db-1-cpu.csv"
    assert lines[0] == "cpu,time" and len(lines) - 1 == sum(bucket["count"] for bucket in cpu_buckets)
    assert panels["network"]["csv"] == ["net_rx", "net_tx"]

    # One cursor: hovering the CPU chart moves every chart's cursor to the same time.
    over = page.locator('.panel[data-chart="cpu"] .u-over').bounding_box()
    assert over is not None
    page.mouse.move(over["x"] + over["width"] * 0.9, over["y"] + over["height"] / 2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#host-charts .u-legend .u-series:first-child .u-value')]"
        ".every((v) => v.textContent && v.textContent !== '--')"
    )
    panels = _panels(page)
    assert len({panel["legend"][0] for panel in panels.values()}) == 1
    # Units in the legends: % for CPU, bytes/s with a prefix for the network, plain loads.
    assert panels["cpu"]["legend"][1].split(" (")[0].endswith(" %")
    assert all(" MB/s" in value or " kB/s" in value for value in panels["network"]["legend"][1:])

    # One zoom: dragging across the CPU chart narrows every chart to the same time span.
    _drag(page, '.panel[data-chart="cpu"] .u-over', 0.6, 0.9)
    page.locator('#host-charts[data-zoomed="true"]').wait_for(state="attached")
    panels = _panels(page)
    spans = {(panel["xMin"], panel["xMax"]) for panel in panels.values()}
    assert len(spans) == 1
    low, high = (float(value) for value in spans.pop())
    assert panels["cpu"]["start"] < low < high < panels["cpu"]["end"]
    page.get_by_role("button", name="Reset zoom").click()
    page.locator('#host-charts[data-zoomed="false"]').wait_for(state="attached")
    assert all(float(panel["xMin"]) == panel["start"] for panel in _panels(page).values())
    assert page.get_by_role("button", name="Reset zoom").is_hidden()
    # A zoom from another chart, undone by a double-click on a third.
    _drag(page, '.panel[data-chart="network"] .u-over', 0.2, 0.5)
    page.locator('#host-charts[data-zoomed="true"]').wait_for(state="attached")
    assert len({(panel["xMin"], panel["xMax"]) for panel in _panels(page).values()}) == 1
    page.locator('.panel[data-chart="load"] .u-over').dblclick()
    page.locator('#host-charts[data-zoomed="false"]').wait_for(state="attached")
    assert all(float(panel["xMax"]) == panel["end"] for panel in _panels(page).values())

    # Another range: a day, read at its own step; then the host's whole history.
    page.locator("#host-range").get_by_text("Day", exact=True).click()
    day = _host_charts(page, "db-1", "86400")
    assert float(day["step"]) > float(shown["step"])
    page.locator("#host-range").get_by_text("All", exact=True).click()
    history = _host_charts(page, "db-1", "all")
    hosts = requests.get(f"{server_url}/hosts", params={"hash": tokens[""]}, timeout=10).json()["payload"]
    db = next(host for host in hosts if host["host"] == "db-1")
    assert (float(history["start"]), float(history["end"])) == (db["first"], db["last"])
    assert "db-1" in page.title()
    assert problems == []


def _assert_within(page: Page, selector: str, width: int) -> None:
    boxes = [element.bounding_box() for element in page.locator(selector).all()]
    assert boxes, selector
    for box in boxes:
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


@pytest.mark.parametrize("storage_kind", ["file"])
@pytest.mark.parametrize("width", [320, 390])
def test_on_a_phone_the_fleet_and_a_host_page_fit_the_screen(
    server_url: str, browser: Browser, width: int
) -> None:
    _fleet(server_url)
    page = new_dashboard_page(browser, {"width": width, "height": 740})
    sign_in_to_fleet(page, server_url, USER, PASSWD)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    _assert_within(page, ".host-card", width)
    cards = [box for box in (card.bounding_box() for card in page.locator(".host-card").all()) if box]
    assert len({box["x"] for box in cards}) == 1  # one column

    # A tap anywhere on a card opens its host, not only on the name: here on its figures (the name's
    # link stretches over the card, so a click there, where a user's finger lands, is the link's).
    figures = (
        page.locator(".host-card").filter(has=page.get_by_role("link", name="web-1")).locator(".figures")
    )
    box = figures.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _host_charts(page, "web-1", "3600")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    _assert_within(page, "#host-charts .panel", width)
    _assert_within(page, "#host-charts canvas", width)
    _assert_within(page, "#host-range label", width)
    assert all(int(panel["buckets"]) > 0 for panel in _panels(page).values())
