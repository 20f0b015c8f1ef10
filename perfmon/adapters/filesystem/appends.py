"""Appending samples: each metric's values to the segment of their UTC day, all in one write.

A batch may hold up to 10,000 samples of up to 256 metrics spanning several days: its lines go to
one segment per metric and day, in one journalled write (edits.py), so that it is stored whole or not
at all. A day that is already compacted takes its late samples in `<day>.late.csv`.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perfmon.adapters.filesystem import folding, segments, watermarks
from perfmon.adapters.filesystem.edits import Edit
from perfmon.adapters.filesystem.open_sessions import OpenSession, Segment
from perfmon.adapters.filesystem.series_files import COMPACTED, FOLDED, LATE, RAW, ROLLED, UNSORTED, day_name
from perfmon.domain.model import Sample
from perfmon.domain.rollups import DAY, day_start


@dataclass(slots=True)
class Lines:
    """One series' samples of one UTC day in a batch, as segment lines and times, in arrival order."""

    text: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


_VALUES = operator.attrgetter("values")

# day start -> metric -> its lines in the batch.
Groups = dict[float, dict[str, Lines]]


def group(samples: Sequence[Sample]) -> Groups:
    """The batch's lines by day and series."""
    times = [sample.taken_at for sample in samples]
    day = day_start(min(times))
    if max(times) < day + DAY:
        # The usual batch lies within one day: no day to work out sample by sample.
        return {day: _lines_by_series(samples, times)}
    by_day: dict[float, list[Sample]] = {}
    end = -1.0
    of_day: list[Sample] = []
    for sample in samples:
        moment = sample.taken_at
        if not day <= moment < end:
            # Samples come in time order in the normal case: a day is worked out only when it changes.
            day = day_start(moment)
            end = day + DAY
            of_day = by_day.setdefault(day, [])
        of_day.append(sample)
    return {
        day: _lines_by_series(of_day, [sample.taken_at for sample in of_day])
        for day, of_day in by_day.items()
    }


def _lines_by_series(samples: Sequence[Sample], times: list[float]) -> dict[str, Lines]:
    """The lines of samples of one day, taken at `times`, by series."""
    first = samples[0].values
    # The usual batch holds one metric (an agent's cpu): its lines made in one comprehension cost a
    # third less than sample by sample through a dict per metric.
    if len(first) == 1 and sum(map(len, map(_VALUES, samples))) == len(samples):
        (metric,) = first
        try:
            text = [f"{float(sample.values[metric])!r},{sample.taken_at!r}\n" for sample in samples]
        except KeyError:
            pass  # another metric further on
        else:
            return {metric: Lines(text, times)}
    by_series: dict[str, Lines] = {}
    for sample in samples:
        moment = sample.taken_at
        time_field = f",{moment!r}\n"
        for metric, value in sample.values.items():
            lines = by_series.get(metric)
            if lines is None:
                lines = by_series[metric] = Lines()
            lines.text.append(repr(float(value)) + time_field)
            lines.times.append(moment)
    return by_series


