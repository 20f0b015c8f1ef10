"""Real perfmon servers for tests: in a thread of the test process, or as a separate process."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from waitress import wasyncore

from perfmon import bootstrap
from perfmon.config import Settings
from perfmon.entrypoints.access_log import WsgiApp, with_access_log
from perfmon.entrypoints.assembly import build_http_app
from perfmon.entrypoints.wsgi_server import create_server

_LISTENING = re.compile(r"listening on (http://\S+)")


@contextmanager
def threaded_server(settings: Settings) -> Iterator[str]:
    """Serve the app built from settings on a free port in a thread; yield its base URL."""
    container = bootstrap.build_container(settings)
    bootstrap.check_storage_ready(container)
    app: WsgiApp = build_http_app(settings, container)
    if settings.access_log:  # as `perfmon serve` does; the level is the test's (caplog) to set
        app = with_access_log(app)
    server = create_server(
        app,
        host="127.0.0.1",
        port=0,
        threads=settings.threads,
        max_body_bytes=settings.max_body_bytes,
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # Let the workers finish, then close the sockets from the server's own loop thread (closing them
        # from here races its select), which ends the loop. waitress has no public stop.
        server.task_dispatcher.shutdown()
        with contextlib.suppress(OSError):  # the loop already closed its trigger: nothing left to stop
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=5)
        container.shutdown_resources()


@dataclass
class ServerProcess:
    """A `perfmon serve` child process and what it logged."""

    process: subprocess.Popen[str]
    url: str
    log: list[str] = field(default_factory=list)

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=10)


def start_server_process(
    *flags: str, env: dict[str, str] | None = None, timeout: float = 20
) -> ServerProcess:
    """Start `python -m perfmon serve --port 0 ...` and wait for its 'listening on' line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "perfmon", "serve", "--port", "0", *flags],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    log: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stderr is not None
    for line in process.stderr:
        log.append(line)
        match = _LISTENING.search(line)
        if match:
            server = ServerProcess(process, match.group(1), log)
            # Keep draining stderr so that the child never blocks on a full pipe.
            threading.Thread(target=lambda: log.extend(process.stderr or ()), daemon=True).start()
            return server
        if time.monotonic() > deadline:
            break
    process.kill()
    process.wait()
    raise RuntimeError("perfmon serve did not start:\n" + "".join(log))


def run_perfmon(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m perfmon ...` to the end, with no PERFMON_* variable to change what the flags say."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PERFMON_")}
    return subprocess.run(
        [sys.executable, "-m", "perfmon", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
