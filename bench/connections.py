"""Connections under a fleet and a slowloris: is a new client still answered at once?

Starts a real `perfmon serve` (file storage in a temp dir, 127.0.0.1, a free port), opens --idle
keep-alive connections (each makes one request, then stays idle) and --trickling ones (a request header
that grows by a byte a second and never ends), then probes `GET /healthz` and `POST /cpu` from a new
client each time, and prints their latencies. Then it waits past the server's request timeout and
counts the trickling connections the server has closed. Bounded in time (--max-seconds); exits 1 when a
probe failed or was slower than --target-ms, 2 when it could not run.

    python -m bench.connections [--idle 2000] [--trickling 100] [--probes 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from .processes import BenchError, Server, perfmon_server

HOST = "127.0.0.1"


def _raise_own_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def _http(port: int, request: bytes, timeout: float) -> bytes:
    """One request on a new connection; the whole answer (by Content-Length)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        return _read_answer(sock)


def _read_answer(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"connection closed mid-answer: {received[:80]!r}")
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(v)
        for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
        if k.lower() == b"content-length"
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed mid-body")
        body += chunk
    return head + b"\r\n\r\n" + body


def _post(path: str, document: dict[str, object]) -> bytes:
    body = json.dumps(document).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


HEALTH = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()


def _open_idle(port: int, count: int) -> tuple[list[socket.socket], int]:
    """count keep-alive connections, each after one request (so truly kept alive); and how many of
    those requests were answered within 10 s (a server that stops accepting leaves the rest waiting)."""
    sockets: list[socket.socket] = []
    with contextlib.suppress(OSError):  # a full backlog: connect() times out
        for _ in range(count):
            sockets.append(socket.create_connection((HOST, port), timeout=5))
    for sock in sockets:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    deadline = time.monotonic() + 10
    answered = 0
    for sock in sockets:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        with contextlib.suppress(OSError, BenchError):
            _read_answer(sock)
            answered += 1
    return sockets, answered


class Trickle:
    """count connections that each send one more header byte every second, until stopped."""

    def __init__(self, port: int, count: int) -> None:
        self.sockets: list[socket.socket] = []
        with contextlib.suppress(OSError):  # a full backlog: connect() times out
            for _ in range(count):
                self.sockets.append(socket.create_connection((HOST, port), timeout=5))
        for sock in self.sockets:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode())
            sock.setblocking(False)
        self.closed_at: dict[int, float] = {}
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for index, sock in enumerate(self.sockets):
                if index in self.closed_at:
                    continue
                try:
                    if sock.recv(1) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_at[index] = time.monotonic() - self.started
                    continue
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def _probe(
    name: str, make_request: Callable[[], bytes], port: int, count: int, timeout: float
) -> list[float]:
    """Latencies (ms) of count requests, each from a new connection; a failure counts as the timeout."""
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            answer = _http(port, make_request(), timeout)
            ok = answer.startswith(b"HTTP/1.1 200")
        except (OSError, BenchError):
            ok = False
        elapsed = (time.perf_counter() - started) * 1000
        latencies.append(elapsed if ok else float("inf"))
        time.sleep(0.2)
    return latencies


def _summary(name: str, latencies: list[float]) -> str:
    done = sorted(latency for latency in latencies if latency != float("inf"))
    failed = len(latencies) - len(done)
    if not done:
        return f"{name:<10} all {failed} probes failed"
    cut = statistics.quantiles(done, n=100, method="inclusive") if len(done) > 1 else [done[0]] * 99
    figures = " ".join(f"{latency:.1f}" for latency in latencies)
    return (
        f"{name:<10} n={len(latencies)} failed={failed} p50={cut[49]:.1f} p90={cut[89]:.1f} "
        f"p99={cut[98]:.1f} max={done[-1]:.1f} ms\n           each: {figures}"
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=int, default=2000, help="idle keep-alive connections")
    parser.add_argument("--trickling", type=int, default=100, help="slowloris connections")
    parser.add_argument("--probes", type=int, default=20, help="probes of each kind")
    parser.add_argument("--target-ms", type=float, default=1000, help="the slowest acceptable probe")
    parser.add_argument("--request-timeout", type=int, default=30, help="the server's --request-timeout")
    parser.add_argument("--max-seconds", type=float, default=180, help="give up past this")
    return parser.parse_args()


def _give_up(signum: int, frame: FrameType | None) -> None:
    raise BenchError("ran past --max-seconds")


def main() -> int:
    arguments = _arguments()
    _raise_own_file_limit(arguments.idle + arguments.trickling + 256)
    signal.signal(signal.SIGALRM, _give_up)
    signal.alarm(int(arguments.max_seconds))
    temp = Path(tempfile.mkdtemp(prefix="perfmon-connections-"))
    server: Server | None = None
    trickle: Trickle | None = None
    idle: list[socket.socket] = []
    try:
        flags = ["--data-dir", str(temp / "data"), "--request-timeout", str(arguments.request_timeout)]
        server = perfmon_server("perfmon", 8, ["--storage", "file", *flags], temp / "server.log")
        port = int(server.url.rsplit(":", 1)[1])
        registered = _http(port, _post("/register", {"user": "bench", "passwd": "pw"}), 10)
        token = json.loads(registered.split(b"\r\n\r\n", 1)[1])["hash"]
        started = time.monotonic()
        idle, answered = _open_idle(port, arguments.idle)
        trickle = Trickle(port, arguments.trickling)
        print(
            f"opened {len(idle)} idle connections ({answered} answered their first request) and "
            f"{len(trickle.sockets)} trickling ones in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        sample = iter(range(10**9))
        health = _probe("/healthz", lambda: HEALTH, port, arguments.probes, 10)
        post = _probe(
            "POST /cpu",
            lambda: _post("/cpu", {"hash": token, "cpu": 1.0, "time": next(sample)}),
            port,
            arguments.probes,
            10,
        )
        print(_summary("/healthz", health))
        print(_summary("POST /cpu", post))
        wait = arguments.request_timeout + 5 - (time.monotonic() - trickle.started)
        if wait > 0:
            time.sleep(wait)
        closed = sorted(trickle.closed_at.values())
        when = f", after {closed[0]:.0f}..{closed[-1]:.0f} s" if closed else ""
        print(
            f"trickling connections closed by the server at its {arguments.request_timeout} s request "
            f"deadline: {len(closed)} of {len(trickle.sockets)}{when}"
        )
        worst = max(health + post)
        return 0 if worst <= arguments.target_ms else 1
    except BenchError as error:
        print(f"cannot run: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
        if trickle is not None:
            trickle.stop()
        for sock in idle:
            sock.close()
        if server is not None:
            server.stop()
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
