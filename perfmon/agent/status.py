"""What the agent tells its user: a status line redrawn in place on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

from perfmon.agent.model import SpoolCounts

logger = logging.getLogger(__name__)

# Redrawing on every sample would make a slow terminal part of the sampling loop.
REDRAW_INTERVAL_SECONDS = 0.2
# While the spool is full, how often the growing count of dropped samples is logged.
DROP_LOG_INTERVAL_SECONDS = 60.0


class StatusReport:
    """Counts and the last error; events are logged (and the line redrawn around them on a terminal)."""

    def __init__(self, terminal: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._terminal = terminal
        self._clock = clock
        self._lock = threading.Lock()
        self.sent = 0
        # The latest problem or error, for the status line and the summary at the end.
        self.last_error: str | None = None
        # The server problem going on now, if any: repeats of it are not logged again; a delivery ends it.
        self._outage: str | None = None
        self._counts = SpoolCounts(0, 0, 0)
        self._drawn_at: float | None = None
        self._drops_logged = 0
        self._drops_logged_at = 0.0

    def delivered(self, count: int) -> None:
        """The server has `count` more samples; a first success after a problem is news."""
        with self._lock:
            self.sent += count
            recovered = self._outage is not None
            if recovered and self.last_error == self._outage:
                self.last_error = None  # it is over; an error of another kind stays to be read
            self._outage = None
        if recovered:
            self.event(logging.INFO, "server reachable again: sending what was spooled")

    def problem(self, text: str) -> None:
        """Something failed; logged when it differs from the last problem, so an outage is one line."""
        with self._lock:
            repeated = self._outage == text
            self._outage = self.last_error = text
        if not repeated:
            self.event(logging.WARNING, f"{text}; samples are kept in the spool")

    def event(self, level: int, text: str, *, exc_info: bool = False) -> None:
        """A log line; on a terminal it goes above the status line. An error becomes the last error."""
        with self._lock:
            if level >= logging.ERROR:
                self.last_error = text
            if self._terminal is not None and self._drawn_at is not None:
                self._terminal.write("\r\x1b[K")
                self._terminal.flush()
            logger.log(level, text, exc_info=exc_info)
            self._draw()

    def refresh(self, counts: SpoolCounts) -> None:
        """New spool counts: redraw the line now and then; log drops as they start and then each minute."""
        with self._lock:
            self._counts = counts
            now = self._clock()
            if self._drawn_at is None or now - self._drawn_at >= REDRAW_INTERVAL_SECONDS:
                self._draw()
            new_drops = counts.dropped > self._drops_logged
            due = self._drops_logged == 0 or now - self._drops_logged_at >= DROP_LOG_INTERVAL_SECONDS
        if new_drops and due:
            with self._lock:
                self._drops_logged, self._drops_logged_at = counts.dropped, now
            self.event(
                logging.WARNING,
                f"spool full: dropping the oldest samples ({counts.dropped} dropped so far)",
            )

    def line(self) -> str:
        """The status as one line of text."""
        counts = self._counts
        parts = [f"sent {self.sent}", f"spooled {counts.pending}", f"dropped {counts.dropped}"]
        if counts.quarantined:
            parts.append(f"quarantined {counts.quarantined}")
        parts.append(f"last error: {self.last_error or 'none'}")
        return " | ".join(parts)

    def finish(self, counts: SpoolCounts) -> None:
        """End the status line and log the totals."""
        with self._lock:
            self._counts = counts
            if self._terminal is not None and self._drawn_at is not None:
                self._terminal.write("\n")
                self._terminal.flush()
                self._drawn_at = None
        logger.info("agent stopped: %s", self.line())

    def _draw(self) -> None:
        if self._terminal is None:
            return
        self._drawn_at = self._clock()
        # Cut to the terminal's width: a line that wraps cannot be redrawn in place.
        width = shutil.get_terminal_size().columns - 1
        self._terminal.write("\r\x1b[K" + self.line()[:width])
        self._terminal.flush()
