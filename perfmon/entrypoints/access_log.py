"""The access log an operator can switch on: one line per request, with no secret in it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

logger = logging.getLogger("perfmon.access")

# Session hashes and access keys travel in query strings and bodies, which are never logged. A client may
# still put one in the path by mistake (a 404, or a key where its id belongs in DELETE /keys/{id}):
# anything shaped like a UUID, a run of hex longer than a key's id (a hash without dashes, a key's
# digest), or from pmk_ on (a key, PROTOCOL.md part 4, whole or cut) is masked. A key's id (16 hex) is
# public and kept: an operator reading the log of DELETE /keys/{id} learns which key was revoked.
_SECRET_SHAPED = re.compile(r"pmk_[A-Za-z0-9_-]*|[0-9a-fA-F-]{17,}")
# A decoded path may hold a newline (%0A), which would forge a second log line.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_PATH_CHARACTERS = 200

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def with_access_log(app: WsgiApp) -> WsgiApp:
    """The app, logging `METHOD /path STATUS DURATIONms` at INFO on "perfmon.access" per request.

    The duration (milliseconds) runs from the call until the answer is ready, or for a streamed answer
    (CSV) until its last chunk was handed to the server."""

    def logged(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = []

        def remember_status(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[:] = [status_line.split(" ", 1)[0]]
            return start_response(status_line, headers, exc_info)

        def log_line() -> None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            method = _printable(str(environ.get("REQUEST_METHOD", "-")))[:16]
            path = loggable_path(str(environ.get("PATH_INFO", "")))
            logger.info("%s %s %s %.1fms", method, path, status[0] if status else "-", elapsed_ms)

        try:
            body = app(environ, remember_status)
        except BaseException:
            log_line()
            raise
        if _is_ready(body, environ.get("wsgi.file_wrapper")):
            # Ready as it is; wrapping would hide its length or its file from waitress.
            log_line()
            return body
        return _LoggedBody(body, log_line)

    return logged


def _is_ready(body: Iterable[bytes], file_wrapper: Any) -> bool:
    is_file = isinstance(file_wrapper, type) and isinstance(body, file_wrapper)
    return is_file or isinstance(body, list | tuple)


def loggable_path(path: str) -> str:
    """The request path fit for a log line: secret-shaped runs masked, control characters escaped,
    long paths cut. PATH_INFO never holds the query string."""
    masked = _SECRET_SHAPED.sub("<masked>", path or "/")
    shown = _printable(masked)
    return shown if len(shown) <= MAX_PATH_CHARACTERS else shown[:MAX_PATH_CHARACTERS] + "..."


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class _LoggedBody:
    """The app's body, logging the request when the server closes it (PEP 3333 calls close())."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
