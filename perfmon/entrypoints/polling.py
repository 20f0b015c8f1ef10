"""waitress's event loop for a fleet: ask only the connections whose state may have changed.

waitress's poll loop (wasyncore.poll2) asks every connection whether it wants to read and to write, and
builds a new poll set, on every wake-up; a request wakes it at least twice. With a thousand agents'
keep-alive connections that is thousands of Python calls per request: the fleet benchmark measured
5.5 ms of server CPU per request at 1,000 connections against 0.75 ms at 16. A connection's answers to
those two questions change only when:

- the loop serves it (an event on its socket: it read a request, wrote an answer, closed);
- a worker thread serving it hands over an answer or waits for its buffer to drain: it then wakes the
  loop through the server's trigger (FleetServer.pull_trigger), which first notes the connection in the
  socket map's `changed` set;
- the server's maintenance marks it for closing, or draining closes it: the loop looks at every
  connection again at least every FULL_SCAN_SECONDS, and at the ones that left the map every time.

So the Watcher keeps one poll set across wake-ups and asks again only those. Listening sockets and the
loop's own wake-up pipes are asked every time (their readable() is where waitress runs its maintenance).
"""

from __future__ import annotations

import contextlib
import math
import select
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel

# Seconds between two looks at every connection: the latest that a change nobody noted is seen (a
# connection that maintenance marked for closing after its idle timeout).
FULL_SCAN_SECONDS = 0.25
_READ = select.POLLIN | select.POLLPRI
_WRITE = select.POLLOUT

# The connection a worker thread is serving, for the trigger it pulls to name it.
serving = threading.local()


class SocketMap(dict[int, Any]):
    """waitress's socket map (file descriptor -> dispatcher), with the descriptors of the connections
    that worker threads changed since the loop last looked (threads add, the loop pops: both atomic)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[int] = set()


def note_changed(sockets: dict[int, Any]) -> None:
    """From a worker thread about to wake the loop: note the connection it serves as changed."""
    channel = getattr(serving, "channel", None)
    changed = getattr(sockets, "changed", None)
    if channel is not None and changed is not None and channel._fileno is not None:
        changed.add(channel._fileno)


class Watcher:
    """One poll set over a socket map, kept across wake-ups (see the module's docstring)."""

    def __init__(self, sockets: dict[int, Any], full_scan_seconds: float = FULL_SCAN_SECONDS) -> None:
        self._map = sockets
        self._poll = select.poll()
        # fd -> the dispatcher it was registered for, and its flags (0: not in the poll set).
        self._known: dict[int, tuple[Any, int]] = {}
        # Listeners and wake-up pipes: asked on every wake-up.
        self._always: set[int] = set()
        # The listeners among them.
        self._listeners: set[int] = set()
        # The descriptors that had an event on the last wake-up.
        self._served: set[int] = set()
        self._full_scan_seconds = full_scan_seconds
        self._scanned_at = -math.inf

    def poll_once(self, timeout: float) -> None:
        """Wait at most `timeout` seconds for events, and serve them (wasyncore.loop with count=1)."""
        sockets, known = self._map, self._known
        now = time.monotonic()
        if now - self._scanned_at >= self._full_scan_seconds:
            self._scanned_at = now
            asked = set(sockets) | set(known)
        else:
            asked = self._served | self._always
            # Connections come through a listener's event and leave through their own, or through
            # draining, which changes the count: only then is the whole map compared.
            if len(sockets) != len(known) or not self._listeners.isdisjoint(self._served):
                asked |= sockets.keys() - known.keys()
                asked |= known.keys() - sockets.keys()
            changed: set[int] | None = getattr(sockets, "changed", None)
            while changed:
                asked.add(changed.pop())
        for fd in asked:
            self._ask(fd)
        served: set[int] = set()
        self._served = served
        # Not past the next look at every connection.
        timeout = min(timeout, self._scanned_at + self._full_scan_seconds - time.monotonic())
        for fd, flags in self._poll.poll(max(0, int(timeout * 1000))):
            served.add(fd)
            dispatcher = sockets.get(fd)
            entry = known.get(fd)
            if dispatcher is None or entry is None or entry[0] is not dispatcher:
                continue  # closed, or a new one on a reused descriptor: asked on the next wake-up
            wasyncore.readwrite(dispatcher, flags)

    def _ask(self, fd: int) -> None:
        """Bring the poll set in line with what the descriptor's dispatcher wants now."""
        dispatcher = self._map.get(fd)
        entry = self._known.get(fd)
        if dispatcher is None:
            if entry is not None:
                del self._known[fd]
                self._always.discard(fd)
                self._listeners.discard(fd)
                if entry[1]:
                    with contextlib.suppress(KeyError, OSError):
                        self._poll.unregister(fd)
            return
        flags = _READ if dispatcher.readable() else 0
        if dispatcher.writable() and not dispatcher.accepting:
            flags |= _WRITE
        if entry is not None and entry[0] is dispatcher and entry[1] == flags:
            return
        if flags:
            self._poll.register(fd, flags)  # registers anew, or modifies
        elif entry is not None and entry[1]:
            with contextlib.suppress(KeyError, OSError):
                self._poll.unregister(fd)
        self._known[fd] = (dispatcher, flags)
        if isinstance(dispatcher, HTTPChannel):
            self._always.discard(fd)
            self._listeners.discard(fd)
        else:
            self._always.add(fd)
            if dispatcher.accepting:
                self._listeners.add(fd)
            else:
                self._listeners.discard(fd)
