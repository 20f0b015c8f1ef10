"""`perfmon serve --workers N`: the parent process that starts N worker processes on the listening
sockets it bound, starts another in place of one that dies, and stops them all on SIGTERM or SIGINT.

Pre-fork, as gunicorn does: the parent has no thread and no storage of its own, so forking it is safe,
and each worker builds its own container (engine, open files, locks) after the fork. The kernel hands
each new connection to whichever worker accepts it first. Slot 0's worker, and the one started in its
place, runs the background passes (perfmon.entrypoints.cli).

The parent keeps SIGTERM, SIGINT and SIGCHLD blocked and waits for them with sigtimedwait: no handler
runs in the middle of a fork or of the bookkeeping. A worker starts with them blocked too, and unblocks
the two stop signals once it can drain (draining.StopSignals), so a stop sent while it starts is not
lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence

from perfmon.entrypoints.log_redaction import first_line, safe_traceback

logger = logging.getLogger("perfmon.workers")

# Seconds the workers have to drain and stop after SIGTERM before they are killed.
STOP_SECONDS = 30.0
# A server whose workers die this many times within CRASH_WINDOW seconds stops rather than loop
# (a worker that cannot start: its storage gone, a bug at start-up).
CRASH_LIMIT = 5
CRASH_WINDOW = 10.0
_WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
# Linux prctl(2): the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1

# A worker's life, run in the forked child with its slot (0..N-1); its exit status.
Work = Callable[[int], int]


class Supervisor:
    """Starts `count` workers running `work`, keeps that many running, and stops them on request.

    `sockets` are the listening sockets the workers serve on: the parent closes its copies when it
    stops, so that new connections are refused once the workers have closed theirs."""

    def __init__(self, count: int, sockets: Sequence[socket.socket], work: Work) -> None:
        self._count = count
        self._sockets = sockets
        self._work = work
        self._slots: dict[int, int] = {}  # pid -> slot
        self._exits: deque[float] = deque(maxlen=CRASH_LIMIT)

    def run(self, started: Callable[[], None]) -> int:
        """Start the workers and call `started`; then start a worker in place of each that exits, until
        SIGTERM or SIGINT; then stop them all (SIGTERM, and SIGKILL past STOP_SECONDS).

        Returns 0, or 1 when workers kept dying (CRASH_LIMIT exits within CRASH_WINDOW seconds). The
        three signals stay blocked in this process, which is to exit."""
        signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        for slot in range(self._count):
            self._start(slot)
        started()
        status = self._watch()
        self._stop_all()
        return status

    def _start(self, slot: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: it never returns into the parent's code
            os._exit(self._live(slot, parent))
        self._slots[pid] = slot

    def _live(self, slot: int, parent: int) -> int:
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            _stop_with_parent(parent)
            return self._work(slot)
        except BaseException as error:  # the exit status is all the parent gets: say why here
            logger.error("worker %d failed: %s", slot, first_line(error))
            logger.debug("worker %d failed\n%s", slot, safe_traceback(error))
            return 1
        finally:
            sys.stderr.flush()

    def _watch(self) -> int:
        while True:
            caught = signal.sigtimedwait(_WATCHED, 1.0)
            if caught is not None and caught.si_signo != signal.SIGCHLD:
                logger.info("%s: stopping the workers", signal.Signals(caught.si_signo).name)
                return 0
            for pid, status in self._reaped():
                slot = self._slots.pop(pid)
                logger.warning("worker %d (pid %d) %s; starting another", slot, pid, describe_exit(status))
                self._exits.append(time.monotonic())
                if len(self._exits) == CRASH_LIMIT and self._exits[-1] - self._exits[0] <= CRASH_WINDOW:
                    logger.error(
                        "workers keep dying (%d exits within %.0f s): stopping the server; the lines "
                        "above say why",
                        CRASH_LIMIT,
                        CRASH_WINDOW,
                    )
                    return 1
                self._start(slot)

    def _stop_all(self) -> None:
        for sock in self._sockets:
            sock.close()
        for pid in self._slots:
            _send(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while self._slots and (left := deadline - time.monotonic()) > 0:
            signal.sigtimedwait(_WATCHED, left)  # a second SIGTERM or SIGINT changes nothing
            for pid, status in self._reaped():
                slot = self._slots.pop(pid)
                if status != 0:
                    logger.warning("worker %d (pid %d) %s while stopping", slot, pid, describe_exit(status))
        for pid, slot in self._slots.items():
            logger.warning("worker %d (pid %d) did not stop within %.0f s: killed", slot, pid, STOP_SECONDS)
            _send(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self._slots.clear()

    def _reaped(self) -> list[tuple[int, int]]:
        """The workers that have exited since the last look, with their wait statuses."""
        exited = []
        while self._slots:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self._slots:
                exited.append((pid, status))
        return exited


def describe_exit(status: int) -> str:
    """A wait status in words: "exited with status 1", "was killed by signal 9 (SIGKILL)"."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-code}{name}"


def _send(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited already: reaped by the next look
        os.kill(pid, number)


def _stop_with_parent(parent: int) -> None:
    """On Linux, have this worker sent SIGTERM when the parent dies (kill -9 of it), so that no worker
    is left serving with nobody to stop it; it drains and exits as on any SIGTERM."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)
