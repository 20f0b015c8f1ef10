"""The dashboard in a real browser: headless Chromium against a real server holding real samples."""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.browser import (
    chart_shown,
    choose_range,
    cpu_curve,
    new_dashboard_page,
    register_with_samples,
    save_csv,
    sign_in,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

USER, PASSWD = "dashboard-user", "correct horse battery staple"
SAMPLES = 600


def _buckets_for(server_url: str, shown: dict[str, Any]) -> list[dict[str, Any]]:
    """What the API answers for the query the page reports it made (range, session and step)."""
    answer = requests.get(
        f"{server_url}/cpu",
        params={
            "hash": shown["keptHash"],
            "session": shown["session"],
            "start_time": shown["start"],
            "cur_time": shown["end"],
            "step": shown["step"],
        },
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["payload"]


# static/ranges.js's NICE_STEPS below a day (seconds): an hour on any plot wider than 4 px needs no more.
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _round_step(seconds_per_pixel: float) -> float:
    """The dashboard's step for that many seconds per pixel: the first of NICE_STEPS that covers it."""
    return float(next(step for step in NICE_STEPS if step >= seconds_per_pixel))


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def _figures(buckets: list[dict[str, Any]]) -> dict[str, float]:
    """min of mins, count-weighted mean, max of maxes, by the element that shows each."""
    count = sum(b["count"] for b in buckets)
    return {
        "stat-min": min(b["min"] for b in buckets),
        "stat-mean": sum(b["cpu"] * b["count"] for b in buckets) / count,
        "stat-max": max(b["max"] for b in buckets),
    }


def _assert_figures_match(shown: dict[str, Any], buckets: list[dict[str, Any]]) -> None:
    for element, expected in _figures(buckets).items():
        number, unit = shown["figures"][element].split()
        # Shown to one decimal; JavaScript rounds halves up where Python's format rounds them to even.
        assert unit == "%" and abs(float(number) - expected) <= 0.05 + 1e-9, (element, number, expected)


@pytest.mark.parametrize("storage_kind", ["file"])
def test_dashboard_charts_a_session_downsampled_by_the_server_and_follows_the_range(
    server_url: str, browser: Browser, tmp_path: Path
) -> None:
    token = register_with_samples(server_url, USER, PASSWD, cpu_curve(time.time(), SAMPLES))
    page = new_dashboard_page(browser)
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{server_url}/")
    page.get_by_label("User", exact=True).fill(USER)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="wrong user or password").wait_for()
    problems.clear()  # Chromium logs that 401 to the console; it was the point of this step

    sign_in(page, server_url, USER, PASSWD)
    page.get_by_label("Session", exact=True).select_option(token)

    hour = chart_shown(page, "3600", token)
    hour_buckets = _buckets_for(server_url, hour)
    # About one bucket per pixel of the plot, rounded up to the next round step (static/ranges.js).
    assert float(hour["step"]) == _round_step(3600 / hour["plotWidth"])
    assert int(hour["points"]) == len(hour_buckets) > 0
    assert sum(b["count"] for b in hour_buckets) == SAMPLES
    _assert_figures_match(hour, hour_buckets)

    choose_range(page, "Last 5 min")
    five_minutes = chart_shown(page, "300", token)
    five_minutes_buckets = _buckets_for(server_url, five_minutes)
    assert float(five_minutes["step"]) == 1.0
    assert int(five_minutes["points"]) == len(five_minutes_buckets)
    assert 250 < len(five_minutes_buckets) <= 301
    assert five_minutes["points"] != hour["points"]
    _assert_figures_match(five_minutes, five_minutes_buckets)

    # The CSV the page saves: every sample of the span it read (a refresh may have moved the span on
    # since the figures were read: the read's own span counts).
    csv, name, read = save_csv(page, page.get_by_role("button", name="Download CSV"))
    query = dict(parse_qsl(urlsplit(read).query))
    assert name == f"perfmon-{token[:8]}.csv"
    assert query["session"] == token and query["hash"] == hour["keptHash"]
    span = {"start": query["start_time"], "end": query["cur_time"], "session": token, "step": "1"}
    expected = sum(b["count"] for b in _buckets_for(server_url, {**span, "keptHash": query["hash"]}))
    assert csv.splitlines()[0] == "cpu,time" and len(csv.splitlines()) - 1 == expected > 250

    choose_range(page, "Last hour")
    chart_shown(page, "3600", token)
    page.screenshot(path=tmp_path / "dashboard.png")
    assert _png_size(tmp_path / "dashboard.png") == (1280, 800)

    own_host = urlsplit(server_url).netloc
    elsewhere = [url for url in requested if urlsplit(url).netloc != own_host and not url.startswith("data:")]
    assert elsewhere == []
    assert hour["keptHash"] not in page.url and urlsplit(page.url).query == ""
    assert problems == []


def _assert_no_sideways_scrolling(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide on a {width} px screen"


def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    boxes = [box for box in (element.bounding_box() for element in page.locator(selector).all()) if box]
    assert boxes, selector
    return boxes


@pytest.mark.parametrize("storage_kind", ["file"])
@pytest.mark.parametrize("width", [320, 390])
def test_on_a_phone_nothing_scrolls_sideways_and_the_cards_wrap(
    server_url: str, browser: Browser, width: int
) -> None:
    token = register_with_samples(server_url, USER, PASSWD, cpu_curve(time.time(), 120))
    page = new_dashboard_page(browser, {"width": width, "height": 740})

    page.goto(f"{server_url}/")
    page.locator("#login-form").wait_for()
    _assert_no_sideways_scrolling(page, width)
    login, by_hash = _boxes(page, "#sign-in .card")
    assert by_hash["y"] >= login["y"] + login["height"]  # one above the other

    sign_in(page, server_url, USER, PASSWD)
    chart_shown(page, "3600", token)
    _assert_no_sideways_scrolling(page, width)
    figures = _boxes(page, ".stats > div")
    assert len({box["y"] for box in figures}) > 1  # on more than one row
    for box in [*figures, *_boxes(page, "#session"), *_boxes(page, "#range label"), *_boxes(page, "#chart")]:
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box


# How many pixels of the plot's column at each time are inked blue (the lines and the band between them);
# the grid is grey and the rest of the canvas transparent.
_BLUE_INK_AT = """([start, end, times]) => {
    const over = document.querySelector("#chart .u-over").getBoundingClientRect();
    const canvas = document.querySelector("#chart canvas");
    const box = canvas.getBoundingClientRect();
    const scale = canvas.width / box.width;
    const context = canvas.getContext("2d");
    const top = Math.round((over.top - box.top) * scale);
    const height = Math.round(over.height * scale);
    return times.map((time) => {
        const x = Math.round((over.left - box.left + ((time - start) / (end - start)) * over.width) * scale);
        const pixels = context.getImageData(x, top, 1, height).data;
        let inked = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3] > 0 && pixels[i + 2] - pixels[i] > 40) inked++;
        }
        return inked;
    });
}"""


@pytest.mark.parametrize("storage_kind", ["file"])
def test_the_chart_draws_nothing_across_twenty_minutes_without_samples(
    server_url: str, browser: Browser
) -> None:
    now = time.time()
    # 10 minutes of samples, 20 minutes of none, then the last 20 minutes.
    samples = cpu_curve(now - 2400, 600) + cpu_curve(now, 1200, seed=3)
    token = register_with_samples(server_url, USER, PASSWD, samples)
    page = new_dashboard_page(browser)
    sign_in(page, server_url, USER, PASSWD)

    shown = chart_shown(page, "3600", token)
    in_gap, in_data = page.evaluate(
        _BLUE_INK_AT, [float(shown["start"]), float(shown["end"]), [now - 1800, now - 600]]
    )

    assert in_data > 0  # the method sees the line where there is one
    assert in_gap == 0
    assert shown.get("gaps") == "1"


# Every change of text inside a live region, in order: what a screen reader would be told.
_WATCH_LIVE_REGIONS = """() => {
    window.announced = [];
    const live = '[aria-live], [role="status"], [role="alert"], [role="log"]';
    new MutationObserver((records) => {
        for (const record of records) {
            const target = record.target;
            const node = target.nodeType === Node.ELEMENT_NODE ? target : target.parentElement;
            const region = node && node.closest(live);
            if (region && region.textContent) window.announced.push(region.textContent);
        }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def _refresh_now(page: Page, width: int) -> None:
    """A refresh without waiting 5 s: the page reloads its data when the window is resized."""
    page.set_viewport_size({"width": width, "height": 800})


@pytest.mark.parametrize("storage_kind", ["file"])
def test_screen_readers_hear_changes_of_state_and_errors_not_every_refresh(
    server_url: str, browser: Browser
) -> None:
    token = register_with_samples(server_url, USER, PASSWD, cpu_curve(time.time(), 120))
    page = new_dashboard_page(browser)
    sign_in(page, server_url, USER, PASSWD)
    chart_shown(page, "3600", token)
    page.evaluate(_WATCH_LIVE_REGIONS)

    # Two refreshes on the page's own 5 s timer (each reads /cpu, then draws): nothing to announce.
    for _ in range(2):
        with page.expect_response(lambda answer: "/cpu?" in answer.url, timeout=12_000):
            pass
        page.locator('#chart[data-state="ready"]').wait_for(state="attached")
    assert page.evaluate("window.announced") == []

    unavailable = {"status": 503, "json": {"reason": "Storage unavailable, retry later"}}
    page.route("**/cpu?*", lambda route: route.fulfill(**unavailable, headers={"Retry-After": "1"}))
    _refresh_now(page, 1200)
    page.get_by_role("status").filter(has_text="storage unavailable, retrying").wait_for()
    page.unroute("**/cpu?*")
    _refresh_now(page, 1280)
    page.get_by_role("status").filter(has_text="data is current again").wait_for()

    assert page.evaluate("window.announced") == ["storage unavailable, retrying", "data is current again"]


@pytest.mark.parametrize("storage_kind", ["file"])
def test_the_session_picker_shows_no_sample_count_to_lag_behind_the_figures(
    server_url: str, browser: Browser
) -> None:
    now = time.time()
    token = register_with_samples(server_url, USER, PASSWD, cpu_curve(now - 5, 100))
    page = new_dashboard_page(browser)
    sign_in(page, server_url, USER, PASSWD)
    chart_shown(page, "3600", token)
    page.locator("#stat-samples").filter(has_text="100").wait_for()

    more = [{"cpu": 5.0, "time": now - 4 + n} for n in range(5)]
    requests.post(f"{server_url}/cpu", json={"hash": token, "samples": more}, timeout=10).raise_for_status()
    _refresh_now(page, 1200)
    page.locator("#stat-samples").filter(has_text="105").wait_for()

    label = page.locator("#session option:checked").text_content() or ""
    assert token[:8] in label
    assert not re.search(r"\d+ samples?", label), label
