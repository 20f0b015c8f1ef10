"""The names of the files in a session's folder: one folder per series, raw samples split by UTC day,
rollups by day, month and year (the layout is drawn in perfmon/adapters/filesystem/__init__.py).

Names are made of dates and metric names only (check_metric_name keeps those inert), and the dated
ones sort as their periods do: selecting by time is comparing names.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import re
import time
from dataclasses import dataclass

from perfmon.domain.model import MAX_TIMESTAMP, TimeRange, check_metric_name
from perfmon.domain.rollups import DAY, check_width, day_start

# In the session folder. A metric name has no dot, so neither can be the folder of a series.
SESSION_LOCK = "session.lock"
JOURNAL = "session.journal"

# In a series folder.
ROLLED = "rolled.csv"
RAW = ".csv"
UNSORTED = ".unsorted"
COMPACTED = ".csv.xz"
COMPACTED_INDEX = ".idx"
LATE = ".late.csv"
FOLDED = ".folded"
# A rollup width -> the folder of its files and the strftime pattern of a file's period.
ROLLUP_FILES = {60.0: ("minutes", "%Y-%m-%d"), 3600.0: ("hours", "%Y-%m"), 86400.0: ("days", "%Y")}

# The kinds of a day's raw files, in the order of a DayFiles.
DAY_KINDS = (RAW, UNSORTED, COMPACTED, COMPACTED_INDEX, LATE, FOLDED)
# A read of a range spanning at most this many UTC days looks its files up by name; a longer one lists
# the folder (which holds every day of the series' history).
_LOOKED_UP_DAYS = 8

_DAY_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})(\.csv|\.csv\.xz|\.idx|\.late\.csv|\.unsorted|\.folded)")


def series_folder(metric: str) -> str:
    """The folder of the metric's series, relative to the session folder."""
    return check_metric_name(metric)


def day_name(moment: float) -> str:
    """The name of the UTC day that holds the moment (seconds since the epoch): `YYYY-MM-DD`."""
    return time.strftime("%Y-%m-%d", time.gmtime(day_start(moment)))


@functools.lru_cache(maxsize=4096)
def is_day_name(name: str) -> bool:
    """True when the name is a date of the calendar, `YYYY-MM-DD` (a stray `2023-02-30.csv` made by
    hand matches the pattern of a day's files, but is no file of ours: day_of() would raise for it)."""
    try:
        return datetime.date.fromisoformat(name).isoformat() == name
    except ValueError:
        return False


def day_of(name: str) -> float:
    """The start of the UTC day `YYYY-MM-DD` (seconds since the epoch)."""
    return float(calendar.timegm(time.strptime(name, "%Y-%m-%d")))


@dataclass(frozen=True)
class DayFiles:
    """The raw files of one UTC day of a series present in its folder, by name (relative to it)."""

    day: str
    raw: str | None = None
    unsorted: bool = False
    compacted: str | None = None
    index: str | None = None
    late: str | None = None
    folded: bool = False

    @property
    def uncompacted(self) -> str | None:
        """The day's plain segment if it counts: a compacted segment already holds what it held."""
        return self.raw if self.compacted is None else None

    def names(self) -> list[str]:
        """Every file of the day."""
        unsorted = self.day + UNSORTED if self.unsorted else None
        folded = self.day + FOLDED if self.folded else None
        return [name for name in (self.raw, unsorted, self.compacted, self.index, self.late, folded) if name]


def days_in(names: list[str]) -> dict[str, DayFiles]:
    """The raw files among the names of a series folder's entries, by day name, oldest first; names of
    days that no calendar has are left out."""
    kinds: dict[str, set[str]] = {}
    for name in names:
        match = _DAY_NAME.fullmatch(name)
        if match is not None and is_day_name(match[1]):
            kinds.setdefault(match[1], set()).add(match[2])
    return {day: _day_files(day, kinds[day]) for day in sorted(kinds)}


