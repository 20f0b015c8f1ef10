"""Regenerate docs/fleet.png, docs/host.png and docs/keys.png: the dashboard's fleet page and a host
page, with real agent data, and the keys page.

Starts a perfmon server (file storage in a temporary folder) and two `perfmon agent`s on this machine
(`--host web-1` and `--host build-box`, so the fleet has two cards; both measure this machine), lets
them post for `--seconds` (default 120) while this script makes some CPU and disk work so the charts
move, stops `build-box` 40 s before the end (its card shows it silent), then signs in through the page
in headless Chromium (/usr/bin/chromium, driven by Playwright) and saves both pages at 1280 px wide;
then the keys page, with a read key a wall display used and a new ingest key shown once.
Needs the test extras: pip install -e '.[test]'. Run from anywhere:

    python docs/screenshots.py [--seconds 120] [--out-dir docs]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ holds the server and browser helpers this script shares

import requests  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from perfmon.config import Settings  # noqa: E402
from tests.browser import launch_chromium, new_dashboard_page  # noqa: E402
from tests.servers import threaded_server  # noqa: E402

USER, PASSWD = "alice", "screenshot only"
SILENT_BEFORE_END = 40  # seconds: more than the page's 30 s rule, so build-box shows silent


def start_agent(url: str, host: str, spool: Path, disk_path: str) -> subprocess.Popen[bytes]:
    """`perfmon agent` for `host` as USER (registered already); the password in its environment."""
    command = [sys.executable, "-m", "perfmon", "agent", "--server", url, "--user", USER]
    command += ["--host", host, "--disk-path", disk_path, "--spool-dir", str(spool), "--log-level", "WARNING"]
    return subprocess.Popen(command, env={**os.environ, "PERFMON_PASSWORD": PASSWD}, cwd=ROOT)


def stop(agent: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the agent sends what it holds and exits), then wait for it."""
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=15)


def make_work(seconds: float, scratch: Path) -> None:
    """Three bursts of two busy processes and a disk write each (64, 128, 192 MiB), over the run."""
    start = time.monotonic()
    for burst in range(3):
        time.sleep(seconds / 5)
        spin = f"import time\nend = time.monotonic() + {seconds / 10}\nwhile time.monotonic() < end: pass"
        workers = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
        data = os.urandom(1 << 20)
        with open(scratch / f"write-{burst}", "wb") as file:
            for _ in range(64 * (burst + 1)):  # 64, 128, 192 MiB
                file.write(data)
            file.flush()
            os.fsync(file.fileno())
        for worker in workers:
            worker.wait()
        if time.monotonic() - start > seconds:
            break


def make_screenshots(seconds: float, out_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as data_dir, tempfile.TemporaryDirectory() as scratch:
        settings = Settings(storage="file", data_dir=Path(data_dir))
        with threaded_server(settings) as url:
            registered = requests.post(f"{url}/register", json={"user": USER, "passwd": PASSWD}, timeout=10)
            registered.raise_for_status()
            # A read key that a wall display signed in with (its "last used" is set).
            wall = requests.post(
                f"{url}/keys",
                json={"hash": registered.json()["hash"], "scope": "read", "name": "wall display"},
                timeout=10,
            )
            wall.raise_for_status()
            requests.post(f"{url}/login", json={"key": wall.json()["key"]}, timeout=10).raise_for_status()
            web = start_agent(url, "web-1", Path(scratch) / "spool-web", "/")
            build = start_agent(url, "build-box", Path(scratch) / "spool-build", scratch)
            work = threading.Thread(target=make_work, args=(seconds - SILENT_BEFORE_END, Path(scratch)))
            work.start()
            try:
                time.sleep(max(1.0, seconds - SILENT_BEFORE_END))
                stop(build)
                time.sleep(SILENT_BEFORE_END)
                work.join()
                shoot(url, out_dir)
            finally:
                stop(build)
                stop(web)


def shoot(url: str, out_dir: Path) -> None:
    """Sign in, save the fleet, open web-1 over the last 5 minutes with the cursor on its charts."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = new_dashboard_page(browser, {"width": 1280, "height": 800})
            page.goto(f"{url}/")
            page.get_by_label("User", exact=True).fill(USER)
            page.get_by_label("Password", exact=True).fill(PASSWD)
            page.get_by_role("button", name="Sign in").click()
            page.locator('.host-card[data-host="build-box"][data-state="silent"]').wait_for(state="attached")
            page.screenshot(path=out_dir / "fleet.png")

            page.get_by_role("link", name="web-1").click()
            page.locator("#host-range").get_by_text("5 min", exact=True).click()
            page.wait_for_selector('#host-charts[data-state="ready"][data-range="300"]', state="attached")
            over = page.locator('.panel[data-chart="cpu"] .u-over').bounding_box()
            assert over is not None
            page.mouse.move(over["x"] + over["width"] * 0.7, over["y"] + over["height"] / 2)
            page.screenshot(path=out_dir / "host.png", full_page=True)

            # The keys page, just after making an ingest key for another machine: shown once.
            page.get_by_role("link", name="Keys").click()
            page.get_by_label("Name").fill("db-2")
            page.get_by_role("button", name="Make key").click()
            page.locator("#new-key:not([hidden])").wait_for()
            page.locator('#key-list[data-state="ready"][data-keys="2"]').wait_for(state="attached")
            page.screenshot(path=out_dir / "keys.png", full_page=True)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="how long the agents post (default 120)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    arguments = parser.parse_args()
    if arguments.seconds <= SILENT_BEFORE_END + 10:
        parser.error(f"--seconds must be more than {SILENT_BEFORE_END + 10}")
    make_screenshots(arguments.seconds, arguments.out_dir)


if __name__ == "__main__":
    main()