class Appending:
    """The edits that append the groups to the session's segments, under its exclusive lock: to the
    segments it keeps open when their state is known (open_sessions.py), else to segments opened here,
    healed of a torn tail and sized. `opened` maps the edit names to their open files, for apply; once
    the edits are applied, kept() hands the segments to the session; close() closes what was opened here
    and not handed over."""

    def __init__(self, session: OpenSession, groups: Groups) -> None:
        self.edits: list[Edit] = []
        self.opened: dict[str, int] = {}
        # The metrics whose series the write starts (their folder is made by it).
        self.new_series: list[str] = []
        self._session = session
        # What each segment's edit leaves, by (metric, day): name, fd (None: the write makes it), size, last.
        self._after: dict[tuple[str, str], tuple[str, int | None, int, float]] = {}
        # Files opened here, by edit name, until handed to the session.
        self._own: dict[str, int] = {}
        try:
            self._plan(str(session.folder), groups)
        except BaseException:
            self.close()
            raise

    def kept(self) -> None:
        """After the edits are applied: keep their segments open in the session, as the write left them."""
        session = self._session
        folder = session.folder
        for key, (name, fd, size, last) in self._after.items():
            if fd is None:
                fd = os.open(f"{folder}/{name}", os.O_RDWR | os.O_CLOEXEC)
            else:
                self._own.pop(name, None)
            segment = session.segments.get(key)
            if segment is None:
                session.segments[key] = Segment(name, fd, size, last)
            else:
                segment.size, segment.last = size, last

    def close(self) -> None:
        for fd in self._own.values():
            os.close(fd)
        self._own.clear()

    def __enter__(self) -> Appending:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _plan(self, folder: str, groups: Groups) -> None:
        created: dict[str, list[str]] = {}
        for day, series in sorted(groups.items()) if len(groups) > 1 else groups.items():
            for metric, lines in sorted(series.items()) if len(series) > 1 else series.items():
                self._segment(folder, metric, _day_name(day), lines, created)
        for metric in created:
            if not os.path.isdir(f"{folder}/{metric}"):
                self.edits.insert(0, Edit.folder(metric))  # the first sample of the series
                self.new_series.append(metric)
            self.edits.extend(_register(Path(folder), metric, created[metric]))

    def _segment(
        self, folder: str, metric: str, day: str, lines: Lines, created: dict[str, list[str]]
    ) -> None:
        text = "".join(lines.text).encode()
        known = self._session.segments.get((metric, day)) if self._session.known else None
        fd: int | None
        if known is not None:
            # As this process left it: no other holder since (open_sessions.py).
            name, fd, size, last = known.name, known.fd, known.size, known.last
        else:
            name, fd, size, last = self._open(folder, metric, day)
        if fd is None:
            created.setdefault(metric, []).append(name.rpartition("/")[2])
            new = segments.header(metric) + text
            self.edits.append(Edit(name, -1, new))
        else:
            self.opened[name] = fd
            new = (b"" if size else segments.header(metric)) + text
            self.edits.append(Edit(name, size, new))
        self._after[metric, day] = (name, fd, max(size, 0) + len(new), lines.times[-1])
        # A late file is always read as unsorted; a day's segment is flagged the first time it stops being.
        if (
            name.endswith(f"/{day}{RAW}")
            and not _in_order(last, lines.times)
            and not _exists(f"{folder}/{metric}/{day}{UNSORTED}")
        ):
            self.edits.insert(len(self.edits) - 1, Edit(f"{metric}/{day}{UNSORTED}", -1, b""))

    def _open(self, folder: str, metric: str, day: str) -> tuple[str, int | None, int, float | None]:
        """The segment that takes the day's samples, opened and healed: its edit name, fd (None when the
        write makes it), size (-1 then) and the time of its last sample (see Segment)."""
        series = f"{folder}/{metric}"
        # Once the day is compacted, what arrives for it is late, and kept beside it. (A plain segment
        # beside the compacted one is what an interrupted compaction left: not to be appended to.)
        file_name = day + (LATE if _exists(f"{series}/{day}{COMPACTED}") else RAW)
        if file_name == day + LATE and _exists(f"{series}/{day}{FOLDED}"):
            folding.settle(Path(series), day)  # a fold cut short: its late file may count no more
        name = f"{metric}/{file_name}"
        fd = _open_if_present(f"{series}/{file_name}")
        if fd is None:
            return name, None, -1, -math.inf
        self._own[name] = fd
        size, last = segments.heal_torn_tail(fd)
        return name, fd, size, last


# A day's name is formatted (strftime) once, not on every append: the days of recent writes, a few.
_day_name = functools.lru_cache(maxsize=64)(day_name)


def _exists(path: str) -> bool:
    # Not os.path.exists: that takes any error (a failing disk) for no file.
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


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
