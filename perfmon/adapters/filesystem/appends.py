"""Appending samples: each metric's values to the segment of their UTC day, all in one write.

A batch may hold up to 10,000 samples of up to 256 metrics spanning several days: its lines go to
one segment per metric and day, in one journalled write (edits.py), so that it is stored whole or not
at all. A day that is already compacted takes its late samples in `<day>.late.csv`.
"""

from __future__ import annotations

import itertools
import operator
import os
from collections.abc import Sequence
from pathlib import Path

from perfmon.adapters.filesystem import segments, watermarks
from perfmon.adapters.filesystem.edits import Edit
from perfmon.adapters.filesystem.series_files import COMPACTED, LATE, RAW, ROLLED, UNSORTED, day_name
from perfmon.domain.model import Sample
from perfmon.domain.rollups import day_start

# (metric, day start) -> the values and times of its samples in the batch, in arrival order.
Groups = dict[tuple[str, float], tuple[list[float], list[float]]]


def group(samples: Sequence[Sample]) -> Groups:
    """The batch's values by series and day."""
    groups: Groups = {}
    for sample in samples:
        day = day_start(sample.taken_at)
        for metric, value in sample.values.items():
            values, times = groups.setdefault((metric, day), ([], []))
            values.append(float(value))
            times.append(sample.taken_at)
    return groups


def append_edits(folder: Path, groups: Groups) -> list[Edit]:
    """The edits that append the groups to the session's segments (under its exclusive lock)."""
    edits: list[Edit] = []
    created: dict[str, list[str]] = {}
    for metric in sorted({metric for metric, _ in groups}):
        if not (folder / metric).is_dir():
            edits.append(Edit.folder(metric))
    for (metric, day), (values, times) in sorted(groups.items()):
        edits.extend(_segment_edits(folder, metric, day_name(day), values, times, created))
    for metric, names in created.items():
        edits.extend(_forget_watermarks(folder, metric, names))
    return edits


def _segment_edits(
    folder: Path,
    metric: str,
    day: str,
    values: list[float],
    times: list[float],
    created: dict[str, list[str]],
) -> list[Edit]:
    series = folder / metric
    # Once the day is compacted, what arrives for it is late, and kept beside it.
    name = day + (LATE if (series / (day + COMPACTED)).exists() else RAW)
    lines = segments.lines_of(values, times)
    try:
        fd = os.open(series / name, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        created.setdefault(metric, []).append(name)
        edits = [Edit(f"{metric}/{name}", -1, segments.header(metric) + lines)]
        last: float | None = -float("inf")
    else:
        try:
            size, last = segments.heal_torn_tail(fd)
        finally:
            os.close(fd)
        edits = [Edit(f"{metric}/{name}", size, (b"" if size else segments.header(metric)) + lines)]
    # A late file is always read as unsorted; a day's segment is flagged the first time it stops being.
    flagged = (series / (day + UNSORTED)).exists
    if name == day + RAW and not _in_order(last, times) and not flagged():
        edits.insert(0, Edit(f"{metric}/{day}{UNSORTED}", -1, b""))
    return edits


def _in_order(last: float | None, times: list[float]) -> bool:
    """True when the times follow the segment's last one and each other, in time order."""
    return (
        last is not None
        and times[0] >= last
        and all(map(operator.le, times, itertools.islice(times, 1, None)))
    )


def _forget_watermarks(folder: Path, metric: str, names: list[str]) -> list[Edit]:
    """A segment made anew (its day was pruned, then a late sample came) starts with none rolled up."""
    try:
        content = (folder / metric / ROLLED).read_bytes()
    except FileNotFoundError:
        return []
    marks = watermarks.parse(content)
    if not any(name in marks for name in names):
        return []
    kept = {name: offset for name, offset in marks.items() if name not in names}
    return [Edit(f"{metric}/{ROLLED}", 0, watermarks.text(kept), replaced=content)]
