"""The Falcon application: routes and error handling, built from services passed in."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from perfmon.config import DEFAULT_MAX_BODY_BYTES
from perfmon.domain.access import Access
from perfmon.domain.accounts import Accounts
from perfmon.domain.history import History
from perfmon.entrypoints.http import access_resources, host_resources, resources
from perfmon.entrypoints.http.client_address import ClientAddress
from perfmon.entrypoints.http.dashboard import DashboardHeaders, add_dashboard
from perfmon.entrypoints.http.errors import register_error_handlers
from perfmon.entrypoints.http.media import use_fast_json


def create_app(
    accounts: Accounts,
    history: History,
    access: Access,
    *,
    storage_name: str,
    check_storage: Callable[[], None],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    client_address: ClientAddress | None = None,
) -> falcon.App[falcon.Request, falcon.Response]:
    """A WSGI app serving the perfmon protocol over the given services."""
    app = falcon.App(middleware=[DashboardHeaders()])
    # Trailing slashes and odd casing are not part of the protocol; keep routing exact.
    app.req_options.strip_url_path_trailing_slash = False
    use_fast_json(app)
    app.add_route("/register", resources.Registration(accounts, max_body_bytes))
    # Without trusted proxies the client is the peer: X-Forwarded-For is anyone's to write.
    app.add_route("/login", resources.Login(accounts, max_body_bytes, client_address or ClientAddress()))
    app.add_route("/cpu", resources.CpuSamples(history, max_body_bytes))
    app.add_route("/sessions", resources.Sessions(history))
    app.add_route("/samples", host_resources.MetricSamples(history, max_body_bytes))
    app.add_route("/hosts", host_resources.Hosts(history))
    app.add_route("/logout", access_resources.Logout(access, max_body_bytes))
    app.add_route("/keys", access_resources.Keys(access, max_body_bytes))
    app.add_route("/keys/{key_id}", access_resources.Key(access))
    app.add_route("/healthz", resources.Health())
    app.add_route("/readyz", resources.Readiness(storage_name, check_storage))
    app.add_route("/openapi.json", resources.ApiDescription())
    add_dashboard(app)
    register_error_handlers(app)
    return app
