"""The HTTP app over the container's services: how `perfmon serve` (and the tests' servers) assemble it."""

from __future__ import annotations

import falcon

from perfmon.bootstrap import Container
from perfmon.config import Settings
from perfmon.entrypoints.http.app import create_app
from perfmon.entrypoints.http.client_address import ClientAddress


def build_http_app(settings: Settings, container: Container) -> falcon.App[falcon.Request, falcon.Response]:
    """The WSGI app serving the protocol over the container's services, configured from the settings."""
    return create_app(
        container.accounts(),
        container.history(),
        container.access(),
        storage_name=settings.storage,
        check_storage=container.check_storage(),
        max_body_bytes=settings.max_body_bytes,
        client_address=ClientAddress(settings.trusted_proxy_networks()),
    )