def _day_files(day: str, kinds: set[str]) -> DayFiles:
    def name(kind: str) -> str | None:
        return day + kind if kind in kinds else None

    return DayFiles(
        day, name(RAW), UNSORTED in kinds, name(COMPACTED), name(COMPACTED_INDEX), name(LATE), FOLDED in kinds
    )


def days_within(names: list[str], time_range: TimeRange, margin: float = 0.0) -> list[DayFiles]:
    """The raw files among the names of a series folder's entries, of the days that hold moments of the
    range widened by `margin` seconds on each side, oldest first."""
    # Names begin with their day: those of other days are left out before they are parsed.
    low = "" if time_range.start is None else day_name(_clamped(time_range.start - margin))
    high = "~" if time_range.end is None else day_name(_clamped(time_range.end + margin))
    return list(days_in([name for name in names if low <= name[:10] <= high]).values())


def days_near(time_range: TimeRange, margin: float = 0.0) -> list[float] | None:
    """The starts of the UTC days that hold moments of the range widened by `margin` seconds on each
    side, as days_within() selects them; None for a range unbounded or longer than a few days."""
    if time_range.start is None or time_range.end is None:
        return None
    first = day_start(_clamped(time_range.start - margin))
    last = day_start(_clamped(time_range.end + margin))
    if last - first >= _LOOKED_UP_DAYS * DAY:
        return None
    return [first + DAY * i for i in range(int((last - first) / DAY) + 1)]


def _clamped(moment: float) -> float:
    # Bounds of a range may be any finite number; sample times lie in [0, MAX_TIMESTAMP).
    return min(max(moment, 0.0), MAX_TIMESTAMP + 2 * DAY)


def rollup_file(width: float, start: float) -> str:
    """The rollup file, relative to the series folder, that holds the bucket of the width at start."""
    folder, pattern = ROLLUP_FILES[check_width(width)]
    return f"{folder}/{time.strftime(pattern, time.gmtime(start))}.csv"


def rollup_files_within(width: float, names: list[str], time_range: TimeRange) -> list[str]:
    """Of the names in the width's folder, the files (relative to the series folder) that can hold a
    bucket whose first..last span meets the range: a bucket starts within a width of its samples."""
    folder, _ = ROLLUP_FILES[check_width(width)]
    margin = width + 1.0
    low = None if time_range.start is None else rollup_file(width, _clamped(time_range.start - margin))
    high = None if time_range.end is None else rollup_file(width, _clamped(time_range.end + margin))
    paths = sorted(f"{folder}/{name}" for name in names if name.endswith(RAW))
    return [path for path in paths if (low is None or path >= low) and (high is None or path <= high)]


def rollup_files_near(width: float, time_range: TimeRange) -> list[str] | None:
    """The files that rollup_files_within() would select for the range, named without listing their
    folder; None for a range unbounded or longer than a few days."""
    days = days_near(time_range, width + 1.0)
    return None if days is None else sorted({rollup_file(width, day) for day in days})


def period_of(width: float, name: str) -> tuple[float, float]:
    """The start and end (seconds since the epoch) of the period of a rollup file of the width, named
    by its period (`YYYY-MM-DD.csv`, `YYYY-MM.csv` or `YYYY.csv`); ValueError for another name."""
    parts = [int(part) for part in name.removesuffix(RAW).split("-")]
    if len(parts) != _PERIOD_PARTS[check_width(width)]:
        raise ValueError("not the name of a rollup file of that width")
    year, month, day = (parts + [1, 1])[:3]
    start = float(calendar.timegm((year, month, day, 0, 0, 0)))
    if width == 60.0:
        return start, start + DAY
    if width == 3600.0:
        return start, float(calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0)))
    return start, float(calendar.timegm((year + 1, 1, 1, 0, 0, 0)))


_PERIOD_PARTS = {60.0: 3, 3600.0: 2, 86400.0: 1}
