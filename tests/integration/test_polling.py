"""The server's loop asks only the connections that changed (perfmon/entrypoints/polling.py). With its
periodic look at every connection switched off, every answer must still arrive: then it is the worker
threads' notes, and the loop's own events, that deliver them, among many idle keep-alive connections."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import falcon
import pytest

from perfmon.entrypoints import polling
from perfmon.entrypoints.wsgi_server import FleetServer, create_server

BIG = 3_000_000  # bytes: past waitress's send_bytes, so the worker thread flushes and wakes the loop itself


class Answers:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The answer comes after the loop has gone back to waiting: only a note can wake it for this one.
        time.sleep(float(req.get_param("sleep", default="0")))
        size = int(req.get_param("size", default="2"))
        resp.content_type = "text/plain"
        resp.data = b"x" * size


@pytest.fixture
def server_without_full_scans() -> Iterator[tuple[FleetServer, int]]:
    app = falcon.App()
    app.add_route("/answer", Answers())
    server = create_server(app, host="127.0.0.1", port=0, threads=4, max_body_bytes=1024)
    assert isinstance(server, FleetServer)
    watcher = polling.Watcher(server._map, full_scan_seconds=1e9)
    running = True

    def serve() -> None:
        while running and server._map:
            watcher.poll_once(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server, server.effective_port
    finally:
        running = False
        thread.join(timeout=5)
        server.task_dispatcher.shutdown()
        with contextlib.suppress(OSError):
            server.close()


def _get(connection: socket.socket, query: str) -> bytes:
    """One keep-alive GET on the connection; the answer's body."""
    connection.sendall(f"GET /answer?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection"
        head += chunk
    header, _, body = head.partition(b"\r\n\r\n")
    assert header.startswith(b"HTTP/1.1 200"), header
    length = int(
        next(line for line in header.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:]
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return body


def test_every_answer_arrives_among_idle_connections_without_full_scans(
    server_without_full_scans: tuple[FleetServer, int],
) -> None:
    _, port = server_without_full_scans
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
    busy = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    failures: list[BaseException] = []

    def client(connection: socket.socket, number: int) -> None:
        try:
            for request in range(15):
                sleep = "0.02" if (number + request) % 3 == 0 else "0"
                size = BIG if request % 7 == number % 7 else 2
                assert len(_get(connection, f"sleep={sleep}&size={size}")) == size
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    clients = [threading.Thread(target=client, args=(connection, n)) for n, connection in enumerate(busy)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=60)
    # The idle ones were accepted and served too: each answers a request now.
    for connection in idle[::20]:
        assert _get(connection, "size=5") == b"xxxxx"
    for connection in idle + busy:
        connection.close()
    assert failures == []
