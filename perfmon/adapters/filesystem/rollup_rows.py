"""Rollup files: one CSV row per (partial) bucket, `start,count,sum,min,max,first,last`, floats in
repr() and the exact sum as rollups.exact_sum_text, so that every figure round-trips exactly.

A bucket may have several partial rows (samples rolled up in different passes, late ones): readers
merge them (rollups.merge_partials). A file holds at most a few thousand rows (a day of minutes), so
readers parse it whole, and keep what they parsed (ParsedRollups): rows are only ever appended to a
file, or its last row replaced, so the rows before the last stay valid while the file begins the same.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from perfmon.domain.rollups import RollupBucket, exact_sum_text, parse_exact_sum

HEADER = b"start,count,sum,min,max,first,last\n"


def row(bucket: RollupBucket) -> bytes:
    """The bucket as a row."""
    total = exact_sum_text(bucket.total)
    start, low, high, first, last = bucket.start, bucket.low, bucket.high, bucket.first, bucket.last
    return f"{start!r},{bucket.count},{total},{low!r},{high!r},{first!r},{last!r}\n".encode()


def parse(content: bytes, width: float) -> list[RollupBucket]:
    """The buckets on the complete rows of the content, in their order; the header and damaged rows
    are skipped."""
    buckets = []
    for line in content[: content.rfind(b"\n") + 1].split(b"\n")[:-1]:
        bucket = bucket_of(line, width)
        if bucket is not None:
            buckets.append(bucket)
    return buckets


def bucket_of(line: bytes, width: float) -> RollupBucket | None:
    """The bucket on a row, None for a header or a damaged row."""
    fields = line.split(b",")
    if len(fields) != 7:
        return None
    try:
        start, low, high, first, last = float(fields[0]), *map(float, fields[3:])
        count, total = int(fields[1]), parse_exact_sum(fields[2].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    finite = math.isfinite(start) and math.isfinite(low) and math.isfinite(high)
    if count < 1 or not (finite and math.isfinite(first) and math.isfinite(last)):
        return None
    return RollupBucket(width, start, count, total, low, high, first, last)


@dataclass(frozen=True)
class _Parsed:
    # The file's content up to its last row, and the buckets on it.
    settled: bytes
    buckets: list[RollupBucket]


class ParsedRollups:
    """The buckets of rollup files as last parsed, by path: a file is parsed again only from its last
    row on while it begins with the bytes parsed before (anything else: whole). At most `rows` buckets
    are kept, the files read longest ago forgotten first."""

    def __init__(self, rows: int = 100_000) -> None:
        self._limit = rows
        self._kept = 0
        self._files: OrderedDict[Path, _Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def buckets(self, path: Path, content: bytes, width: float) -> list[RollupBucket]:
        """The buckets on the file's content (read under the session's lock), in their order."""
        with self._lock:
            known = self._files.get(path)
        if known is not None and content.startswith(known.settled):
            settled, head, rest = known.settled, known.buckets, content[len(known.settled) :]
        else:
            settled, head, rest = b"", [], content
        rest = rest[: rest.rfind(b"\n") + 1]
        # The last row may still be replaced by maintenance (its bucket filling up): it is not settled.
        cut = rest.rfind(b"\n", 0, len(rest) - 1) + 1
        parsed = _Parsed(settled + rest[:cut], head + parse(rest[:cut], width))
        self._keep(path, parsed)
        return parsed.buckets + parse(rest[cut:], width)

    def _keep(self, path: Path, parsed: _Parsed) -> None:
        with self._lock:
            old = self._files.pop(path, None)
            self._kept += len(parsed.buckets) - (0 if old is None else len(old.buckets))
            self._files[path] = parsed
            while self._kept > self._limit and self._files:
                _, forgotten = self._files.popitem(last=False)
                self._kept -= len(forgotten.buckets)
