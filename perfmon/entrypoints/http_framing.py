"""How perfmon reads a request off the wire: waitress's parser, stricter where framing is ambiguous, and
the answers waitress gives by itself (before the app sees a request) in perfmon's JSON."""

from __future__ import annotations

import json
import time
from typing import Any

from waitress.parser import HTTPRequestParser, ParsingError
from waitress.task import ErrorTask
from waitress.utilities import BadRequest, RequestEntityTooLarge


class StrictRequestParser(HTTPRequestParser):
    """One request as it arrives, timed from its first byte, with ambiguous framing refused."""

    def __init__(self, adj: Any) -> None:
        super().__init__(adj)
        # waitress makes a parser when a request's first byte arrives: the request deadline counts
        # from here (epoch seconds, as waitress's own channel.last_activity).
        self.started_at = time.time()

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        if self.error is not None:
            # A request refused from its headers (413 for a Content-Length over the limit) is answered
            # now: waitress would first send "100 Continue" and read the body it is about to refuse.
            self.expect_continue = False
        return int(consumed)

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        # RFC 9112 §6.1: a request with both is an attempt to smuggle a second request past a proxy
        # that reads the other header. waitress would go by Transfer-Encoding; refuse it and close.
        # (HTTP/1.1's Transfer-Encoding is already popped from the headers, but sets `chunked`.)
        if "CONTENT_LENGTH" in self.headers and (self.chunked or "TRANSFER_ENCODING" in self.headers):
            raise ParsingError("Content-Length and Transfer-Encoding must not be sent together")


class JsonErrorTask(ErrorTask):
    """waitress refuses oversized or malformed requests before the app sees them; answer those in JSON
    (PROTOCOL.md: every error is {"reason": ...}, a 400 with a detail) and close the connection."""

    def execute(self) -> None:
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        body = json.dumps(_error_body(error)).encode()
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


def _error_body(error: Any) -> dict[str, str]:
    if isinstance(error, RequestEntityTooLarge):
        return {"reason": "Request body too large"}
    if type(error) is BadRequest:  # its subclasses (413, 431) have reasons of their own
        return {"reason": "Bad arguments", "detail": str(error.body)}
    return {"reason": error.reason}
