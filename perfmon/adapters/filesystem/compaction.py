"""Compaction: a closed day's plain segment, wholly rolled up, replaced by its sorted, compressed form.

Crash-safe without the journal, in this order: `<day>.idx`, then `<day>.csv.xz` are renamed into place
(each written whole under tmp/ first), then `<day>.csv` is unlinked. Where `<day>.csv.xz` exists it
holds everything `<day>.csv` held: readers and appenders ignore a `<day>.csv` beside it (an interrupted
compaction, whose next run unlinks it), and samples for the day go to `<day>.late.csv`. The index is
renamed first, so the index beside a compacted segment is always its own.

The slow part (parsing, sorting, compressing a day) runs without the session's lock: the segment is
read under the lock, and its compacted form put in place under the lock again only if the segment has
not grown in between (else the day waits for the next pass).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from perfmon.adapters.filesystem import compressed, rolling, rollup_files, segments, watermarks
from perfmon.adapters.filesystem.files import create_file, sync_directory
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import (
    COMPACTED,
    COMPACTED_INDEX,
    LATE,
    RAW,
    UNSORTED,
    DayFiles,
    day_of,
    days_in,
    rollup_file,
)
from perfmon.domain.model import EVERYTHING
from perfmon.domain.rollups import DAY, ROLLUP_WIDTHS

# Seconds after a day's end before it is compacted: samples for it still arriving (an agent's spool
# draining after an outage) go to its plain segment until then, and to `<day>.late.csv` after.
CLOSE_AFTER = 3600.0


@dataclass(frozen=True)
class ClosedDay:
    """A closed, wholly rolled-up plain segment (or a late file to fold, folding.py), as read under the
    session's lock: the day's samples, the segment's size and inode (st_dev, st_ino), and the files
    read, kept open (for release()) so that no file made meanwhile can take their inode numbers; for a
    fold, the inode of the compacted segment too."""

    day: str
    content: bytes
    size: int
    identity: tuple[int, int]
    pins: tuple[int, ...]
    compacted: tuple[int, int] | None = None


def release(closed: ClosedDay) -> None:
    """Close the files that closed_days() (or folding.late_days()) kept open."""
    for fd in closed.pins:
        os.close(fd)


def closed_days(series: Path, now: float, budget: int, scan: bool = False) -> tuple[list[ClosedDay], bool]:
    """Under the session's exclusive lock: the series' closed days ready to compact, up to about `budget`
    bytes of them; and whether any plain segment is left after those (closed or not). The plain
    segments are those rolled.csv names (rolling.py), or with scan those in the series folder."""
    marks = watermarks.read(series)
    ready: list[ClosedDay] = []
    left = False
    for day in _plain_days(series, marks, scan):
        if day.compacted is not None and day.raw is not None:
            # What an interrupted compaction left: all of it is in the compacted segment.
            _unlink(series / day.raw)
            _unlink(series / (day.day + UNSORTED))
        if day.uncompacted is None:
            continue
        if budget <= 0 or day_of(day.day) + DAY + CLOSE_AFTER > now:
            left = True
            continue
        if not rolling.is_rolled_up(series, day.uncompacted, marks):
            left = True  # samples appended since the roll-up: the next pass rolls them up first
            continue
        closed = _read_healed(day.day, series / day.uncompacted)
        ready.append(closed)
        budget -= len(closed.content)
    return ready, left


def _plain_days(series: Path, marks: dict[str, int], scan: bool) -> list[DayFiles]:
    """The days with a plain segment (`<day>.csv`), and whether each is compacted too."""
    if scan:
        return [day for day in days_in(os.listdir(series)).values() if day.raw is not None]
    days = days_in([name for name in marks if name.endswith(RAW) and not name.endswith(LATE)])
    return [
        replace(
            day, compacted=day.day + COMPACTED if os.path.lexists(series / (day.day + COMPACTED)) else None
        )
        for day in days.values()
    ]


def _read_healed(day: str, path: Path) -> ClosedDay:
    """Under the session's exclusive lock: the segment's content, cut back first to its last complete
    line (a line torn by a crash, which the next append would cut off too). From then on the segment
    only grows, so install() can tell by its size that samples came in meanwhile: a torn tail healed by
    an append of as many bytes would keep the size and lose the sample. Its inode tells install() that
    it is still the same file: a prune may remove the day, and a late sample make it anew, as long."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        segments.heal_torn_tail(fd)
        stat = os.fstat(fd)
        content = segments.file_reader(fd)(0, stat.st_size)
    except BaseException:
        os.close(fd)
        raise
    return ClosedDay(day, content, stat.st_size, (stat.st_dev, stat.st_ino), (fd,))


@dataclass(frozen=True)
class Prepared:
    """A day's compacted form, written whole to temporary files, ready to be renamed into place."""

    day: str
    size: int
    identity: tuple[int, int]
    compacted: tuple[int, int] | None
    content: Path
    index: Path


def prepare(data_dir: DataDir, metric: str, closed: ClosedDay) -> Prepared:
    """Without the lock: sort and compress the day's samples into temporary files (fsynced if asked)."""
    samples = segments.parse(closed.content).series.within(EVERYTHING)
    compacted = compressed.compact(segments.header(metric), samples)
    content, index = (data_dir.tmp / f"{uuid.uuid4().hex}.tmp" for _ in range(2))
    create_file(data_dir, content, compacted.content)
    create_file(data_dir, index, compacted.index)
    return Prepared(closed.day, closed.size, closed.identity, closed.compacted, content, index)


def install(data_dir: DataDir, series: Path, prepared: Prepared) -> bool:
    """Under the session's exclusive lock: put the compacted form in place of the plain segment, unless
    the segment changed since it was read (grew, or was removed and made anew); tidy the day's rollup
    files. True when installed. The caller keeps the segment read open until then (ClosedDay.pin)."""
    raw = prepared.day + RAW
    try:
        unchanged = _is_read(os.stat(series / raw), prepared)
    except FileNotFoundError:
        unchanged = False
    # (A compacted segment already there was put by another process, from the same segment.)
    if not unchanged or os.path.lexists(series / (prepared.day + COMPACTED)):
        discard(prepared)
        return False
    os.replace(prepared.index, series / (prepared.day + COMPACTED_INDEX))
    os.replace(prepared.content, series / (prepared.day + COMPACTED))
    if data_dir.fsync:
        sync_directory(series)
    _unlink(series / raw)
    _unlink(series / (prepared.day + UNSORTED))
    _forget_watermark(data_dir, series, raw)
    tidy_rollups(data_dir, series, prepared.day)
    return True


def tidy_rollups(data_dir: DataDir, series: Path, name: str) -> None:
    """Tidy the rollup files that hold the day `name` (YYYY-MM-DD): late rows merged, in time order."""
    day = day_of(name)
    for width in ROLLUP_WIDTHS:
        rollup_files.tidy(data_dir, series, rollup_file(width, day), width)


def _is_read(stat: os.stat_result, prepared: Prepared) -> bool:
    """True when the segment is the very file that was read, no longer than it was then."""
    return (stat.st_size, (stat.st_dev, stat.st_ino)) == (prepared.size, prepared.identity)


def _forget_watermark(data_dir: DataDir, series: Path, name: str) -> None:
    """Drop the segment's line from rolled.csv: a compacted segment is wholly rolled up by definition."""
    watermarks.forget(data_dir, series, name)


def discard(prepared: Prepared) -> None:
    """Remove the temporary files of a compaction that will not be installed."""
    for path in (prepared.content, prepared.index):
        _unlink(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
