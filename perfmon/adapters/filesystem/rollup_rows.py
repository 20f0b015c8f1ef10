"""Rollup files: one CSV row per (partial) bucket, `start,count,sum,min,max,first,last`, floats in
repr() and the exact sum as rollups.exact_sum_text, so that every figure round-trips exactly.

A bucket may have several partial rows (samples rolled up in different passes, late ones): readers
merge them (rollups.merge_partials). Rows are appended in time order in the normal case; a file whose
rows a late sample put out of order has an `.unsorted` flag beside it, as raw segments do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perfmon.adapters.filesystem import segments
from perfmon.domain.model import TimeRange
from perfmon.domain.rollups import RollupBucket, exact_sum_text, parse_exact_sum

HEADER = b"start,count,sum,min,max,first,last\n"


def row(bucket: RollupBucket) -> bytes:
    """The bucket as a row."""
    total = exact_sum_text(bucket.total)
    return (
        f"{bucket.start!r},{bucket.count},{total},{bucket.low!r},{bucket.high!r},{bucket.first!r},{bucket.last!r}\n"
    ).encode()


def start_of(line: bytes) -> float | None:
    """The start of the bucket on a row, None for a header or a damaged row."""
    try:
        return float(line[: line.index(b",")])
    except ValueError:
        return None


@dataclass
class Rows:
    """Buckets read from rows, and how many rows were neither a bucket nor the header."""

    buckets: list[RollupBucket]
    unreadable: int = 0


def parse(content: bytes, width: float) -> Rows:
    """The buckets on the complete rows of the content, in their order."""
    rows = Rows([])
    for line in content[: content.rfind(b"\n") + 1].split(b"\n")[:-1]:
        bucket = bucket_of(line, width)
        if bucket is not None:
            rows.buckets.append(bucket)
        elif line != HEADER[:-1]:
            rows.unreadable += 1
    return rows


def read_range(content: bytes, width: float, time_range: TimeRange, in_time_order: bool) -> Rows:
    """The rows of buckets that can meet the range (the start of a bucket lies within a width of its
    samples' times); by binary search when the rows are in time order, else by their start alone."""
    low = None if time_range.start is None else time_range.start - width - 1.0
    high = None if time_range.end is None else time_range.end + 1.0
    if in_time_order:
        read, end = segments.bytes_reader(content), len(content)
        first = 0 if low is None else segments.first_line_from(read, 0, end, low, False, start_of)
        last = end if high is None else segments.first_line_from(read, first, end, high, True, start_of)
        return parse(content[first:last], width)
    lines = content.split(b"\n")[:-1]
    near = [line for line in lines if _starts_within(start_of(line), low, high)]
    return parse(b"".join(line + b"\n" for line in near), width)


def _starts_within(start: float | None, low: float | None, high: float | None) -> bool:
    if start is None:
        return True  # counted as unreadable (or skipped as the header) by parse
    return (low is None or start >= low) and (high is None or start <= high)


def bucket_of(line: bytes, width: float) -> RollupBucket | None:
    """The bucket on a row, None for a header or a damaged row."""
    fields = line.split(b",")
    if len(fields) != 7:
        return None
    try:
        start, low, high, first, last = map(float, (fields[0], *fields[3:]))
        count, total = int(fields[1]), parse_exact_sum(fields[2].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    if count < 1 or not all(map(math.isfinite, (start, low, high, first, last))):
        return None
    return RollupBucket(width, start, count, total, low, high, first, last)
