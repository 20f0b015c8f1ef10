"""Samples in files: each series split by UTC day, with stored rollups (see the layout in __init__.py)."""

from __future__ import annotations

import logging
import lzma
import math
import os
import weakref
from collections.abc import Sequence
from pathlib import Path

from perfmon.adapters.filesystem import (
    appends,
    compressed,
    edits,
    journal,
    rollup_rows,
    segment_search,
    segments,
    snapshots,
    status_file,
)
from perfmon.adapters.filesystem.files import storage_errors
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.maintenance import FileMaintenance, series_of
from perfmon.adapters.filesystem.open_sessions import DEFAULT_OPEN_FILES, OpenSession, OpenSessions
from perfmon.adapters.filesystem.series_files import DayFiles, day_of
from perfmon.adapters.filesystem.session_lock import SessionLocks
from perfmon.domain.errors import TooManySeries
from perfmon.domain.model import (
    EVERYTHING,
    MAX_SERIES_PER_SESSION,
    Sample,
    SampleSeries,
    SampleSummary,
    SessionStatus,
    TimeRange,
    check_metric_name,
    is_canonical_session_token,
    moved_status,
)
from perfmon.domain.ports import HistoryMaintenance, PruneReport, SampleRepository
from perfmon.domain.rollups import DAY, RollupBucket, check_width, merge_partials, overlapping, rollup

logger = logging.getLogger(__name__)


