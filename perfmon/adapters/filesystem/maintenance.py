"""The background work of the file storage: maintain() and prune() of HistoryMaintenance.

maintain() visits the sessions this process appended to since its last pass, and every session now
and then (the first pass, then every _SCAN_EVERY seconds: another process's appends, a crash before
the last pass); for each series it rolls up the unrolled tails and compacts the closed days. Every step
runs under the session's exclusive lock, so two processes (or threads) maintaining one data dir never
count a sample twice; each lock hold is short, and the slow compression runs outside it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from perfmon.adapters.filesystem import compaction, folding, journal, pruning, rolling
from perfmon.adapters.filesystem.files import require_folder_of, storage_errors, sweep_temporary
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import day_name
from perfmon.adapters.filesystem.session_lock import SessionLocks
from perfmon.domain.errors import InvalidInput, UnknownSession
from perfmon.domain.model import MAX_TIMESTAMP, check_metric_name, is_canonical_session_token
from perfmon.domain.ports import PruneReport
from perfmon.domain.rollups import DAY, day_start

# Seconds (monotonic) between visits of every session.
_SCAN_EVERY = 600.0
# Bytes of plain segments compacted per pass, at most (about 13 days of a series at 1 Hz, a few
# seconds of work): after an upgrade or a long stop the backlog is worked off pass by pass.
_COMPACTION_BUDGET = 32 << 20


class FileMaintenance:
    """Rolls up, compacts and prunes the series of a data dir."""

    def __init__(self, data_dir: DataDir, locks: SessionLocks) -> None:
        self._dir = data_dir
        self._locks = locks
        # Sessions with work left: appended to since the last pass, or with a plain segment not compacted.
        self._active: set[str] = set()
        self._guard = threading.Lock()
        self._scanned_at: float | None = None
        # One pass at a time in this process; other processes are kept apart by the session locks.
        self._passing = threading.Lock()

    def appended(self, token: str) -> None:
        """Note that the session has new samples to roll up."""
        with self._guard:
            self._active.add(token)

    def maintain(self, now: float) -> None:
        with self._passing, storage_errors("maintaining the sample history"):
            budget = [_COMPACTION_BUDGET]
            due, scan = self._due()
            for token in due:
                with contextlib.suppress(UnknownSession):
                    if self._maintain_session(token, now, budget, scan):
                        self.appended(token)

    def prune(self, raw_before: float | None, rollups_before: float | None, apply: bool) -> PruneReport:
        raw, rollups = pruning.Tally(), pruning.Tally()
        with self._passing, storage_errors("pruning the sample history"):
            for token in self._sessions():
                for metric in self._series(token):
                    with contextlib.suppress(UnknownSession):
                        if raw_before is not None:
                            raw.add(self._prune_raw(token, metric, raw_before, apply))
                        if rollups_before is not None:
                            rollups.add(
                                self._prune_rollups(token, metric, day_start(_clamped(rollups_before)), apply)
                            )
        return PruneReport(apply, raw.units, raw.bytes, rollups.units, rollups.bytes)

    def _due(self) -> tuple[list[str], bool]:
        """The sessions to visit, and whether to scan their series folders (rolling.py): every session
        is visited, and its folders listed, on the first pass and every _SCAN_EVERY seconds."""
        scan = False
        with self._guard:
            due = set(self._active)
            self._active.clear()
        if self._scanned_at is None or time.monotonic() - self._scanned_at >= _SCAN_EVERY:
            due.update(self._sessions())
            self._scanned_at = time.monotonic()
            scan = True
            # What a process killed mid-write left in tmp/ (a restarted server's own, from seconds ago,
            # is old enough by a later scan).
            sweep_temporary(self._dir, time.time())
        return sorted(due), scan

    def _maintain_session(self, token: str, now: float, budget: list[int], scan: bool) -> bool:
        """Roll up and compact each series of the session; True while plain segments (or late files
        not folded) are left."""
        left = False
        for metric in self._series(token):
            self._roll_up(token, metric, scan)
            left = self._compact(token, metric, now, budget, scan) or left
        return left

    def _roll_up(self, token: str, metric: str, scan: bool = False) -> None:
        more = True
        while more:
            with self._writing(token) as folder:
                more = rolling.roll_up(folder, metric, self._dir.fsync, scan)
            scan = False  # the first call registered what the folder holds

    def _compact(self, token: str, metric: str, now: float, budget: list[int], scan: bool) -> bool:
        """Compact the series' closed days and fold the late files of compacted ones (folding.py);
        True while plain segments are left."""
        ready: list[compaction.ClosedDay] = []
        try:
            with self._writing(token) as folder:
                ready, left = compaction.closed_days(folder / metric, now, budget[0], scan)
                spent = sum(len(closed.content) for closed in ready)
                late, late_left = folding.late_days(folder / metric, now, budget[0] - spent, scan)
                ready += late
            left = left or late_left
            for closed in ready:
                budget[0] -= len(closed.content)
                prepared = compaction.prepare(self._dir, metric, closed)
                try:
                    with self._writing(token) as folder:
                        if closed.compacted is None:
                            left = not compaction.install(self._dir, folder / metric, prepared) or left
                        else:
                            left = not folding.install(self._dir, folder / metric, prepared) or left
                except BaseException:
                    compaction.discard(prepared)
                    raise
        finally:
            for closed in ready:
                compaction.release(closed)
        return left

    def _prune_raw(self, token: str, metric: str, raw_before: float, apply: bool) -> pruning.Tally:
        if apply:
            self._roll_up(token, metric)  # raw samples are only ever dropped once summed up
        with self._writing(token) as folder:
            return pruning.prune_raw(self._dir, folder / metric, day_name(_clamped(raw_before)), apply)

    def _prune_rollups(self, token: str, metric: str, cutoff: float, apply: bool) -> pruning.Tally:
        with self._writing(token) as folder:
            return pruning.prune_rollups(self._dir, folder / metric, cutoff, apply)

    @contextlib.contextmanager
    def _writing(self, token: str) -> Iterator[Path]:
        """The session's exclusive lock, with any unfinished write rolled back."""
        with self._locks.exclusive(token) as folder:
            journal.roll_back(folder, self._dir.fsync)
            yield folder

    def _sessions(self) -> list[str]:
        return sorted(
            entry.name
            for entry in os.scandir(self._dir.sessions)
            if entry.is_dir() and is_canonical_session_token(entry.name)
        )

    def _series(self, token: str) -> list[str]:
        return series_of(self._dir.session_folder(token))


def series_of(folder: Path) -> list[str]:
    """The metrics of the session whose folder this is, sorted; none when it has no folder."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        require_folder_of(folder)  # a vanished sessions folder is an outage, not an unknown session
        return []
    return sorted(entry.name for entry in entries if entry.is_dir() and _is_metric(entry.name))


def _is_metric(name: str) -> bool:
    try:
        check_metric_name(name)
    except InvalidInput:
        return False
    return True


def _clamped(moment: float) -> float:
    # A cutoff may be any number; sample times lie in [0, MAX_TIMESTAMP).
    return min(max(moment, 0.0), MAX_TIMESTAMP + DAY)
