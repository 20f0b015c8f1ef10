"""Finding a time range in a raw segment (segments.py).

Appends arrive in time order in the normal case, so a segment is usually sorted by time: a range of
it is found by binary search over byte offsets, reading a hundred bytes or so per probe, and only the
lines in the range are parsed (the last 10 minutes of a day: about 600 lines of 86,400). A segment
that a late sample made unsorted is parsed whole and sorted, stably (equal times keep arrival order).
"""

from __future__ import annotations

from perfmon.adapters.filesystem import segments
from perfmon.adapters.filesystem.segments import Parsed, Reader, time_of
from perfmon.domain.model import TimeRange

# A binary search stops when this many bytes are left, and scans them; a probe reads this many.
_SCAN = 512
_PROBE = 128


def read_range(read: Reader, size: int, time_range: TimeRange, in_time_order: bool) -> Parsed:
    """The samples within the range of the segment's first `size` bytes, sorted by time (stably)."""
    end = segments.end_of_last_line(read, size)
    if not in_time_order:
        parsed = segments.parse(read(0, end))
        parsed.series = parsed.series.within(time_range)
        return parsed
    low = 0 if time_range.start is None else first_line_from(read, 0, end, time_range.start, strict=False)
    high = end
    if time_range.end is not None and not _ends_by(read, end, time_range.end):
        high = first_line_from(read, low, end, time_range.end, strict=True)
    return segments.parse(read(low, high - low))


def _ends_by(read: Reader, end: int, moment: float) -> bool:
    """True when no line of the sorted segment is after the moment, seen on its last line: the usual
    read, up to now, needs no search for its end."""
    last = time_of(segments.last_line(read, end)[1])
    return last is not None and last <= moment


def first_line_from(read: Reader, low: int, high: int, moment: float, strict: bool) -> int:
    """In a sorted segment, the offset of the first line in [low, high) (both line starts) whose time is
    at or after the moment (after it, when strict); high if none is. Lines that are no sample (the
    header, a damaged line) are stepped over."""

    def is_from(moment_of_line: float) -> bool:
        return moment_of_line > moment or (not strict and moment_of_line == moment)

    while high - low > _SCAN:
        probe = _line_after(read, (low + high) // 2, high)
        if probe is None:
            break  # no readable line near the middle: scan what is left
        start, end, moment_of_line = probe
        if is_from(moment_of_line):
            high = start
        else:
            low = end
    offset = low
    for line in read(low, high - low).split(b"\n")[:-1]:
        line_time = time_of(line)
        if line_time is not None and is_from(line_time):
            return offset
        offset += len(line) + 1
    return high


def _line_after(read: Reader, middle: int, high: int) -> tuple[int, int, float] | None:
    """The first readable line that starts at or after `middle` and ends by `high`: start, end, time."""
    # From one byte before, so that a line starting right at `middle` is found too.
    chunk = read(middle - 1, min(_PROBE, high - middle + 1))
    start = chunk.find(b"\n") + 1
    while start:
        end = chunk.find(b"\n", start) + 1
        if not end:
            return None
        moment = time_of(chunk[start : end - 1])
        if moment is not None:
            return middle - 1 + start, middle - 1 + end, moment
        start = end
    return None
