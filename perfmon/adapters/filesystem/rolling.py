"""Rolling up: the samples appended to a series since the last pass, added to its stored rollups.

One pass reads each plain segment's unrolled tail (from its watermark in rolled.csv to its last
complete line), adds the tails' buckets to the rollup files of the three widths and moves the
watermarks, in one journalled write under the session's exclusive lock: a crash anywhere leaves either
all of it or none, so no sample is ever counted twice or missed. A pass takes at most _CHUNK bytes of
tails, so that ingest into the session never waits long; the caller loops while some are left.

rolled.csv names every plain segment of the series (appends.py adds a segment's line, at 0, in the
write that makes it), so a pass looks at those only, and opens only those that grew past their
watermark: it costs what changed, not the series' history (a year of it is hundreds of files). A
`scan` pass lists the folder instead, and adds the segments rolled.csv lacks (an upgraded data dir,
a damaged line); maintenance runs one now and then.
"""

from __future__ import annotations

import os
from pathlib import Path

from perfmon.adapters.filesystem import edits, rollup_files, segments, watermarks
from perfmon.adapters.filesystem.edits import Edit
from perfmon.adapters.filesystem.series_files import COMPACTED, ROLLED, days_in
from perfmon.domain.model import SampleSeries
from perfmon.domain.rollups import ROLLUP_WIDTHS, rollups_of

# About 40,000 samples, parsed and summed in well under a tenth of a second: the longest that ingest
# into the session waits while a backlog (after an upgrade, a long stop) is rolled up.
_CHUNK = 1 << 20


def roll_up(folder: Path, metric: str, fsync: bool, scan: bool = False) -> bool:
    """Under the session's exclusive lock (journal rolled back): roll up some of the series' unrolled
    samples; True when more are left for another call. With scan, the plain segments are found by
    listing the series folder rather than by rolled.csv."""
    series = folder / metric
    try:
        old = (series / ROLLED).read_bytes()
    except FileNotFoundError:
        old = None
    marks = watermarks.parse(old or b"")
    taken = SampleSeries([], [])
    moved: dict[str, int] = {}
    budget, left = _CHUNK, False
    for name in plain_segments(series, marks, scan):
        mark = marks.get(name, 0)
        try:
            size = os.stat(series / name).st_size
        except FileNotFoundError:
            continue  # pruned or compacted: its line goes
        if size != mark:
            mark, end = _take_tail(series / name, mark, budget, taken)
            budget -= mark - min(marks.get(name, 0), mark)
            left = left or end > mark
        moved[name] = mark
    if old is not None and moved == marks:
        return left
    buckets = rollups_of(taken)
    changes = [
        edit
        for width in ROLLUP_WIDTHS
        for edit in rollup_files.merge_edits(series, metric, width, buckets[width])
    ]
    changes.append(
        Edit(f"{metric}/{ROLLED}", -1 if old is None else 0, watermarks.text(moved), replaced=old or b"")
    )
    edits.apply(folder, changes, fsync)
    return left


def plain_segments(series: Path, marks: dict[str, int], scan: bool) -> list[str]:
    """The names of the series' plain segments that count (`<day>.csv` of a day not compacted, and
    `<day>.late.csv`), oldest day first: those rolled.csv names, or with scan those in the folder.
    Some may be gone (a concurrent reader of the list stats them)."""
    if scan:
        days = days_in(os.listdir(series)).values()
        return [name for day in days for name in (day.uncompacted, day.late) if name is not None]
    named = days_in(list(marks)).values()
    # A plain segment beside its compacted form is what an interrupted compaction left: it counts no more.
    return [
        name
        for day in named
        for name in (day.raw, day.late)
        if name is not None and not (name == day.raw and os.path.lexists(series / (day.day + COMPACTED)))
    ]


def _take_tail(path: Path, mark: int, budget: int, taken: SampleSeries) -> tuple[int, int]:
    """Add up to `budget` bytes of whole lines after the mark to taken; the offset they end at, and the
    offset the file's last complete line ends at."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = segments.end_of_last_line(segments.file_reader(fd), os.fstat(fd).st_size)
        # A file cut shorter by hand than its watermark: nothing of it is left to roll up.
        mark = min(mark, end)
        if budget <= 0 or end == mark:
            return mark, end
        chunk = os.pread(fd, min(end - mark, budget), mark)
        chunk = chunk[: chunk.rfind(b"\n") + 1] or os.pread(fd, end - mark, mark)
    finally:
        os.close(fd)
    parsed = segments.parse(chunk).series
    taken.values.extend(parsed.values)
    taken.taken_at.extend(parsed.taken_at)
    return mark + len(chunk), end


def is_rolled_up(series: Path, name: str, marks: dict[str, int]) -> bool:
    """True when every complete line of the plain segment is in the stored rollups."""
    fd = os.open(series / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = segments.end_of_last_line(segments.file_reader(fd), os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return marks.get(name, 0) >= end
