"""What a reader of a series sees: a snapshot taken under the session's shared lock, parsed after it.

Under the lock a reader opens the plain segments it needs and notes their committed sizes (they only
grow, but for a write that never finished, which the journal says how to cut off), and reads whole the
rollup files and rolled.csv it needs (maintenance replaces their last rows in place). Compacted
segments never change once written: they are opened after the lock, and one pruned meanwhile is simply
gone. So a reader sees each write whole or not at all, and no writer waits while a reader parses.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from perfmon.adapters.filesystem import folding, journal, watermarks
from perfmon.adapters.filesystem.series_files import (
    DAY_KINDS,
    ROLLED,
    ROLLUP_FILES,
    DayFiles,
    day_name,
    days_near,
    days_within,
    rollup_files_near,
    rollup_files_within,
    series_folder,
)
from perfmon.adapters.filesystem.session_lock import SessionLocks
from perfmon.domain.model import TimeRange


@dataclass(frozen=True)
class PlainSegment:
    """An open plain segment and its committed size; in time order unless flagged (or late)."""

    fd: int
    size: int
    in_time_order: bool


@dataclass(frozen=True)
class RollupContent:
    """A rollup file's committed content."""

    path: Path
    content: bytes


@dataclass
class Snapshot:
    """One series of one session as a reader sees it."""

    series: Path
    days: list[DayFiles]
    plain: dict[str, PlainSegment] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)
    rollups: list[RollupContent] = field(default_factory=list)

    def close(self) -> None:
        for segment in self.plain.values():
            os.close(segment.fd)


@contextlib.contextmanager
def taken(
    locks: SessionLocks, token: str, metric: str, time_range: TimeRange, width: float | None = None
) -> Iterator[Snapshot | None]:
    """The raw segments of the days the range meets; with a width, also rolled.csv, the rollup files of
    the width for the range, and the segments of the days within a width of it (their unrolled tails
    belong to buckets that meet the range). None for a session or series that has no folder."""
    snapshot = _take(locks, token, metric, time_range, width)
    try:
        yield snapshot
    finally:
        if snapshot is not None:
            snapshot.close()


def _take(
    locks: SessionLocks, token: str, metric: str, time_range: TimeRange, width: float | None
) -> Snapshot | None:
    with locks.shared(token) as folder:
        if folder is None:
            return None
        series = folder / series_folder(metric)
        margin = 0.0 if width is None else width + 1.0
        names = _day_entries(series, time_range, margin)
        if names is None:
            return None
        prefix = f"{metric}/"
        undos = {
            name[len(prefix) :]: undo
            for name, undo in journal.unfinished(folder).items()
            if name.startswith(prefix)
        }
        snapshot = Snapshot(series, days_within(names, time_range, margin))
        try:
            for day in snapshot.days:
                # A late file counts unless a fold cut short put its samples in the compacted segment.
                late = None if day.folded and folding.folded_into(series, day.day) else day.late
                for name, in_time_order in ((day.uncompacted, not day.unsorted), (late, False)):
                    segment = (
                        None if name is None else _open_plain(series / name, undos.get(name), in_time_order)
                    )
                    if name is not None and segment is not None:
                        snapshot.plain[name] = segment
            if width is not None:
                snapshot.marks = watermarks.parse(_committed(series / ROLLED, undos.get(ROLLED)))
                snapshot.rollups = _rollup_contents(series, width, time_range, undos)
        except BaseException:
            snapshot.close()
            raise
        return snapshot


def _day_entries(series: Path, time_range: TimeRange, margin: float) -> list[str] | None:
    """The names in the series folder, at least those of the days the range widened by `margin` meets;
    None when the series has no folder. A range of a few days looks its days' files up by name: the
    folder holds every day of the series' history, and a read costs what it returns, not what is kept."""
    days = days_near(time_range, margin)
    try:
        if days is None:
            return os.listdir(series)
        os.stat(series)
    except FileNotFoundError:
        return None
    names = (day_name(day) + kind for day in days for kind in DAY_KINDS)
    return [name for name in names if os.path.lexists(f"{series}/{name}")]


def _open_plain(path: Path, undo: journal.Undo | None, in_time_order: bool) -> PlainSegment | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    size = os.fstat(fd).st_size
    if undo is not None and undo.keep < 0:
        os.close(fd)
        return None  # made by a write that never finished
    return PlainSegment(fd, size if undo is None else min(size, undo.keep), in_time_order)


def _committed(path: Path, undo: journal.Undo | None) -> bytes:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        content = b""
    return content if undo is None else undo.committed(content)


def _rollup_contents(
    series: Path, width: float, time_range: TimeRange, undos: dict[str, journal.Undo]
) -> list[RollupContent]:
    chosen = rollup_files_near(width, time_range)
    if chosen is None:
        folder, _ = ROLLUP_FILES[width]
        try:
            chosen = rollup_files_within(width, os.listdir(series / folder), time_range)
        except FileNotFoundError:
            return []
    return [
        RollupContent(series / name, _committed(series / name, undos.get(name)))
        for name in chosen
        if os.path.lexists(series / name)
    ]
