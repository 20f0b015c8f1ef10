"""Memory held for answers nobody reads: N clients ask for a large session and never read the answer.

Starts a real `perfmon serve` (file storage in a temp dir, 127.0.0.1), stores --samples samples in one
session, then opens --readers connections that each send `GET /cpu` for it and read nothing. When every
answer has started to arrive, it prints the server's resident memory (VmRSS, and the peak VmHWM), checks
that a new client's /healthz is still answered, and cleans up. Bounded by --max-seconds.

    python -m bench.slow_readers [--readers 60] [--samples 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import FrameType

from .processes import BenchError, Server, perfmon_server

BATCH = 10_000


def _memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process, MiB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def _post(url: str, document: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 (our own server on 127.0.0.1)
        url, data=json.dumps(document).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
        return json.loads(answer.read())


def _fill(url: str, samples: int) -> str:
    token = str(_post(f"{url}/register", {"user": "reader", "passwd": "pw"})["hash"])
    for start in range(0, samples, BATCH):
        batch = [{"cpu": 1.5, "time": 1_700_000_000 + i} for i in range(start, min(samples, start + BATCH))]
        _post(f"{url}/cpu", {"hash": token, "samples": batch})
    return token


def _stalled_readers(port: int, token: str, count: int) -> list[socket.socket]:
    readers = []
    for _ in range(count):
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", port))
        reader.sendall(f"GET /cpu?hash={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        readers.append(reader)
    return readers


def _wait_until_all_answers_started(readers: list[socket.socket], deadline: float) -> int:
    started = 0
    for reader in readers:
        reader.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if reader.recv(1, socket.MSG_PEEK):
                started += 1
        except OSError:
            pass
    return started


def _give_up(signum: int, frame: FrameType | None) -> None:
    raise BenchError("ran past --max-seconds")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_readers", description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=60)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=int, default=300)
    parser.add_argument("--idle-timeout", type=int, default=300, help="the server's; 0: leave its default")
    arguments = parser.parse_args()
    signal.signal(signal.SIGALRM, _give_up)
    signal.alarm(arguments.max_seconds)
    temp = Path(tempfile.mkdtemp(prefix="perfmon-slow-readers-"))
    server: Server | None = None
    readers: list[socket.socket] = []
    try:
        flags = ["--storage", "file", "--data-dir", str(temp / "data")]
        if arguments.idle_timeout:
            flags += ["--idle-timeout", str(arguments.idle_timeout)]
        server = perfmon_server("perfmon", 8, flags, temp / "server.log")
        port = int(server.url.rsplit(":", 1)[1])
        token = _fill(server.url, arguments.samples)
        print(
            f"stored {arguments.samples} samples; server RSS {_memory_mib(server.pid)[0]:.0f} MiB", flush=True
        )
        started = time.monotonic()
        readers = _stalled_readers(port, token, arguments.readers)
        answering = _wait_until_all_answers_started(readers, started + arguments.max_seconds / 2)
        time.sleep(2)
        rss, peak = _memory_mib(server.pid)
        print(
            f"{answering} of {arguments.readers} unread answers started in "
            f"{time.monotonic() - started:.0f} s; "
            f"server RSS {rss:.0f} MiB, peak {peak:.0f} MiB"
        )
        probe = time.monotonic()
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=30) as answer:  # noqa: S310
            print(f"/healthz meanwhile: {answer.status} in {(time.monotonic() - probe) * 1000:.0f} ms")
        return 0
    except BenchError as error:
        print(f"cannot run: {error}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
        for reader in readers:
            reader.close()
        if server is not None:
            server.stop()
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
