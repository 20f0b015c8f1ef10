"""Serving until SIGTERM or SIGINT, then draining: no new connection is taken, the requests in flight
are finished and their answers sent, and idle keep-alive connections are closed at once.

waitress alone stops on KeyboardInterrupt raised in its loop: the loop ends where it is, so an answer
a worker thread had finished was never sent, a request whose body was arriving was dropped, and the
storage could be shut down under a thread still writing (a client saw its connection reset for a
sample that may well have been stored).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from types import FrameType
from typing import Any

from waitress import trigger, wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer

from perfmon.entrypoints.polling import Watcher
from perfmon.entrypoints.wsgi_server import FleetServer

logger = logging.getLogger("perfmon")

# `kill`, systemd, docker and the supervisor of workers send SIGTERM; a terminal's Ctrl-C sends SIGINT.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Seconds the requests in flight have to finish after a stop signal: far more than a request takes,
# and less than the supervisor waits for a worker (workers.STOP_SECONDS), so that a worker still has
# time to shut its storage down.
DRAIN_SECONDS = 20.0
# Seconds between looks at the connections while draining.
_DRAIN_TICK = 0.05
# Seconds waitress's threads get to end once the drain is over (they are idle unless it was cut short).
_THREADS_END_WITHIN = 5


class StopSignals:
    """SIGTERM and SIGINT, caught from construction on: the first one's number is `received`, and each
    wakes the server's loop at once (a pipe in its socket map that signal.set_wakeup_fd writes to).

    Make it in the main thread, once the server is bound. It unblocks the two signals, which a worker
    of `perfmon serve --workers` starts with blocked (workers.py): one sent while the worker was
    starting is delivered now. Later signals change nothing: the process is stopping already."""

    def __init__(self, server: FleetServer | MultiSocketServer) -> None:
        self.received: int | None = None
        self._wake = trigger.trigger(socket_map(server))
        os.set_blocking(self._wake.trigger, False)  # written from the C signal handler
        for number in STOP_SIGNALS:
            signal.signal(number, self._caught)
        self._previous_wakeup = signal.set_wakeup_fd(self._wake.trigger)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _caught(self, number: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = number

    def close(self) -> None:
        """Stop writing to the pipe, before the server's loop closes it (its number could be reused
        by a storage file)."""
        signal.set_wakeup_fd(self._previous_wakeup)


def socket_map(server: FleetServer | MultiSocketServer) -> dict[int, Any]:
    """The dispatchers of the server's loop, by file descriptor: listeners, connections, triggers."""
    sockets: dict[int, Any] = server.map if isinstance(server, MultiSocketServer) else server._map
    return sockets


def serve_until_stopped(
    server: FleetServer | MultiSocketServer, stop: StopSignals, drain_seconds: float = DRAIN_SECONDS
) -> int:
    """Serve until `stop` has received a signal, then drain for at most drain_seconds, and close every
    socket. Returns how many connections still had a request in flight at the deadline and were cut
    (0 unless a request took longer than drain_seconds)."""
    sockets = socket_map(server)
    watcher = Watcher(sockets)
    try:
        while stop.received is None:
            watcher.poll_once(server.adj.asyncore_loop_timeout)
        return _drain(sockets, watcher, time.monotonic() + drain_seconds, signal.Signals(stop.received).name)
    finally:
        stop.close()
        server.task_dispatcher.shutdown(timeout=_THREADS_END_WITHIN)
        wasyncore.close_all(sockets)


def _drain(sockets: dict[int, Any], watcher: Watcher, deadline: float, reason: str) -> int:
    for listener in _all_of(sockets, BaseWSGIServer):
        # Not BaseWSGIServer.close(), which also closes the trigger that the worker threads wake the
        # loop with when an answer is ready. In a worker, this closes its own copy of the socket only.
        wasyncore.dispatcher.close(listener)
    logger.info("%s: taking no new connection, finishing the requests in flight", reason)
    # What arrived with the signal is read first: a request that came whole is served, not cut.
    watcher.poll_once(0)
    while True:
        in_flight = 0
        for channel in _all_of(sockets, HTTPChannel):
            if _is_in_flight(channel):
                in_flight += 1
            else:
                channel.handle_close()
        if not in_flight or time.monotonic() >= deadline:
            return in_flight
        watcher.poll_once(_DRAIN_TICK)


def _is_in_flight(channel: Any) -> bool:
    """A request whose headers have come (its body may be arriving), one queued or being served, or an
    answer not sent whole. An idle keep-alive connection, or one still sending its headers, is not."""
    arriving = channel.request
    started = arriving is not None and arriving.headers_finished
    return bool(channel.requests or channel.total_outbufs_len or started)


def _all_of(sockets: dict[int, Any], kind: type) -> list[Any]:
    return [dispatcher for dispatcher in list(sockets.values()) if isinstance(dispatcher, kind)]
