"""Regenerate docs/dashboard.png: the dashboard at 1280x800 showing an hour of CPU samples.

Starts a perfmon server (file storage in a temporary folder), registers a user, posts an hour of
generated samples at 1 Hz ending now (the same seeded curve on every run; only the times differ),
signs in through the page in headless Chromium (/usr/bin/chromium, driven by Playwright) and saves
the screenshot. Needs the test extras: pip install -e '.[test]'. Run from anywhere:

    python docs/make_screenshot.py [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ holds the server and browser helpers this script shares

from playwright.sync_api import sync_playwright  # noqa: E402

from perfmon.config import Settings  # noqa: E402
from tests.browser import (  # noqa: E402
    chart_shown,
    cpu_curve,
    launch_chromium,
    new_dashboard_page,
    register_with_samples,
    sign_in,
)
from tests.servers import threaded_server  # noqa: E402

USER, PASSWD = "alice", "screenshot only"
AN_HOUR = 3600


def make_screenshot(out: Path) -> None:
    """Serve, fill, sign in, hover the chart so its legend shows values, and save the page."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(storage="file", data_dir=Path(data_dir))
        with threaded_server(settings) as url, sync_playwright() as playwright:
            token = register_with_samples(url, USER, PASSWD, cpu_curve(time.time(), AN_HOUR))
            browser = launch_chromium(playwright)
            try:
                page = new_dashboard_page(browser)
                sign_in(page, url, USER, PASSWD)
                chart_shown(page, "3600", token)
                page.locator("#session").blur()  # signing in focuses it; no focus ring in the picture
                over = page.locator("#chart .u-over").bounding_box()
                assert over is not None
                page.mouse.move(over["x"] + over["width"] * 0.62, over["y"] + over["height"] / 2)
                page.screenshot(path=out)
            finally:
                browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    make_screenshot(parser.parse_args().out)


if __name__ == "__main__":
    main()
