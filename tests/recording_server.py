"""A stand-in for perfmon in the bench's tests: an HTTP/1.1 keep-alive server on a free port of
127.0.0.1 that keeps each POST's body and answers it as perfmon answers a single sample."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def recording_server(delay: float = 0.0) -> Iterator[tuple[str, list[tuple[str, int, bytes]]]]:
    """Serve until the block ends; yield its URL and the requests it has had, each (path, client
    port, body), in arrival order. Each answer, `{"stored": 1}`, comes `delay` seconds after its body."""
    requests: list[tuple[str, int, bytes]] = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk's and the fleet's connections are

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append((self.path, self.client_address[1], body))
            time.sleep(delay)
            answer = b'{"stored": 1}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
