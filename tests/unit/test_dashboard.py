"""The dashboard's page and files: served from the package, hardened, and self-contained."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from falcon.testing import TestClient

from tests.postgres_server import give_up

STATIC = resources.files("perfmon.entrypoints.http").joinpath("static")
OUR_FILES = ("index.html", "dashboard.js", "series.js", "dashboard.css")
NODE_TESTS = Path(__file__).with_name("dashboard_series.test.js")
UPLOT = "vendor/uplot"


class _PageScan(HTMLParser):
    """Collects what would make the page run inline code or load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.links: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [f"{tag} {name}" for name, _ in attrs if name.startswith("on") or name == "style"]
        self.links += [value or "" for name, value in attrs if name in ("src", "href", "action")]
        if tag == "style":
            self.inline.append("style element")
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


def _scan_page() -> _PageScan:
    scan = _PageScan()
    scan.feed(STATIC.joinpath("index.html").read_text())
    return scan


def test_get_root_serves_the_dashboard_page_with_a_strict_content_security_policy(client: TestClient) -> None:
    result = client.simulate_get("/")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/html")
    assert result.content == STATIC.joinpath("index.html").read_bytes()
    policy = result.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert result.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/dashboard.js", "javascript"),
        ("/static/series.js", "javascript"),
        ("/static/dashboard.css", "text/css"),
        (f"/static/{UPLOT}/uPlot.iife.min.js", "javascript"),
        (f"/static/{UPLOT}/uPlot.min.css", "text/css"),
    ],
)
def test_the_page_files_are_served_with_their_type_and_nosniff(
    client: TestClient, path: str, content_type: str
) -> None:
    result = client.simulate_get(path)
    assert result.status_code == 200
    assert content_type in result.headers["content-type"]
    assert result.headers["x-content-type-options"] == "nosniff"


def test_the_api_answers_carry_none_of_the_page_headers(client: TestClient) -> None:
    result = client.simulate_get("/healthz")
    assert "content-security-policy" not in result.headers
    assert "x-content-type-options" not in result.headers


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/../app.py", "/static/%2e%2e/app.py", "/index.html"]
)
def test_files_outside_the_static_folder_or_missing_are_a_json_404(client: TestClient, path: str) -> None:
    result = client.simulate_get(path)
    assert result.status_code == 404
    assert "reason" in result.json


def test_the_page_runs_no_inline_code_and_loads_only_same_origin_files() -> None:
    scan = _scan_page()
    assert scan.inline == []
    assert scan.scripts and all((script.get("src") or "").startswith("/static/") for script in scan.scripts)
    assert [link for link in scan.links if not link.startswith(("/", "data:", "#"))] == []


@pytest.mark.parametrize("name", OUR_FILES)
def test_our_files_name_no_other_host(name: str) -> None:
    text = STATIC.joinpath(name).read_text()
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.IGNORECASE) == []


def test_the_vendored_uplot_is_the_version_its_note_names() -> None:
    note = STATIC.joinpath(UPLOT, "VERSION").read_text()
    banner = STATIC.joinpath(UPLOT, "uPlot.iife.min.js").read_text()[:200]
    assert re.search(r"^version:\s+1\.6\.32$", note, flags=re.MULTILINE)
    assert "(v1.6.32)" in banner
    assert "MIT License" in STATIC.joinpath(UPLOT, "LICENSE").read_text()


def test_the_chart_series_break_where_buckets_are_missing_under_node_test() -> None:
    """tests/unit/dashboard_series.test.js, run by Node's own test runner (no npm package needed)."""
    node = shutil.which("node")
    if node is None:
        give_up("node is missing: apt-get install --no-install-recommends nodejs")
    result = subprocess.run(  # noqa: S603 - our own test file, no shell
        [node, "--test", str(NODE_TESTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# pass [1-9]", result.stdout, flags=re.MULTILINE), result.stdout


def test_the_page_loads_the_series_before_the_script_that_draws_them() -> None:
    sources = [script.get("src") for script in _scan_page().scripts]
    assert sources.index("/static/series.js") < sources.index("/static/dashboard.js")
