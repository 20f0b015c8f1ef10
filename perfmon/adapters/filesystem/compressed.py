"""Compacted segments: a closed day of a series, sorted by time, as `<day>.csv.xz`, and its index.

The file is a run of xz streams of about 600 lines each, which `xzcat` prints as one CSV (header
included). `<day>.idx` says where each stream starts, one line `<time of its first sample>,<offset>`
each, so a range read decompresses only the streams it needs. xz rather than gzip: on real agent data
(times from time.time() at 1 Hz with jitter, one-decimal CPU percentages) it takes under 6 bytes per
sample, gzip -9 over 7, and the day's rollups must fit beside them in 8.
"""

from __future__ import annotations

import bisect
import contextlib
import lzma
import operator
from dataclasses import dataclass

from perfmon.adapters.filesystem import segments
from perfmon.domain.model import SampleSeries, TimeRange
from perfmon.domain.rollups import DAY

# Small streams decompress in about 0.1 ms each; smaller still, and compression falls off.
_STREAM_LINES = 600
_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 20}]
_INDEX_HEADER = b"first,offset\n"


@dataclass(frozen=True)
class Compacted:
    """A compacted segment's content and index, as written to disk."""

    content: bytes
    index: bytes


def compact(header: bytes, series: SampleSeries) -> Compacted:
    """The samples (sorted by time) compressed in streams, each starting at a change of time."""
    streams: list[bytes] = []
    index = [_INDEX_HEADER]
    offset = 0
    times = series.taken_at
    begin = 0
    while begin < len(times):
        end = min(begin + _STREAM_LINES, len(times))
        # Equal times stay in one stream: a reader picks streams by the time of their first sample.
        while end < len(times) and times[end] == times[end - 1]:
            end += 1
        text = segments.lines_of(series.values[begin:end], times[begin:end])
        stream = lzma.compress(
            (header if begin == 0 else b"") + text, check=lzma.CHECK_CRC32, filters=_FILTERS
        )
        streams.append(stream)
        index.append(f"{times[begin]!r},{offset}\n".encode())
        offset += len(stream)
        begin = end
    if not streams:
        streams.append(lzma.compress(header, check=lzma.CHECK_CRC32, filters=_FILTERS))
    return Compacted(b"".join(streams), b"".join(index))


def read_text(read: segments.Reader, size: int, index: bytes, day: float, time_range: TimeRange) -> bytes:
    """The CSV text of the streams of a compacted segment of `size` bytes, of the UTC day that starts at
    `day`, that can hold samples of the range; all of them when the index is missing or not this
    segment's. lzma.LZMAError when the segment is damaged."""
    columns = _columns(index, size, day)
    if columns is not None:
        firsts, offsets = columns
        # Stream i holds the samples from firsts[i] on, up to firsts[i + 1]; it ends at offsets[i + 1].
        low = 0 if time_range.start is None else max(bisect.bisect_left(firsts, time_range.start) - 1, 0)
        high = len(firsts) if time_range.end is None else bisect.bisect_right(firsts, time_range.end)
        if low >= high:
            return b""
        with contextlib.suppress(lzma.LZMAError):
            text = decompress(read(offsets[low], offsets[high] - offsets[low]))
            # The streams begin with the sample the index says they do: it is this segment's index.
            if _first_time(text) == firsts[low]:
                return text
    return decompress(read(0, size))


def _first_time(text: bytes) -> float | None:
    # The first line is the header in the first stream, a sample in the others. Only the first two lines
    # are split off: the text of a read's streams is megabytes.
    second_end = text.find(b"\n", text.find(b"\n") + 1)
    head = text if second_end < 0 else text[:second_end]
    times = (segments.time_of(line) for line in head.split(b"\n")[:2])
    return next((moment for moment in times if moment is not None), None)


def decompress(content: bytes) -> bytes:
    """The CSV text of whole streams; lzma.LZMAError when they are damaged."""
    return lzma.decompress(content, format=lzma.FORMAT_XZ) if content else b""


def _columns(index: bytes, size: int, day: float) -> tuple[list[float], list[int]] | None:
    """The times of the streams' first samples and the streams' offsets, the file's size last; None
    when the index is damaged or not this segment's."""
    if not (index.startswith(_INDEX_HEADER) and index.endswith(b"\n")):
        return None
    fields = index[len(_INDEX_HEADER) :].replace(b"\n", b",").split(b",")[:-1]
    try:
        firsts, offsets = list(map(float, fields[0::2])), [*map(int, fields[1::2]), size]
    except ValueError:
        return None
    in_order = all(map(operator.le, firsts, firsts[1:])) and all(map(operator.lt, offsets, offsets[1:]))
    of_the_day = not firsts or (day <= firsts[0] and firsts[-1] < day + DAY)
    if len(offsets) != len(firsts) + 1 or not (in_order and of_the_day) or (firsts and offsets[0] != 0):
        return None
    return firsts, offsets
