"""Driving the dashboard in headless Chromium (Playwright), on real-looking CPU data.

Shared by tests/integration/test_dashboard_browser.py and docs/make_screenshot.py.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:  # Playwright itself is imported by the callers, which skip when it is missing.
    from playwright.sync_api import Browser, Locator, Page, Playwright

# Debian's package; `playwright install` downloads browsers, which CI must not depend on.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Chromium from the system, not a Playwright download."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def new_dashboard_page(browser: Browser, viewport: dict[str, int] | None = None) -> Page:
    """A page (1280x800 unless told), fixed locale and time zone: labels look the same everywhere."""
    context = browser.new_context(
        viewport=viewport or VIEWPORT, locale="en-GB", timezone_id="UTC", device_scale_factor=1
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def cpu_curve(end: float, count: int, seed: int = 7) -> list[dict[str, float]]:
    """`count` samples at 1 Hz ending at `end`: a slow wave, a faster ripple and noise, from a fixed seed."""
    noise = random.Random(seed)
    samples = []
    for i in range(count):
        phase = i / count
        cpu = 42 + 24 * math.sin(2 * math.pi * phase * 1.5) + 8 * math.sin(2 * math.pi * phase * 11)
        cpu += noise.gauss(0, 4) + (25 if noise.random() < 0.01 else 0)
        samples.append({"cpu": round(min(100.0, max(0.0, cpu)), 2), "time": end - (count - 1 - i)})
    return samples


def register_with_samples(base_url: str, user: str, passwd: str, samples: list[dict[str, float]]) -> str:
    """Register the user over HTTP and post the samples into its first session; that session's hash."""
    answer = requests.post(f"{base_url}/register", json={"user": user, "passwd": passwd}, timeout=10)
    answer.raise_for_status()
    token = answer.json()["hash"]
    stored = requests.post(f"{base_url}/cpu", json={"hash": token, "samples": samples}, timeout=30)
    stored.raise_for_status()
    return token


def _submit_sign_in(page: Page, base_url: str, user: str, passwd: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(passwd)
    page.get_by_role("button", name="Sign in").click()


def sign_in(page: Page, base_url: str, user: str, passwd: str) -> None:
    """Open the dashboard and sign in through its form, as a user without hosts (the sessions view)."""
    _submit_sign_in(page, base_url, user, passwd)
    page.locator("#dashboard").wait_for(state="visible")


def sign_in_to_fleet(page: Page, base_url: str, user: str, passwd: str) -> None:
    """Sign in as sign_in does, then wait until the fleet has drawn its hosts (where a user opens)."""
    _submit_sign_in(page, base_url, user, passwd)
    page.locator('#hosts[data-state="ready"]').wait_for(state="attached")


def choose_range(page: Page, label: str) -> None:
    """Click a range button by its visible text ("Last 5 min", "Last hour", ...)."""
    page.get_by_text(label, exact=True).click()


# Read in one task of the page, so that a live refresh cannot slip between two of the readings.
_SNAPSHOT = """() => ({
    ...document.getElementById("chart").dataset,
    plotWidth: document.querySelector("#chart .u-over").clientWidth,
    keptHash: sessionStorage.getItem("perfmon.hash"),
    figures: Object.fromEntries(
        [...document.querySelectorAll(".stats dd")].map((figure) => [figure.id, figure.textContent])
    ),
})"""


def chart_shown(page: Page, range_value: str, session: str) -> dict[str, Any]:
    """Wait until the chart shows that range of that session; then what it shows and the figures beside it."""
    selector = f'#chart[data-range="{range_value}"][data-session="{session}"][data-points]'
    page.wait_for_selector(selector, state="attached")
    return page.evaluate(_SNAPSHOT)


def save_csv(page: Page, button: Locator) -> tuple[str, str, str]:
    """Click a CSV button and wait for the file the page saves: its text, the name it is saved as, and
    the URL of the read the page made for it (a fetch, holding the session; no page is opened at it)."""
    with (
        page.expect_request(lambda request: "format=csv" in request.url) as read,
        page.expect_download() as saved,
    ):
        button.click()
    download = saved.value
    return Path(download.path()).read_text(encoding="utf-8"), download.suggested_filename, read.value.url
