"""The dashboard in a real browser: headless Chromium against a real server holding real samples."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.browser import (
    CHROMIUM,
    chart_shown,
    choose_range,
    cpu_curve,
    launch_chromium,
    new_dashboard_page,
    register_with_samples,
    sign_in,
)
from tests.postgres_server import give_up

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

USER, PASSWD = "dashboard-user", "correct horse battery staple"
SAMPLES = 600


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright; skips off CI when either is missing, fails on CI."""
    if not CHROMIUM.exists():
        give_up(f"{CHROMIUM} is missing: apt-get install --no-install-recommends chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        give_up("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


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
    # One bucket per pixel of the plot (to the millisecond), never under a second.
    assert abs(float(hour["step"]) - max(1.0, 3600 / hour["plotWidth"])) <= 0.0005 + 1e-9
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

    csv = requests.get(f"{server_url}{five_minutes['csv']}", timeout=10)
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.splitlines()) - 1 == sum(b["count"] for b in five_minutes_buckets)

    choose_range(page, "Last hour")
    chart_shown(page, "3600", token)
    page.screenshot(path=tmp_path / "dashboard.png")
    assert _png_size(tmp_path / "dashboard.png") == (1280, 800)

    own_host = urlsplit(server_url).netloc
    elsewhere = [url for url in requested if urlsplit(url).netloc != own_host and not url.startswith("data:")]
    assert elsewhere == []
    assert hour["keptHash"] not in page.url and urlsplit(page.url).query == ""
    assert problems == []
