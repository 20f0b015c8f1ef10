"""The dashboard's page and files: served from the package, hardened, and self-contained."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources

import pytest
from falcon.testing import TestClient

STATIC = resources.files("perfmon.entrypoints.http").joinpath("static")
# Ours, not vendored: the page, its modules, its styles, and the package.json that makes Node read the
# modules as ES modules (their unit tests: `node --test tests/unit/dashboard/*.test.mjs`, run by .ci/run).
OUR_FILES = sorted(entry.name for entry in STATIC.iterdir() if entry.is_file())
MAIN_MODULE = "dashboard.js"
# The modules Node's test runner imports: they must load without a DOM and call no server.
PURE_MODULES = (
    "format.js",
    "hosts.js",
    "messages.js",
    "metrics.js",
    "ranges.js",
    "series.js",
    "spark.js",
    "summary.js",
    "units.js",
)
UPLOT = "vendor/uplot"
_IMPORT = re.compile(r'^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"', flags=re.MULTILINE)


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


def _imports(name: str) -> list[str]:
    """What the module `name` in static/ imports, as written (relative specifiers)."""
    return _IMPORT.findall(STATIC.joinpath(name).read_text())


def _modules_of_the_page() -> set[str]:
    """The main module and every module it imports, directly or not (names in static/)."""
    found: set[str] = set()
    todo = [MAIN_MODULE]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += [specifier.removeprefix("./") for specifier in _imports(name)]
    return found


def test_the_page_runs_uplot_then_its_one_module_script() -> None:
    scripts = _scan_page().scripts
    assert [(script.get("src"), script.get("type")) for script in scripts] == [
        (f"/static/{UPLOT}/uPlot.iife.min.js", None),
        (f"/static/{MAIN_MODULE}", "module"),
    ]
    # Both wait for the parsed page and run in this order: the modules find uPlot's global defined.
    assert "defer" in scripts[0]


def test_every_module_imports_a_sibling_that_exists_and_every_script_of_ours_is_imported() -> None:
    modules = _modules_of_the_page()
    for name in modules:
        for specifier in _imports(name):
            assert re.fullmatch(r"\./[a-z]+\.js", specifier), (name, specifier)
    assert modules == {name for name in OUR_FILES if name.endswith(".js")}
    assert set(PURE_MODULES) < modules


def test_every_module_of_the_page_is_served_as_javascript_so_the_browser_runs_it(client: TestClient) -> None:
    for name in sorted(_modules_of_the_page()):
        result = client.simulate_get(f"/static/{name}")
        assert result.status_code == 200, name
        # Module scripts must carry a JavaScript type; nosniff makes that strict for classic ones too.
        assert result.headers["content-type"].split(";")[0] == "text/javascript", name


@pytest.mark.parametrize("name", PURE_MODULES)
def test_the_pure_modules_import_only_pure_modules_and_touch_no_dom_or_network(name: str) -> None:
    assert {specifier.removeprefix("./") for specifier in _imports(name)} <= set(PURE_MODULES)
    code = re.sub(r"//.*", "", STATIC.joinpath(name).read_text())
    assert re.findall(r"\b(?:document|window|fetch|sessionStorage|localStorage|uPlot)\b", code) == []


def test_node_reads_the_static_folder_as_es_modules() -> None:
    assert json.loads(STATIC.joinpath("package.json").read_text())["type"] == "module"
