"""Connections (PROTOCOL.md limits table): idle, slow and hostile connections never keep a new client
waiting, and ambiguous request framing is refused. Over real servers, on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from perfmon.config import Settings
from tests.servers import ServerProcess, start_server_process, threaded_server

pytestmark = pytest.mark.slow

# Far more than waitress's default limit of 100 connections, few enough for any CI machine.
IDLE_CONNECTIONS = 300
TRICKLING_CONNECTIONS = 30
# "Answered at once" in the protocol; generous here, so that a loaded CI machine does not fail it.
ANSWERED_WITHIN = 5
# How long a test waits for the server to close a connection whose deadline is 2 s.
CLOSED_WITHIN = 10


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@contextlib.contextmanager
def _serving(*flags: str) -> Iterator[ServerProcess]:
    server = start_server_process(*flags)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _trickling(address: tuple[str, int], count: int) -> Iterator[list[socket.socket]]:
    """count connections that send a never-ending request header, one byte each every 0.5 s."""
    sockets = [socket.create_connection(address, timeout=5) for _ in range(count)]
    stop = threading.Event()

    def trickle() -> None:
        for byte in iter(lambda: b"X", None):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(byte)
            if stop.wait(0.5):
                return

    for sock in sockets:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in sockets:
            sock.close()


def _closed_by_server_within(sock: socket.socket, seconds: float, keep_sending: bool) -> float | None:
    """Seconds until the server closed sock (reading end of file or a reset), or None past `seconds`."""
    started = time.monotonic()
    sock.settimeout(0.25)
    while time.monotonic() - started < seconds:
        try:
            if keep_sending:
                sock.send(b"x")
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset, or a send after the close
            return time.monotonic() - started
    return None


def test_a_new_client_is_answered_while_hundreds_of_idle_and_trickling_connections_are_open(
    server_flags: list[str],
) -> None:
    with _serving(*server_flags) as server:
        token = requests.post(
            f"{server.url}/register", json={"user": "fleet", "passwd": "pw"}, timeout=10
        ).json()["hash"]
        address = _address(server.url)
        idle = [socket.create_connection(address, timeout=5) for _ in range(IDLE_CONNECTIONS)]
        try:
            with _trickling(address, TRICKLING_CONNECTIONS):
                time.sleep(1)  # let the server take them all in
                health = requests.get(f"{server.url}/healthz", timeout=ANSWERED_WITHIN)
                sample = {"hash": token, "cpu": 3.0, "time": 1_700_000_000}
                posted = requests.post(f"{server.url}/cpu", json=sample, timeout=ANSWERED_WITHIN)
        finally:
            for sock in idle:
                sock.close()
    assert health.status_code == 200
    assert posted.status_code == 200


def test_a_request_that_keeps_trickling_in_is_closed_at_the_request_deadline(tmp_path: Path) -> None:
    with _serving("--data-dir", str(tmp_path / "data"), "--request-timeout", "2") as server:
        with socket.create_connection(_address(server.url), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            closed_after = _closed_by_server_within(sock, CLOSED_WITHIN, keep_sending=True)
        # The server still answers everyone else.
        assert requests.get(f"{server.url}/healthz", timeout=ANSWERED_WITHIN).status_code == 200
    assert closed_after is not None, "a trickling request kept its connection past the deadline"
    assert closed_after >= 1.5


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(tmp_path: Path) -> None:
    with (
        _serving("--data-dir", str(tmp_path / "data"), "--idle-timeout", "2") as server,
        socket.create_connection(_address(server.url), timeout=5) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        closed_after = _closed_by_server_within(sock, CLOSED_WITHIN, keep_sending=False)
    assert closed_after is not None, "an idle connection stayed open past the idle timeout"


@pytest.fixture
def file_server_url(tmp_path: Path) -> Iterator[str]:
    """A server in this process with file storage; framing does not depend on the storage."""
    with threaded_server(Settings(storage="file", data_dir=tmp_path / "data")) as url:
        yield url


def _exchange(url: str, request: bytes) -> bytes:
    """Send request bytes, then read until the server closes the connection (at most 5 s)."""
    with socket.create_connection(_address(url), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
            return received + b"<closed>"
        return received


def test_expect_continue_with_a_too_large_body_gets_413_instead_of_100_continue(file_server_url: str) -> None:
    too_large = Settings().max_body_bytes * 2
    received = _exchange(
        file_server_url,
        b"POST /cpu HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {too_large}\r\nExpect: 100-continue\r\n\r\n".encode(),
    )
    assert received.startswith(b"HTTP/1.1 413 "), received
    assert b"100 Continue" not in received
    head, body = received.removesuffix(b"<closed>").split(b"\r\n\r\n", 1)
    assert json.loads(body) == {"reason": "Request body too large"}
    assert received.endswith(b"<closed>")


def test_content_length_with_chunked_transfer_encoding_is_refused_and_the_connection_closed(
    file_server_url: str,
) -> None:
    smuggling = (
        b"POST /cpu HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    received = _exchange(file_server_url, smuggling)
    assert received.startswith(b"HTTP/1.1 400 "), received
    assert received.count(b"HTTP/1.1 ") == 1, "the smuggled second request was answered"
    body = json.loads(received.removesuffix(b"<closed>").split(b"\r\n\r\n", 1)[1])
    assert body["reason"] == "Bad arguments" and "Transfer-Encoding" in body["detail"]
    assert received.endswith(b"<closed>")


def test_an_answer_nobody_reads_is_dropped_at_the_idle_timeout_without_holding_the_only_thread(
    tmp_path: Path,
) -> None:
    flags = ("--data-dir", str(tmp_path / "data"), "--idle-timeout", "2", "--threads", "1")
    with _serving(*flags) as server:
        token = requests.post(
            f"{server.url}/register", json={"user": "big", "passwd": "pw"}, timeout=10
        ).json()["hash"]
        for batch in range(30):  # 300,000 samples: an answer of about 12 MB, more than socket buffers
            samples = [{"cpu": 1.0, "time": batch * 10_000 + i} for i in range(10_000)]
            stored = requests.post(f"{server.url}/cpu", json={"hash": token, "samples": samples}, timeout=30)
            assert stored.status_code == 200
        with socket.socket() as reader:
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(_address(server.url))
            reader.sendall(f"GET /cpu?hash={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            time.sleep(1)
            # Its one worker thread is free while the answer waits for the reader.
            assert requests.get(f"{server.url}/healthz", timeout=ANSWERED_WITHIN).status_code == 200
            time.sleep(4)
            received = b""
            reader.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                while chunk := reader.recv(1 << 20):
                    received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    assert len(body) < length, "the unread answer was kept until the reader came back"