class FileSampleRepository(SampleRepository, HistoryMaintenance):
    """The series of each session under `sessions/<token>/`, which exists from the start of the session
    (sessions.py): appends and reads here, the background work in maintenance.py."""

    def __init__(self, data_dir: DataDir, open_files: int = DEFAULT_OPEN_FILES) -> None:
        self._dir = data_dir
        self._locks = SessionLocks(data_dir)
        self._open = OpenSessions(data_dir, self._locks, open_files)
        # Closes the kept files of a repository that is dropped without close() (tests make many).
        self._closer = weakref.finalize(self, self._open.close)
        self._maintenance = FileMaintenance(data_dir, self._locks)
        # Files whose unreadable lines were reported, so that each is reported once.
        self._warned_about: set[Path] = set()
        self._parsed = rollup_rows.ParsedRollups()

    @property
    def open_files(self) -> int:
        """The files kept open for appends now (open_sessions.py)."""
        return self._open.open_files

    def close(self) -> None:
        """Close the files kept open for appends; the repository may be used on (it opens them again)."""
        self._open.close()

    def status(self, tokens: Sequence[str]) -> dict[str, SessionStatus]:
        """Each session's `status.csv` as its last finished write left it (status_file.py): one small
        file read per session, under its shared lock, never a scan of its samples."""
        found: dict[str, SessionStatus] = {}
        with storage_errors("reading session status"):
            for token in tokens:
                if not is_canonical_session_token(token):
                    continue  # names no session, and no folder
                with self._locks.shared(token) as folder:
                    status = None if folder is None else status_file.committed(folder)
                if status is not None:
                    found[token] = status
        return found

    def append(self, token: str, samples: Sequence[Sample], received_at: float | None = None) -> None:
        """Store the samples and, with a receive time, move the session's status (status.csv) in one
        journalled write: both or neither, whatever crashes. Without one, a sample of one series is a
        single append that needs no journal. TooManySeries, nothing stored, when the write would start
        series beyond MAX_SERIES_PER_SESSION (PROTOCOL.md part 3)."""
        if not samples:
            return
        groups = appends.group(samples)
        with storage_errors("storing samples"), self._open.holding(token) as session:
            if not session.known:
                journal.roll_back(session.folder, self._dir.fsync)
            with appends.Appending(session, groups) as appending:
                # Only a write that starts a series can pass the limit: the others list nothing.
                if appending.new_series and (
                    len(series_of(session.folder)) + len(appending.new_series) > MAX_SERIES_PER_SESSION
                ):
                    raise TooManySeries(f"a session holds at most {MAX_SERIES_PER_SESSION} metrics")
                changes = appending.edits
                opened = appending.opened
                if received_at is not None:
                    status, moved = self._moved_status(session, samples, received_at)
                    changes = [*changes, status.edit(moved)]
                    if status.fd is not None:
                        opened = {**opened, status_file.STATUS: status.fd}
                if edits.needs_journal(changes) and session.journal_fd is None:
                    session.journal_fd = journal.opened(session.folder, self._dir.fsync)
                edits.apply(session.folder, changes, self._dir.fsync, opened, session.journal_fd)
                # Stored: keeping the files open is bookkeeping, whose failure (no descriptor left)
                # must not answer 503 for samples that a retry would then store twice.
                try:
                    appending.kept()
                    if received_at is not None:
                        self._keep_status(session, status, moved)
                except OSError:
                    session.forget()
        self._maintenance.appended(token)

    @staticmethod
    def _moved_status(
        session: OpenSession, samples: Sequence[Sample], received_at: float
    ) -> tuple[status_file.Opened, SessionStatus]:
        """The session's status file (kept open, or opened now) and its status moved by the samples."""
        if not (session.known and session.status_content is not None):
            opened = status_file.Opened(session.folder)
            session.remember_status(opened.detach(), opened.content, opened.status)
        status = status_file.Opened.kept(session.status_fd, session.status_content or b"", session.status)
        return status, moved_status(status.status, samples, received_at)

    @staticmethod
    def _keep_status(session: OpenSession, status: status_file.Opened, moved: SessionStatus) -> None:
        """After the write: the status file as it left it (opened now if the write made it)."""
        fd = status.fd
        if fd is None:
            fd = os.open(session.folder / status_file.STATUS, os.O_RDWR | os.O_CLOEXEC)
        session.remember_status(fd, status_file.text(moved), moved)

    def between(self, token: str, metric: str, time_range: TimeRange) -> SampleSeries:
        check_metric_name(metric)
        found = SampleSeries([], [])
        with (
            storage_errors("reading samples"),
            snapshots.taken(self._locks, token, metric, time_range) as snapshot,
        ):
            if snapshot is None:
                return found
            for day in snapshot.days:
                series = self._read_day(snapshot, day, time_range)
                found.values.extend(series.values)
                found.taken_at.extend(series.taken_at)
        return found

    def rollups(self, token: str, metric: str, width: float, time_range: TimeRange) -> list[RollupBucket]:
        check_width(width)
        check_metric_name(metric)
        with (
            storage_errors("reading rollups"),
            snapshots.taken(self._locks, token, metric, time_range, width) as snapshot,
        ):
            if snapshot is None:
                return []
            # A bucket starts within a width of its samples' times: others cannot meet the range.
            low = -math.inf if time_range.start is None else time_range.start - width - 1.0
            high = math.inf if time_range.end is None else time_range.end + 1.0
            stored = [
                bucket
                for rollup_file in snapshot.rollups
                for bucket in self._parsed.buckets(rollup_file.path, rollup_file.content, width)
                if low <= bucket.start <= high
            ]
            tails = SampleSeries([], [])
            for name, segment in snapshot.plain.items():
                mark = min(snapshot.marks.get(name, 0), segment.size)
                tail = segments.parse(os.pread(segment.fd, segment.size - mark, mark)).series
                tails.values.extend(tail.values)
                tails.taken_at.extend(tail.taken_at)
        return overlapping(merge_partials(stored + rollup(tails, width)), time_range)

    def summaries(self, tokens: Sequence[str], metric: str) -> dict[str, SampleSummary]:
        found: dict[str, SampleSummary] = {}
        for token in tokens:
            # The day rollups count every sample kept in any form; a session has a few hundred at most.
            days = self.rollups(token, metric, DAY, EVERYTHING)
            if days:
                count = sum(day.count for day in days)
                found[token] = SampleSummary(
                    count, min(day.first for day in days), max(day.last for day in days)
                )
        return found

    def metrics(self, token: str) -> list[str]:
        with storage_errors("listing series"):
            return series_of(self._dir.session_folder(token))

    def maintain(self, now: float) -> None:
        self._maintenance.maintain(now)

    def prune(self, raw_before: float | None, rollups_before: float | None, apply: bool) -> PruneReport:
        return self._maintenance.prune(raw_before, rollups_before, apply)

    def _read_day(self, snapshot: snapshots.Snapshot, day: DayFiles, time_range: TimeRange) -> SampleSeries:
        """The day's samples within the range, in time order (equal times in arrival order)."""
        parts: list[SampleSeries] = []
        if day.compacted is not None:
            parts.append(self._read_compacted(snapshot.series, day, time_range))
        for name in (day.uncompacted, day.late):
            segment = None if name is None else snapshot.plain.get(name)
            if segment is not None:
                read = segments.file_reader(segment.fd)
                parsed = segment_search.read_range(read, segment.size, time_range, segment.in_time_order)
                self._warn(snapshot.series / str(name), parsed.unreadable)
                parts.append(parsed.series)
        if len(parts) == 1:
            return parts[0]
        # Late samples after those compacted before them: a stable sort keeps arrival order on equal times.
        joined = SampleSeries(
            [value for part in parts for value in part.values],
            [moment for part in parts for moment in part.taken_at],
        )
        return joined.within(time_range)

    def _read_compacted(self, series: Path, day: DayFiles, time_range: TimeRange) -> SampleSeries:
        path = series / str(day.compacted)
        try:
            with open(path, "rb") as file:
                index = (series / day.index).read_bytes() if day.index else b""
                text = compressed.read_text(
                    segments.file_reader(file.fileno()),
                    os.fstat(file.fileno()).st_size,
                    index,
                    day_of(day.day),
                    time_range,
                )
        except FileNotFoundError:
            return SampleSeries([], [])  # pruned since the snapshot
        except lzma.LZMAError:
            logger.warning("skipped a damaged compacted segment in %s/%s", series.name, path.name)
            return SampleSeries([], [])
        parsed = segment_search.read_range(segments.bytes_reader(text), len(text), time_range, True)
        self._warn(path, parsed.unreadable)
        return parsed.series

    def _warn(self, path: Path, unreadable: int) -> None:
        if unreadable and path not in self._warned_about:
            self._warned_about.add(path)
            # Named by its series and day only: the session's token, in the path, is a credential.
            logger.warning("skipped %d unreadable lines in %s/%s", unreadable, path.parent.name, path.name)
