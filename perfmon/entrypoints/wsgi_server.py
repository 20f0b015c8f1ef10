"""waitress, set up so that even the errors it answers by itself are perfmon's JSON."""

from __future__ import annotations

import json

import waitress
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge


class _JsonErrorTask(ErrorTask):
    """waitress refuses oversized or malformed requests before the app sees them; answer those in JSON."""

    def execute(self) -> None:
        error = self.request.error
        reason = "Request body too large" if isinstance(error, RequestEntityTooLarge) else error.reason
        body = json.dumps({"reason": reason}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


def create_server(
    app: object, *, host: str, port: int, threads: int, max_body_bytes: int
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server that never reads a body past the limit (it answers 413 from the headers)."""
    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=max_body_bytes,
        ident="perfmon",
        # Our clients are on the loopback or behind a proxy; 30 s keeps idle agent connections cheap.
        channel_timeout=30,
        # Keep answers up to 64 MiB in memory: past waitress's default of 1 MiB they go through a
        # temporary file, and a read of 100,000 samples is about 4 MiB of JSON.
        outbuf_overflow=64 * 1024 * 1024,
    )
    server.channel_class = _JsonErrorChannel
    return server
