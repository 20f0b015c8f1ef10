"""Compacted segments: a closed day of a series, sorted by time, as `<day>.csv.xz`, and its index.

The file is a run of xz streams of about 600 lines each, which `xzcat` prints as one CSV (header
included). `<day>.idx` says where each stream starts, one line `<time of its first sample>,<offset>`
each, so a range read decompresses only the streams it needs. xz rather than gzip: on real agent data
(times from time.time() at 1 Hz with jitter, one-decimal CPU percentages) it takes under 6 bytes per
sample, gzip -9 over 7, and the day's rollups must fit beside them in 8.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass

from perfmon.adapters.filesystem import segments
from perfmon.domain.model import SampleSeries, TimeRange

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


def streams_within(index: bytes, size: int, time_range: TimeRange) -> tuple[int, int] | None:
    """The byte span of the streams that can hold samples of the range, by the index of a compacted
    segment of `size` bytes; (0, 0) when none can, None when the index is unusable (read it all)."""
    entries = _entries(index, size)
    if entries is None:
        return None
    if not entries:
        return 0, size
    chosen = [
        (offset, following)
        for (first, offset), (next_first, following) in zip(
            entries, [*entries[1:], (None, size)], strict=True
        )
        if (time_range.end is None or first <= time_range.end)
        and (time_range.start is None or next_first is None or next_first >= time_range.start)
    ]
    return (chosen[0][0], chosen[-1][1]) if chosen else (0, 0)


def decompress(content: bytes) -> bytes:
    """The CSV text of whole streams; lzma.LZMAError when they are damaged."""
    return lzma.decompress(content, format=lzma.FORMAT_XZ) if content else b""


def _entries(index: bytes, size: int) -> list[tuple[float, int]] | None:
    lines = index.split(b"\n")
    if lines[0] + b"\n" != _INDEX_HEADER or lines[-1] != b"":
        return None
    entries: list[tuple[float, int]] = []
    try:
        for line in lines[1:-1]:
            first, offset = line.split(b",")
            entries.append((float(first), int(offset)))
    except ValueError:
        return None
    offsets = [offset for _, offset in entries] + [size]
    if entries and offsets[0] != 0 or any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        return None  # not the index of this file: written for another, or damaged
    return entries
