"""Raw segments: one series' samples of one UTC day as CSV, a header `<metric>,time` then `value,time`
lines with floats in repr() so that they round-trip; their lines written, parsed, and healed of a tail
torn by a crash. Finding a time range in them: segment_search.py.
"""

from __future__ import annotations

import math
import os
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from perfmon.domain.model import MAX_TIMESTAMP, SampleSeries

# Reads `length` bytes at `offset` (fewer at the end): a file's pread, or a slice of bytes in memory.
Reader = Callable[[int, int], bytes]

# Bytes read at once when looking for the start of a line.
_PROBE = 128
# Bytes read at the end of a segment to heal it and find its last line in one go.
_TAIL = 256
_HEADER = re.compile(rb"[a-z][a-z0-9_]{0,63},time")


def header(metric: str) -> bytes:
    """A segment's first line."""
    return f"{metric},time\n".encode()


def lines_of(values: list[float], times: list[float]) -> bytes:
    """The samples as segment lines."""
    return "".join(f"{value!r},{moment!r}\n" for value, moment in zip(values, times, strict=True)).encode()


def file_reader(fd: int) -> Reader:
    """Reads of an open file."""
    return lambda offset, length: os.pread(fd, length, offset)


def bytes_reader(content: bytes) -> Reader:
    """Reads of bytes in memory."""
    return lambda offset, length: content[offset : offset + length]


@dataclass
class Parsed:
    """Samples read from lines, and how many lines were neither a sample nor a header."""

    series: SampleSeries
    unreadable: int = 0


def parse(content: bytes) -> Parsed:
    """The samples on the complete lines of the content, in their order; headers are skipped."""
    content = content[: content.rfind(b"\n") + 1]
    first_line_end = content.find(b"\n")
    if _HEADER.fullmatch(content[:first_line_end]):
        content = content[first_line_end + 1 :]
    series = _parse_clean(content)
    return Parsed(series) if series is not None else _parse_line_by_line(content)


def time_of(line: bytes) -> float | None:
    """The time on a segment line, or None unless the line is a valid sample."""
    fields = line.split(b",")
    if len(fields) != 2:
        return None
    try:
        value, moment = float(fields[0]), float(fields[1])
    except ValueError:
        return None
    return moment if math.isfinite(value) and 0 <= moment < MAX_TIMESTAMP else None


def end_of_last_line(read: Reader, size: int) -> int:
    """The offset just after the last newline in the first `size` bytes, 0 if there is none."""
    # The usual case, content ending in a whole line, costs a one-byte read.
    if size and read(size - 1, 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - 4096)
        found = read(start, end - start).rfind(b"\n") + 1
        if found:
            return start + found
        end = start
    return 0


def last_line(read: Reader, end: int) -> tuple[int, bytes]:
    """The start and the bytes (without its newline) of the last line of content that ends at `end`
    with a newline; (0, b"") when there is none."""
    if end == 0:
        return 0, b""
    start, chunk = end - 1, _PROBE
    while start > 0:
        low = max(0, start - chunk)
        found = read(low, start - low).rfind(b"\n")
        if found >= 0:
            start = low + found + 1
            break
        start, chunk = low, 4096
    return start, read(start, end - 1 - start)


def heal_torn_tail(fd: int) -> tuple[int, float | None]:
    """Under the session's exclusive lock: cut the file back to its last complete line (a line torn by a
    crash), and return its size then and the time of its last sample: -inf when it has none, None when
    its last line is no sample (then whether the next one is in order is unknown)."""
    size = os.fstat(fd).st_size
    # The usual case, a whole last line (of a sample, rarely over 50 bytes), costs one read.
    tail_start = max(0, size - _TAIL)
    tail = os.pread(fd, size - tail_start, tail_start) if size else b""
    if tail.endswith(b"\n"):
        line_start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
        if line_start or tail_start == 0:
            line = tail[line_start:-1]
            return size, -math.inf if _HEADER.fullmatch(line) else time_of(line)
    read = file_reader(fd)
    end = end_of_last_line(read, size)
    if end != size:
        os.ftruncate(fd, end)
    _, line = last_line(read, end)
    if end == 0 or _HEADER.fullmatch(line):
        return end, -math.inf
    return end, time_of(line)


def _parse_clean(lines: bytes) -> SampleSeries | None:
    """All the lines at once, when every one is a valid sample (as we write them); else None.

    Parsing the lines as one flat list of numbers is several times faster than a line at a time.
    """
    if lines.count(b",") != lines.count(b"\n"):
        return None
    numbers = _json_floats(lines)
    if numbers is None:
        try:
            numbers = list(map(float, lines.replace(b"\n", b",").split(b",")[:-1]))
        except ValueError:
            return None
        if not all(map(math.isfinite, numbers)):
            return None
    values, times = numbers[0::2], numbers[1::2]
    if not times:
        return SampleSeries([], [])
    return SampleSeries(values, times) if min(times) >= 0 and max(times) < MAX_TIMESTAMP else None


def _json_floats(lines: bytes) -> list[float] | None:
    """The numbers of the lines (each ending in a newline) read as one JSON array, when it is an array of
    floats and nothing else; None when it is not, and then float() reads them (a line torn, edited or
    damaged is not JSON, or holds no float: a string, a list, an integer).

    orjson reads the lines written by lines_of (repr(), which is JSON) to the same doubles as float():
    both round decimal text to the nearest double. It halves a read of 100,000 plain lines (23 -> 12 ms
    for FileSampleRepository.between). A JSON float is a number with a fraction or an exponent, which
    float() reads alike, or an integer past 64 bits, rounded alike; other integers are left to float()
    because orjson reads "-0" as 0, not -0.0. orjson refuses NaN, Infinity and numbers that overflow a
    double, so the floats it gives are finite.
    """
    if not lines:
        return []
    try:
        numbers = orjson.loads(b"[" + lines.replace(b"\n", b",")[:-1] + b"]")
    except orjson.JSONDecodeError:
        return None
    return typing.cast(list[float], numbers) if set(map(type, numbers)) == {float} else None


def _parse_line_by_line(lines: bytes) -> Parsed:
    """The slow path, for damaged lines: keep each line that is a valid sample, count the others."""
    parsed = Parsed(SampleSeries([], []))
    for line in lines.split(b"\n")[:-1]:
        moment = time_of(line)
        if moment is not None:
            parsed.series.values.append(float(line.split(b",")[0]))
            parsed.series.taken_at.append(moment)
        elif not _HEADER.fullmatch(line):
            parsed.unreadable += 1
    return parsed
