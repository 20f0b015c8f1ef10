"""Appending samples: each metric's values to the segment of their UTC day, all in one write.

A batch may hold up to 10,000 samples of up to 256 metrics spanning several days: its lines go to
one segment per metric and day, in one journalled write (edits.py), so that it is stored whole or not
at all. A day that is already compacted takes its late samples in `<day>.late.csv`.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perfmon.adapters.filesystem import folding, segments, watermarks
from perfmon.adapters.filesystem.edits import Edit
from perfmon.adapters.filesystem.series_files import COMPACTED, FOLDED, LATE, RAW, ROLLED, UNSORTED, day_name
from perfmon.domain.model import Sample
from perfmon.domain.rollups import DAY, day_start


@dataclass(slots=True)
class Lines:
    """One series' samples of one UTC day in a batch, as segment lines and times, in arrival order."""

    text: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


# day start -> metric -> its lines in the batch.
Groups = dict[float, dict[str, Lines]]


def group(samples: Sequence[Sample]) -> Groups:
    """The batch's lines by day and series."""
    groups: Groups = {}
    day = end = -1.0
    of_day: dict[str, Lines] = {}
    for sample in samples:
        moment = sample.taken_at
        if not day <= moment < end:
            # Samples come in time order in the normal case: a day is worked out only when it changes.
            day = day_start(moment)
            end = day + DAY
            of_day = groups.setdefault(day, {})
        time_field = f",{moment!r}\n"
        for metric, value in sample.values.items():
            lines = of_day.get(metric)
            if lines is None:
                lines = of_day[metric] = Lines()
            lines.text.append(repr(float(value)) + time_field)
            lines.times.append(moment)
    return groups


def append_edits(folder: Path, groups: Groups) -> list[Edit]:
    """The edits that append the groups to the session's segments (under its exclusive lock)."""
    edits: list[Edit] = []
    created: dict[str, list[str]] = {}
    for day, series in sorted(groups.items()):
        for metric, lines in sorted(series.items()):
            edits.extend(_segment_edits(f"{folder}/{metric}", metric, day_name(day), lines, created))
    for metric in created:
        if not os.path.isdir(f"{folder}/{metric}"):
            edits.insert(0, Edit.folder(metric))  # the first sample of the series
        edits.extend(_register(folder, metric, created[metric]))
    return edits


def _segment_edits(
    series: str, metric: str, day: str, lines: Lines, created: dict[str, list[str]]
) -> list[Edit]:
    text = "".join(lines.text).encode()
    # Once the day is compacted, what arrives for it is late, and kept beside it. (A plain segment
    # beside the compacted one is what an interrupted compaction left: not to be appended to.)
    name = day + (LATE if os.path.exists(f"{series}/{day}{COMPACTED}") else RAW)
    if name == day + LATE and os.path.lexists(f"{series}/{day}{FOLDED}"):
        folding.settle(Path(series), day)  # a fold cut short: its late file may count no more
    fd = _open_if_present(f"{series}/{name}")
    if fd is None:
        created.setdefault(metric, []).append(name)
        edits = [Edit(f"{metric}/{name}", -1, segments.header(metric) + text)]
        last: float | None = -math.inf
    else:
        try:
            size, last = segments.heal_torn_tail(fd)
        finally:
            os.close(fd)
        edits = [Edit(f"{metric}/{name}", size, (b"" if size else segments.header(metric)) + text)]
    # A late file is always read as unsorted; a day's segment is flagged the first time it stops being.
    if (
        name == day + RAW
        and not _in_order(last, lines.times)
        and not os.path.exists(f"{series}/{day}{UNSORTED}")
    ):
        edits.insert(0, Edit(f"{metric}/{day}{UNSORTED}", -1, b""))
    return edits


def _open_if_present(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _in_order(last: float | None, times: list[float]) -> bool:
    """True when the times follow the segment's last one and each other, in time order."""
    return (
        last is not None
        and times[0] >= last
        and all(map(operator.le, times, itertools.islice(times, 1, None)))
    )


def _register(folder: Path, metric: str, names: list[str]) -> list[Edit]:
    """The edit that names the segments made by the write in rolled.csv, none of them rolled up (a
    segment made anew, its day pruned, then a late sample come, starts from 0 again): maintenance
    looks at the segments rolled.csv names, not at every file of the series' history."""
    try:
        content = (folder / metric / ROLLED).read_bytes()
    except FileNotFoundError:
        content = None
    marks = watermarks.parse(content or b"")
    marks.update(dict.fromkeys(names, 0))
    if content is None:
        return [Edit(f"{metric}/{ROLLED}", -1, watermarks.text(marks))]
    return [Edit(f"{metric}/{ROLLED}", 0, watermarks.text(marks), replaced=content)]
