"""The server's background job: storage maintenance and retention, on a timer, off the request path."""

from __future__ import annotations

import logging
import threading
import time

from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.ports import PruneReport
from perfmon.domain.retention import Retention
from perfmon.entrypoints.log_redaction import first_line, safe_traceback

logger = logging.getLogger("perfmon.maintenance")


def describe_prune(report: PruneReport) -> str:
    """What a prune dropped, or would drop, in words: counts and sizes only (file names hold tokens)."""
    verb = "dropped" if report.applied else "would drop"
    return (
        f"{verb} {report.raw_units} unit(s) of raw samples ({_size(report.raw_bytes)}) "
        f"and {report.rollup_units} unit(s) of rollups ({_size(report.rollup_bytes)})"
    )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    size = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class MaintenanceLoop:
    """Runs Retention.run_once every `interval` seconds in a daemon thread until stop().

    A failing pass is logged and the next one tried: an outage of the storage ends by itself, and
    ingest never waits for this thread (storages take their locks per session and briefly)."""

    def __init__(self, retention: Retention, interval: float) -> None:
        self._retention = retention
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perfmon-maintenance", daemon=True)

    def start(self) -> None:
        """Begin the passes; the first one at once."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to end and wait for the pass in progress, at most `timeout` seconds."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        # The first pass runs at start-up whatever happens next: a short-lived server still catches up.
        self.run_once()
        while not self._stopping.wait(self._interval):
            self.run_once()

    def run_once(self) -> None:
        """One pass; never raises."""
        started = time.monotonic()
        try:
            report = self._retention.run_once()
        except StorageUnavailable as error:
            logger.warning("maintenance pass skipped: %s", error)
            return
        except Exception as error:  # a bug must not end the loop: log it, try again next time
            logger.error("maintenance pass failed: %s", first_line(error))
            logger.debug("maintenance pass failed\n%s", safe_traceback(error))
            return
        # Says which process passes (with --workers, the log format carries the pid).
        logger.debug("maintenance pass done in %.0f ms", (time.monotonic() - started) * 1000)
        if report.raw_units or report.rollup_units:
            logger.info("retention: %s", describe_prune(report))
