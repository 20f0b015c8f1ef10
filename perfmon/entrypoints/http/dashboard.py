"""The browser dashboard: GET / serves the page, /static/ its scripts, styles and the vendored uPlot.

The page only talks to this server's own API (same origin), so no route here touches a service.
"""

from __future__ import annotations

from importlib import resources as package_files
from pathlib import Path

import falcon

STATIC_PREFIX = "/static"
# Everything the page loads comes from this origin; no inline script or style, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def static_directory() -> Path:
    """The package's static folder on disk (Falcon's static route wants an absolute directory)."""
    return Path(str(package_files.files(__package__).joinpath("static"))).resolve()


class DashboardPage:
    """GET /: the dashboard's HTML, read once from the package and served as is."""

    def __init__(self) -> None:
        self._page = (static_directory() / "index.html").read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        # A new release must reach browsers at once; the page is small.
        resp.cache_control = ["no-cache"]
        resp.data = self._page


class DashboardHeaders:
    """Middleware: browser hardening headers on the page and its static files, not on the JSON API."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if req.path != "/" and not req.path.startswith(STATIC_PREFIX + "/"):
            return
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("X-Content-Type-Options", "nosniff")
        # The page's own URL never holds a session hash; send no referrer anywhere all the same.
        resp.set_header("Referrer-Policy", "no-referrer")


def add_dashboard(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Route GET / to the page and /static/ to the folder of its files."""
    app.add_route("/", DashboardPage())
    app.add_static_route(STATIC_PREFIX, str(static_directory()))
