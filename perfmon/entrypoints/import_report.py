"""How `perfmon import-legacy` shows its work: a progress line on a terminal, a summary at the end."""

from __future__ import annotations

import math
import time
from typing import TextIO

from perfmon.domain.legacy_import import ImportReport

# Redrawing for every batch would make a slow terminal the bottleneck of a large import.
REDRAW_INTERVAL_SECONDS = 0.2


class ProgressLine:
    """One line of counts on a terminal, redrawn in place with a carriage return; silent on anything else,
    so that logs and pipes never fill with half-lines. A context manager: leaving it ends the line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._last_drawn = -math.inf
        self._latest: ImportReport | None = None

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # The last counts may have come too soon after a redraw: show them before ending the line.
        if self._latest is not None:
            self._draw(self._latest)
            self._stream.write("\n")
            self._stream.flush()

    def __call__(self, report: ImportReport) -> None:
        if not self._enabled:
            return
        self._latest = report
        if time.monotonic() - self._last_drawn >= REDRAW_INTERVAL_SECONDS:
            self._draw(report)

    def _draw(self, report: ImportReport) -> None:
        self._last_drawn = time.monotonic()
        self._stream.write(
            f"\rimporting: {report.users_imported + report.users_skipped} users, "
            f"{report.sessions_imported + report.sessions_skipped} sessions, "
            f"{report.samples_imported} samples, {report.bad_lines} bad lines "
        )
        self._stream.flush()


def summary(report: ImportReport) -> str:
    """The report as `what: count` lines, for people and scripts alike; "skipped" means already there."""
    return "\n".join(
        [
            f"users imported: {report.users_imported}",
            f"users skipped: {report.users_skipped}",
            f"sessions imported: {report.sessions_imported}",
            f"sessions skipped: {report.sessions_skipped}",
            f"samples imported: {report.samples_imported}",
            f"bad lines: {report.bad_lines}",
        ]
    )
